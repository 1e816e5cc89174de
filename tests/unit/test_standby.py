"""A standby replica keeps its cache warm and nothing else; on takeover it queues
every object it holds (issue 22): no tombstones, timers or queued keys before it leads."""

import threading

import minop
from minop.kinds import CONFIGMAP
from minop.kit.testing import FakeApi, FakeServer, wait_for
from minop.kube import Kube
from minop.manager import Manager
from minop.plugin.manager import PluginManager
from minop.settings import Settings

from .widget import cm


class Owner:
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    @minop.hookimpl
    def minop_resources(self):
        return [minop.Resource(kind=CONFIGMAP)]

    def _record(self, hook, ctx):
        with self.lock:
            self.calls.append((hook, ctx.name))

    @minop.hookimpl
    def minop_create(self, ctx):
        self._record("create", ctx)

    @minop.hookimpl
    def minop_delete(self, ctx):
        self._record("delete", ctx)


def test_a_standby_takes_no_events_and_takes_over_from_its_warm_cache():
    api = FakeServer(FakeApi([CONFIGMAP]))
    api.api.put(CONFIGMAP, cm("new", 5))  # what the takeover's writes meet
    api.lists.put(([cm("gone", 2)], 3))
    api.watches.put(
        [
            {"type": "DELETED", "object": cm("gone", 4)},  # handled by the leader
            {"type": "ADDED", "object": cm("new", 5)},
            "stall",
        ]
    )
    plugin = Owner()
    pm = PluginManager()
    pm.register(plugin, "owner")
    settings = Settings(namespaces=("ns",), workers=1, health_addr="0", metrics_addr="0")
    m = Manager(settings, plugins=pm, kube=Kube(api.kubeconfig(), agent="t", qps=0))
    try:
        m.start()  # informers run, no leadership yet
        wait_for(lambda: m.cache.get(CONFIGMAP, "ns", "new") is not None, 5, "new cached")
        assert m.cache.get(CONFIGMAP, "ns", "gone") is None
        assert m.metrics.queue_depth.value(name="configmap") == 0
        api.lists.put(([cm("new", 5)], 5))  # what the takeover lists
        m.take_over()  # elected
        wait_for(lambda: ("create", "new") in plugin.calls, 10, "new created after takeover")
        assert plugin.calls == [("create", "new")]  # no delete hook for what the leader had
    finally:
        m.stop()
        api.close()


def test_a_deletion_still_on_its_way_to_the_standby_was_the_old_leaders():
    """The standby's watch lags: a deletion the old leader handled has not reached it
    when it takes over. The new leader re-lists before it takes events: no second delete
    hook for that one, and a deletion after the takeover gets its hook (issue 22)."""
    api = FakeServer(FakeApi([CONFIGMAP]))
    api.api.put(CONFIGMAP, cm("kept", 2))  # what the takeover's writes meet
    api.lists.put(([cm("gone", 2), cm("kept", 2)], 3))
    lagging = threading.Event()
    deleted_later = {"type": "DELETED", "object": cm("kept", 6)}
    api.watches.put([lagging, {"type": "DELETED", "object": cm("gone", 4)}, deleted_later])
    api.watches.put([deleted_later, "stall"])  # the watch from the takeover's list
    plugin = Owner()
    pm = PluginManager()
    pm.register(plugin, "owner")
    settings = Settings(namespaces=("ns",), workers=1, health_addr="0", metrics_addr="0")
    m = Manager(settings, plugins=pm, kube=Kube(api.kubeconfig(), agent="t", qps=0))
    try:
        m.start()
        api.lists.put(([cm("kept", 2)], 5))  # the API server now
        m.take_over()  # elected
        lagging.set()  # the old stream's events arrive (if anyone still reads it)
        wait_for(lambda: ("delete", "kept") in plugin.calls, 10, "kept's delete hook")
        assert ("delete", "gone") not in plugin.calls
        assert api.watch_params()[-1]["resourceVersion"] == "5"
    finally:
        lagging.set()
        m.stop()
        api.close()
