"""Dispatch decisions: which hook runs, what is written, how failures retry."""

import copy
import json
import threading

import pytest

import minop
from minop.apierrors import ApiError, Conflict
from minop.cache import Cache
from minop.dispatch import Binding, Dispatcher
from minop.events import Recorder
from minop.keys import Key
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.queue import WorkQueue
from minop.runtime import Runtime
from minop.status import FINALIZER, LAST_HANDLED

KIND = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")


class StubWatcher:
    def __init__(self, kind):
        self.kind, self.namespace, self.cache = kind, None, {}
        self.synced = threading.Event()
        self.synced.set()
        self.label_selector = self.field_selector = None
        self.transform = lambda obj: obj

    def get(self, ns, name):
        return self.cache.get((ns, name))

    def items(self):
        return list(self.cache.values())


class FakeKube:
    """Records writes and applies them to the stub cache like the API server would."""

    def __init__(self, watcher):
        self.w, self.writes, self.rv = watcher, [], 10
        self.metrics = Metrics()

    def _bump(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(obj)

    def patch(self, kind, name, patch, ns, patch_type="merge", subresource=None, params=None):
        self.writes.append((patch_type, subresource, patch))
        if kind.kind == "Event":
            return {}
        obj = copy.deepcopy(self.w.cache[(ns, name)])
        if patch_type == "json":
            for op in patch:
                path = op["path"].split("/")[1:]
                if op["op"] == "test":
                    target = obj
                    for p in path:
                        target = target[int(p)] if isinstance(target, list) else target.get(p)
                    if target != op["value"]:
                        raise Conflict(409, "Conflict", "test failed")
                elif op["op"] == "add" and path[-1] == "-":
                    obj["metadata"]["finalizers"].append(op["value"])
                elif op["op"] == "add":
                    obj["metadata"][path[-1]] = op["value"]
                elif op["op"] == "remove":
                    del obj["metadata"]["finalizers"][int(path[-1])]
        elif subresource == "status":
            status = obj.setdefault("status", {})
            for k, v in patch["status"].items():
                if v is None:
                    status.pop(k, None)
                else:
                    status[k] = v
        else:
            obj["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        return self._bump(obj)

    def create(self, kind, body, ns=None):
        self.writes.append(("create", kind.kind, body["reason"]))
        return body


class Plugin:
    def __init__(self):
        self.calls = []
        self.fail_with = None

    @minop.hookimpl
    def minop_create(self, ctx):
        self.calls.append(("create", ctx.cause))
        if self.fail_with:
            raise self.fail_with
        return {"phase": "made"}

    @minop.hookimpl
    def minop_update(self, ctx):
        self.calls.append(("update", ctx.cause, [tuple(c.path) for c in ctx.diff]))
        if self.fail_with:
            raise self.fail_with
        return {"phase": "updated"}

    @minop.hookimpl
    def minop_delete(self, ctx):
        self.calls.append(("delete", ctx.cause))


class FinalizingPlugin(Plugin):
    @minop.hookimpl
    def minop_finalize(self, ctx):
        self.calls.append(("finalize", ctx.cause))


def setup(plugin, max_tries=10):
    w = StubWatcher(KIND)
    cache = Cache()
    cache.add(w)
    kube = FakeKube(w)
    rt = Runtime(kube, cache, WorkQueue(), Recorder(kube), kube.metrics)
    pm = PluginManager()
    pm.register(plugin, "p")
    res = minop.Resource(kind=KIND, max_tries=max_tries)
    b = Binding("p", res, pm.implements("minop_finalize", "p"))
    d = Dispatcher(rt, pm, {KIND: b}, watch_named=None)
    return d, w, kube


def put(w, spec, **meta):
    obj = {
        "apiVersion": "test.minop.dev/v1",
        "kind": "Widget",
        "metadata": {
            "name": "x",
            "namespace": "ns",
            "uid": "u",
            "generation": 1,
            "resourceVersion": "1",
            **meta,
        },
        "spec": spec,
    }
    w.cache[("ns", "x")] = obj
    return obj


KEY = Key(KIND, "ns", "x")


def run(d, causes=("watch",)):
    return d.process(KEY, set(causes))


def test_create_then_records_spec_and_status():
    p = Plugin()
    d, w, kube = setup(p)
    put(w, {"size": 1})
    run(d)
    assert p.calls == [("create", "create")]
    obj = w.cache[("ns", "x")]
    assert json.loads(obj["metadata"]["annotations"][LAST_HANDLED]) == {"spec": {"size": 1}}
    assert obj["status"]["phase"] == "made" and obj["status"]["observedGeneration"] == 1
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert FINALIZER not in obj["metadata"].get("finalizers", [])  # plugin doesn't finalize
    # same spec again: nothing called, nothing written
    n = len(kube.writes)
    run(d)
    assert len(p.calls) == 1 and len(kube.writes) == n


def test_spec_change_calls_update_with_diff_and_status_only_change_does_not():
    p = Plugin()
    d, w, _kube = setup(p)
    put(w, {"size": 1})
    run(d)
    w.cache[("ns", "x")]["spec"] = {"size": 2}
    run(d)
    assert p.calls[-1] == ("update", "spec", [("spec", "size")])
    w.cache[("ns", "x")]["status"]["extra"] = "edited"
    run(d)
    assert len(p.calls) == 2


def test_child_and_resync_causes_call_update_with_empty_diff():
    p = Plugin()
    d, w, _ = setup(p)
    put(w, {"size": 1})
    run(d)
    run(d, ["child"])
    run(d, ["resync"])
    assert p.calls[1:] == [("update", "child", []), ("update", "resync", [])]


def test_hook_failure_never_records_the_spec_so_the_next_try_creates_again():
    p = Plugin()
    p.fail_with = RuntimeError("boom")
    d, w, _ = setup(p)
    put(w, {"size": 1})
    run(d)
    obj = w.cache[("ns", "x")]
    assert LAST_HANDLED not in obj["metadata"].get("annotations", {})
    degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "HookError"
    p.fail_with = None
    run(d, ["retry"])
    assert p.calls == [("create", "create"), ("create", "create")]


def test_temporary_error_gives_up_after_max_tries_until_spec_changes():
    p = Plugin()
    p.fail_with = minop.TemporaryError("not yet")
    d, w, _ = setup(p, max_tries=3)
    put(w, {"size": 1})
    for _ in range(5):
        run(d, ["retry"])
    assert len(p.calls) == 3
    obj = w.cache[("ns", "x")]
    degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "RetriesExhausted"
    run(d, ["child"])
    assert len(p.calls) == 3  # sticky: children changing does not retry
    obj["spec"] = {"size": 2}
    obj["metadata"]["generation"] = 2
    p.fail_with = None
    run(d)
    assert len(p.calls) == 4


def test_permanent_error_is_called_once():
    p = Plugin()
    p.fail_with = minop.PermanentError("bad spec")
    d, w, _ = setup(p)
    put(w, {"size": 1})
    run(d)
    run(d, ["resync"])
    assert len(p.calls) == 1
    assert d.rt.queue.get(timeout=0) is None  # no retry queued


def test_finalizer_added_before_create_and_removed_after_finalize():
    p = FinalizingPlugin()
    d, w, kube = setup(p)
    put(w, {"size": 1}, finalizers=["other.io/keep"])
    run(d)
    assert w.cache[("ns", "x")]["metadata"]["finalizers"] == ["other.io/keep", FINALIZER]
    assert kube.writes[0][0] == "json"  # finalizer first, guarded by a test op
    assert kube.writes[0][2][0]["op"] == "test"
    w.cache[("ns", "x")]["metadata"]["deletionTimestamp"] = "now"
    run(d)
    assert p.calls[-1] == ("finalize", "finalize")
    assert w.cache[("ns", "x")]["metadata"]["finalizers"] == ["other.io/keep"]


def test_delete_hook_runs_once_from_the_tombstone():
    p = Plugin()
    d, w, _ = setup(p)
    obj = put(w, {"size": 1})
    run(d)
    del w.cache[("ns", "x")]
    d.tombstones[KEY] = obj
    run(d)
    run(d)
    assert p.calls.count(("delete", "delete")) == 1


def test_timeout_holds_the_key_until_the_hook_thread_ends():
    release = threading.Event()

    class Slow:
        @minop.hookimpl
        def minop_create(self, ctx):
            release.wait(5)

    d, w, _ = setup(Slow())
    d.bindings[KIND] = Binding("p", minop.Resource(kind=KIND, hook_timeout=0.2), False)
    put(w, {"size": 1})
    hold = run(d)
    assert hold is not None and hold.thread.is_alive()
    conds = w.cache[("ns", "x")]["status"]["conditions"]
    assert [c["reason"] for c in conds if c["type"] == "Degraded"] == ["HookTimeout"]
    release.set()
    hold.thread.join(2)
    assert not hold.thread.is_alive()


@pytest.mark.parametrize("bad", [None, "text"])
def test_mangled_last_handled_annotation_means_create_again(bad):
    p = Plugin()
    d, w, _ = setup(p)
    put(w, {"size": 1}, annotations={LAST_HANDLED: bad} if bad else {})
    run(d)
    assert p.calls == [("create", "create")]


def test_reverting_to_the_last_handled_spec_after_a_refused_change_reconciles():
    p = Plugin()
    d, w, _ = setup(p)
    put(w, {"size": 1})
    run(d)
    obj = w.cache[("ns", "x")]
    obj["spec"], obj["metadata"]["generation"] = {"size": 0}, 2
    p.fail_with = minop.PermanentError("size 0")
    run(d)
    obj = w.cache[("ns", "x")]
    obj["spec"], obj["metadata"]["generation"] = {"size": 1}, 3  # back to the handled spec
    p.fail_with = None
    run(d)
    assert p.calls[-1] == ("update", "spec", [])
    conds = {c["type"]: c for c in w.cache[("ns", "x")]["status"]["conditions"]}
    assert conds["Degraded"]["status"] == "False" and conds["Ready"]["status"] == "True"


def test_api_error_in_a_hook_is_retried_no_sooner_than_retry_after():
    """A hook's request still throttled after the client's own retries: the requeue
    waits for the server's Retry-After, not the (milliseconds) API backoff."""
    p = Plugin()
    p.fail_with = ApiError(429, "TooManyRequests", "slow down", retry_after=7.0)
    d, w, _ = setup(p)
    t = [100.0]
    d.rt.queue = WorkQueue(clock=lambda: t[0])
    put(w, {"size": 1})
    run(d)
    t[0] = 106.9
    assert d.rt.queue.get(timeout=0) is None
    t[0] = 107.1
    got = d.rt.queue.get(timeout=0)
    assert got is not None and got[0] == KEY
