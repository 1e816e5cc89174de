"""Which controllers an event reaches (``minop.handlers``): only the leader's; the
object's own, its owners' and its referrers', cluster-scoped kinds included (issue 22)."""

import pytest

import minop
from minop.kinds import CONFIGMAP, SECRET, STORAGECLASS
from minop.kube import Kube
from minop.manager import Manager
from minop.objects import Key
from minop.plugin.manager import PluginManager
from minop.settings import Settings

CLUSTER = minop.Kind("test.minop.dev", "v1", "Cluster", "clusters", namespaced=False)
WIDGET = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")


class Owners:
    @minop.hookimpl
    def minop_resources(self):
        sc = minop.Related(STORAGECLASS, names=lambda body: [body["spec"].get("class")])
        return [
            minop.Resource(kind=CONFIGMAP),  # owned here, a child of the two below
            minop.Resource(kind=CLUSTER, children=(CONFIGMAP,)),
            minop.Resource(kind=WIDGET, children=(CONFIGMAP, SECRET), related=(sc,)),
        ]


def obj(kind, name, ns="", owner=None):
    meta = {"name": name, "uid": f"u-{name}", "resourceVersion": "3"}
    if ns:
        meta["namespace"] = ns
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": owner.api_version, "kind": owner.kind, "name": "o1", "uid": "u-o1"}
        ]
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}


@pytest.fixture
def manager():
    pm = PluginManager()
    pm.register(Owners(), "owners")
    settings = Settings(health_addr="0", metrics_addr="0", workers=1)
    pm.startup(settings)
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    m = Manager(settings, plugins=pm, kube=Kube(config, agent="t", qps=0))
    m.bind()
    yield m
    m.stop()


def adds(m, kind):
    return m.metrics.queue_adds.value(name=kind.kind.lower())


def test_a_standby_queues_nothing_and_the_leader_queues_each_event(manager):
    handle = manager.handlers.handler(CONFIGMAP)
    handle("ADDED", obj(CONFIGMAP, "a", "ns"))
    handle("DELETED", obj(CONFIGMAP, "a", "ns"))
    assert adds(manager, CONFIGMAP) == 0
    manager.start_controllers()
    handle("ADDED", obj(CONFIGMAP, "b", "ns"))
    assert adds(manager, CONFIGMAP) == 1


def test_an_owned_kind_that_is_a_child_also_reaches_its_owner(manager):
    manager.start_controllers()
    manager.handlers.handler(CONFIGMAP)("MODIFIED", obj(CONFIGMAP, "c", "ns", owner=WIDGET))
    assert adds(manager, CONFIGMAP) == 1
    assert adds(manager, WIDGET) == 1


def test_a_cluster_scoped_owner_hears_of_its_namespaced_children(manager):
    manager.start_controllers()
    manager.handlers.handler(CONFIGMAP)("ADDED", obj(CONFIGMAP, "c", "team-a", owner=CLUSTER))
    assert adds(manager, CLUSTER) == 1


def test_a_cluster_scoped_related_object_reaches_its_namespaced_referrers(manager):
    manager.start_controllers()
    # what the reconciler records for a Widget in "ns" naming StorageClass "fast"
    manager.cache.refer(Key(WIDGET, "ns", "w1"), STORAGECLASS, "ns", ["fast"])
    manager.handlers.handler(STORAGECLASS)("MODIFIED", obj(STORAGECLASS, "fast"))
    assert adds(manager, WIDGET) == 1
