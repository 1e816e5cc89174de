import threading
import time

import pytest

from minop.informer import Informer
from minop.kinds import CONFIGMAP
from minop.kit.testing import FakeApi, FakeServer, wait_for
from minop.kube import Kube

from .widget import cm


@pytest.fixture
def api():
    a = FakeServer(FakeApi([CONFIGMAP]))  # lists the tests script, else none
    yield a
    a.close()


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, etype, obj, *, echo=False):
        with self.lock:
            self.events.append((etype, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def names(self, etype):
        return [n for t, n, _ in self.events if t == etype]


def watcher(api, rec, **kw):
    kube = Kube(api.kubeconfig(), agent="test", qps=0)
    w = Informer(kube, CONFIGMAP, rec, namespace="ns", **kw)
    w.start()
    return w


def test_list_then_watch_from_list_rv_with_bookmarks(api):
    api.lists.put(([cm("a", 5)], 7))
    api.watches.put(
        [
            {"type": "ADDED", "object": cm("b", 8)},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            "stall",
        ]
    )
    rec = Recorder()
    w = watcher(api, rec)
    try:
        wait_for(lambda: rec.names("ADDED") == ["a", "b"], 5, "a and b added")
        wait_for(lambda: w.resource_version == "9", 5, "bookmark rv")
        first = api.watch_params()[0]
        assert first["resourceVersion"] == "7"
        assert first["allowWatchBookmarks"] == "true"
        assert w.get("ns", "b")["data"] == {"k": "x"}
        assert w.synced.is_set()
    finally:
        w.stop()


def test_clean_end_resumes_from_last_rv_without_relisting(api):
    api.lists.put(([], 3))
    api.watches.put([{"type": "ADDED", "object": cm("a", 4)}, "close"])
    api.watches.put(["stall"])
    rec = Recorder()
    w = watcher(api, rec)
    try:
        wait_for(lambda: len(api.watch_params()) == 2, 5, "second watch")
        assert api.watch_params()[1]["resourceVersion"] == "4"
        lists = [p for _, p, _ in api.requests if "watch" not in p and "limit" in p]
        assert len(lists) == 1
    finally:
        w.stop()


def test_410_relists_and_emits_deletions_for_vanished_objects(api):
    api.lists.put(([cm("a", 1), cm("b", 1)], 1))
    # After the 410 the objects changed: b vanished, a was modified, c appeared.
    api.lists.put(([cm("a", 6, "new"), cm("c", 6)], 6))
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.watches.put([{"type": "ERROR", "object": gone}])
    api.watches.put(["stall"])
    rec = Recorder()
    w = watcher(api, rec, max_backoff=0.05)
    try:
        wait_for(lambda: "b" in rec.names("DELETED"), 5, "b deleted on relist")
        assert "c" in rec.names("ADDED")
        assert "a" in rec.names("MODIFIED")
        assert w.get("ns", "b") is None
        assert w.metrics.watch_restarts.value(kind="ConfigMap", reason="expired") == 1
        wait_for(lambda: len(api.watch_params()) == 2, 5, "watch after relist")
        assert api.watch_params()[1]["resourceVersion"] == "6"
    finally:
        w.stop()


def test_inactivity_watchdog_restarts_a_silent_stream(api):
    api.lists.put(([], 2))
    rec = Recorder()
    w = watcher(api, rec, inactivity=0.6)
    try:
        wait_for(lambda: len(api.watch_params()) >= 2, 5, "watch restarted after silence")
        assert w.metrics.watch_restarts.value(kind="ConfigMap", reason="inactivity") >= 1
        # resumed, not relisted
        assert api.watch_params()[1]["resourceVersion"] == "2"
    finally:
        w.stop()


def test_quiet_stream_with_server_timeouts_never_trips_the_watchdog(api):
    # The server-side timeout is kept below the watchdog, so a quiet but healthy
    # stream ends cleanly and is resumed: no inactivity restarts, never stalled.
    for i in range(20):
        api.watches.put([{"type": "BOOKMARK", "object": cm("", 3 + i)}, "close"])
    rec = Recorder()
    w = watcher(api, rec, inactivity=2)
    try:
        wait_for(lambda: len(api.watch_params()) >= 3, 5, "resumed streams")
        assert int(api.watch_params()[0]["timeoutSeconds"]) <= 2 * 0.8
        assert w.metrics.watch_restarts.value(kind="ConfigMap", reason="inactivity") == 0
    finally:
        w.stop()


def test_stop_interrupts_a_blocked_stream_quickly(api):
    rec = Recorder()
    w = watcher(api, rec)
    wait_for(lambda: api.watch_params(), 5, "watch open")
    start = time.monotonic()
    w.stop()
    wait_for(lambda: not w.alive, 3, "the informer's thread to end")
    assert time.monotonic() - start < 3


def test_a_watch_that_ends_at_once_without_events_backs_off(api):
    """Defect 10: client-go's "very short watch" guard; before, it reconnected at once."""
    for _ in range(50):
        api.watches.put(["close"])
    rec = Recorder()
    w = watcher(api, rec)
    try:
        wait_for(lambda: w.metrics.watch_restarts.value(kind="ConfigMap", reason="short") >= 2, 10)
        assert len(api.watch_params()) <= 4  # not a hot loop
    finally:
        w.stop()


def test_relist_reports_an_object_recreated_meanwhile_as_deleted_then_added(api):
    """Defect 10: a new uid under the same name was reported as MODIFIED."""
    old, new = cm("a", 1), cm("a", 7)
    old["metadata"]["uid"], new["metadata"]["uid"] = "uid-1", "uid-2"
    api.lists.put(([old], 1))
    api.lists.put(([new], 7))
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.watches.put([{"type": "ERROR", "object": gone}])
    api.watches.put(["stall"])
    rec = Recorder()
    w = watcher(api, rec, max_backoff=0.05)
    try:
        wait_for(lambda: len(rec.events) >= 3, 5, "relist events")
        assert [(t, rv) for t, _, rv in rec.events] == [
            ("ADDED", "1"),
            ("DELETED", "1"),
            ("ADDED", "7"),
        ]
        assert w.get("ns", "a")["metadata"]["uid"] == "uid-2"
    finally:
        w.stop()


def test_a_throttled_watch_reopens_no_sooner_than_retry_after(api):
    api.lists.put(([], 3))
    api.watches.put([("throttle", 1)])
    rec = Recorder()
    w = watcher(api, rec, max_backoff=0.05)
    try:
        wait_for(lambda: len(api.watch_times()) >= 2, 5, "the watch reopened")
        first, second = api.watch_times()[:2]
        assert second - first >= 1.0
        assert api.watch_params()[1]["resourceVersion"] == "3"  # resumed, not relisted
    finally:
        w.stop()
