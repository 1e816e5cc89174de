"""A cluster-scoped custom resource's namespaced children: applied, listed, read and
deleted in the namespace they live in, never under "" (issue 22)."""

import minop
from minop.kinds import CONFIGMAP

from .widget import Env

CLUSTER = minop.Kind("test.minop.dev", "v1", "Cluster", "clusters", namespaced=False)


class Tenants:
    """A Cluster keeps one ConfigMap in each namespace of ``spec.namespaces``."""

    def __init__(self):
        self.seen = []

    @minop.hookimpl
    def minop_create(self, ctx):
        for ns in ctx.spec["namespaces"]:
            ctx.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "t", "namespace": ns},
                }
            )

    @minop.hookimpl
    def minop_update(self, ctx):
        have = ctx.children(CONFIGMAP)
        self.seen.append([(c["metadata"]["namespace"], c["metadata"]["name"]) for c in have])
        for c in have:
            if c["metadata"]["namespace"] not in ctx.spec["namespaces"]:
                ctx.delete(CONFIGMAP, "t", namespace=c["metadata"]["namespace"])
        self.seen.append(ctx.child(CONFIGMAP, "t", namespace="team-a") is not None)


def cluster_env(plugin):
    return Env(plugin, minop.Resource(kind=CLUSTER, children=(CONFIGMAP,)))


def put_cluster(env, spec):
    body = {"apiVersion": CLUSTER.api_version, "kind": CLUSTER.kind, "metadata": {"name": "c1"}}
    env.api.put(CLUSTER, {**body, "spec": spec})
    env.deliver("c1")


def where(objects):
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}


def test_children_of_a_cluster_scoped_owner_are_listed_read_and_deleted_where_they_are():
    p = Tenants()
    env = cluster_env(p)
    put_cluster(env, {"namespaces": ["team-a", "team-b"]})
    env.process("c1")
    assert where(env.api.all(CONFIGMAP)) == {("team-a", "t"), ("team-b", "t")}
    put_cluster(env, {"namespaces": ["team-a"]})
    env.process("c1")
    assert p.seen == [[("team-a", "t"), ("team-b", "t")], True]
    deletes = [s.path for s in env.api.sent if s.method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/team-b/configmaps/t"]
    assert where(env.api.all(CONFIGMAP)) == {("team-a", "t")}


def test_a_namespaced_child_of_a_cluster_scoped_owner_needs_its_namespace():
    class Careless(Tenants):
        @minop.hookimpl
        def minop_create(self, ctx):
            ctx.delete(CONFIGMAP, "t")

    env = cluster_env(Careless())
    put_cluster(env, {"namespaces": []})
    env.process("c1")
    degraded = next(c for c in env.status("c1")["conditions"] if c["type"] == "Degraded")
    assert "namespace: required for ConfigMap children" in degraded["message"]
