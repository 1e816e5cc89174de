"""Our own write responses recorded late never bring a deleted object back (issue 22).

Each test forces the interleaving: the watch delivers our write, then a user's
delete, before the worker records the write's response; or a re-list after a gap
in which a child we had just created was deleted.
"""

import hashlib

import minop
from minop.informer import Informer
from minop.kinds import CONFIGMAP
from minop.kit.testing import FakeServer, wait_for
from minop.kube import Kube
from minop.objects import Key, rv_of
from minop.store import Store

from .widget import KIND, NS, Env, cm

CHILD = "x-config"


class ChildPlugin:
    @minop.hookimpl
    def minop_create(self, ctx):
        ctx.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CHILD}})

    @minop.hookimpl
    def minop_update(self, ctx):
        self.minop_create(ctx)


def deleted_before_the_response_is_recorded(env: Env) -> None:
    """The next apply's response reaches the worker only after the watch delivered
    the child's ADDED and then a user's DELETED."""

    def racing(path):
        env.api.after_write = None  # once
        env.api.remove(CONFIGMAP, NS, CHILD)  # kubectl delete configmap
        assert env.fake.deliver(CONFIGMAP) == 2  # ADDED, DELETED

    env.api.after_write = racing


def test_a_child_deleted_before_our_apply_response_is_recorded_is_created_again():
    env = Env(ChildPlugin(), minop.Resource(kind=KIND, children=(CONFIGMAP,)))
    deleted_before_the_response_is_recorded(env)
    env.create("x", {"size": 1})
    env.process("x")
    assert env.api.get(CONFIGMAP, NS, CHILD) is None
    env.process("x", "child")  # the DELETED event's pass
    assert env.api.get(CONFIGMAP, NS, CHILD) is not None
    assert len(env.writes("apply")) == 2


def test_a_response_older_than_a_deletion_is_refused_and_a_later_one_accepted():
    s = Store(CONFIGMAP)
    s.upsert(cm("a", 5))
    s.remove(Key(CONFIGMAP, "ns", "a"), "6")
    s.mutated(cm("a", 5))  # recorded late
    assert s.get(Key(CONFIGMAP, "ns", "a")) is None
    s.mutated(cm("a", 7))  # recreated by us after the deletion
    assert s.get(Key(CONFIGMAP, "ns", "a"))["metadata"]["resourceVersion"] == "7"


def test_overlay_entries_and_delete_records_expire():
    now = [0.0]
    s = Store(CONFIGMAP, ttl=60, clock=lambda: now[0])
    s.mutated(cm("a", 5))  # the watch never delivers it (e.g. it does not match)
    s.upsert(cm("b", 5))
    s.remove(Key(CONFIGMAP, "ns", "b"), "6")
    assert s.get(Key(CONFIGMAP, "ns", "a")) is not None and s.pending() == 2
    now[0] = 61
    assert s.get(Key(CONFIGMAP, "ns", "a")) is None
    assert s.pending() == 0


def test_relist_forgets_a_child_created_before_the_gap_and_deleted_during_it():
    api = FakeServer()
    api.lists.put(([cm("a", 2)], 3))
    api.lists.put(([cm("a", 2)], 9))  # b was created at 4 and deleted at 8
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.watches.put([{"type": "ERROR", "object": gone}])
    events: list[tuple[str, str]] = []
    informer: Informer

    def handler(etype, obj, *, echo=False):
        name = obj["metadata"]["name"]
        events.append((etype, name))
        if (etype, name) == ("ADDED", "a"):  # our create's response, recorded before the gap
            informer.store.mutated(cm("b", 4))

    kube = Kube(api.kubeconfig(), agent="t", qps=0)
    informer = Informer(kube, CONFIGMAP, handler, namespace="ns", max_backoff=0.05)
    informer.start()
    try:
        wait_for(lambda: ("DELETED", "b") in events, 5, "b reported deleted by the relist")
        assert informer.get("ns", "b") is None
        informer.store.mutated(cm("b", 4))  # a response recorded even later
        assert informer.get("ns", "b") is None
    finally:
        informer.stop()
        api.close()


class Finalizing:
    def __init__(self):
        self.calls = []

    @minop.hookimpl
    def minop_create(self, ctx):
        self.calls.append(("create", ctx.cause))

    @minop.hookimpl
    def minop_update(self, ctx):
        self.calls.append(("update", ctx.cause))

    @minop.hookimpl
    def minop_finalize(self, ctx):
        self.calls.append(("finalize", ctx.cause))


def opaque_versions(env: Env) -> None:
    """resourceVersions as an API server other than kube-apiserver may hand out: not
    integers, and not ordered as strings either."""
    env.api.rv_format = lambda n: f"{hashlib.sha1(str(n).encode()).hexdigest()[:6]}z"


def test_opaque_resource_versions_keep_read_your_writes():
    """Unordered versions made every response look old: the finalizer patch was sent
    again (and refused with 409 until the watch caught up), create ran twice."""
    p = Finalizing()
    env = Env(p)
    opaque_versions(env)
    env.create("x", {"size": 1})
    env.process("x")  # adds the finalizer
    env.process("x", "create")  # reads the finalizer from our response: creates
    env.process("x", "child")  # reads lastHandledSpec from our status write's response
    assert p.calls == [("create", "create"), ("update", "child")]
    assert len(env.writes("patch/json")) == 1
    env.deliver("x")  # the watch catches up: same outcome
    env.process("x", "child")
    assert p.calls[-1] == ("update", "child") and len(env.writes("patch/json")) == 1


def test_opaque_versions_refuse_a_response_the_watch_already_delivered():
    s = Store(CONFIGMAP)
    s.upsert({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "k1"}})
    s.mutated({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "q7"}})
    s.upsert({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "b2"}})
    assert rv_of(s.get(Key(CONFIGMAP, "ns", "a"))) == "q7"  # b2 came before our write on the watch
    s.upsert({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "q7"}})
    s.upsert({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "z0"}})
    s.mutated({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "q7"}})  # late
    assert rv_of(s.get(Key(CONFIGMAP, "ns", "a"))) == "z0"
    s.remove(Key(CONFIGMAP, "ns", "a"), "d4")
    s.mutated({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "z0"}})
    assert s.get(Key(CONFIGMAP, "ns", "a")) is None
