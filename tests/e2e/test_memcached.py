"""The Memcached operator against a real API server (KWOK runs the pods)."""

from __future__ import annotations

import json

import minop_memcached.hooks as memcached
import pytest

from minop.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("plugin_crds")


def get(kubectl, ns, what, missing_ok=False):
    r = kubectl("get", what, "-n", ns, "-o", "json", check=not missing_ok)
    return json.loads(r.stdout) if r.returncode == 0 else None


def apply_mc(kubectl, ns, name, **spec):
    obj = {
        "apiVersion": "cache.minop.dev/v1alpha1",
        "kind": "Memcached",
        "metadata": {"name": name},
        "spec": spec,
    }
    return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def pods(kubectl, ns, name):
    items = get(kubectl, ns, "pods")["items"]
    return sorted(
        p["metadata"]["name"]
        for p in items
        if p["metadata"]["labels"].get("app.kubernetes.io/instance") == name
        and not p["metadata"].get("deletionTimestamp")
    )


def settled(kubectl, ns, name, size):
    mc = get(kubectl, ns, f"memcached/{name}")
    st = mc.get("status", {})
    live = pods(kubectl, ns, name)
    return (
        st.get("readyReplicas") == size
        and st.get("nodes") == live
        and len(live) == size
        and st.get("observedGeneration") == mc["metadata"]["generation"]
    )


def test_memcached_lifecycle(namespace, kubectl):
    ns = namespace
    with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
        assert apply_mc(kubectl, ns, "mc", size=2, memoryLimitMB=128).returncode == 0
        kubectl("wait", "--for=condition=Ready", "memcached/mc", "-n", ns, "--timeout=60s")
        wait_for(lambda: settled(kubectl, ns, "mc", 2), 30, "status true to the pods")
        mc = get(kubectl, ns, "memcached/mc")
        dep = get(kubectl, ns, "deployment/mc")
        assert dep["metadata"]["ownerReferences"][0]["uid"] == mc["metadata"]["uid"]
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert "-m" in pod["containers"][0]["command"]
        assert get(kubectl, ns, "service/mc")["spec"]["ports"][0]["port"] == 11211
        assert get(kubectl, ns, "pdb/mc")["spec"]["maxUnavailable"] == 1

        # scale through the spec, then through the scale subresource
        kubectl("patch", "memcached/mc", "-n", ns, "--type=merge", "-p", '{"spec":{"size":3}}')
        wait_for(lambda: settled(kubectl, ns, "mc", 3), 60, "3 pods")
        kubectl("scale", "memcached/mc", "-n", ns, "--replicas=1")
        wait_for(lambda: settled(kubectl, ns, "mc", 1), 60, "1 pod")
        wait_for(lambda: get(kubectl, ns, "pdb/mc", missing_ok=True) is None, 20, "PDB removed")
        mc = get(kubectl, ns, "memcached/mc")
        assert mc["status"]["selector"] == (
            "app.kubernetes.io/instance=mc,app.kubernetes.io/managed-by=minop,"
            "app.kubernetes.io/name=memcached"
        )

        # image change rolls the pods
        kubectl(
            "patch",
            "memcached/mc",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"image":"memcached:1.6.39"}}',
        )

        def rolled():
            items = get(kubectl, ns, "pods")["items"]
            return items and all(
                p["spec"]["containers"][0]["image"] == "memcached:1.6.39"
                for p in items
                if not p["metadata"].get("deletionTimestamp")
            )

        wait_for(rolled, 60, "pods on the new image")
        wait_for(lambda: settled(kubectl, ns, "mc", 1), 60, "settled after the roll")

        # drift: deleted child recreated; a field we own reverted; user annotation kept
        kubectl("delete", "service/mc", "-n", ns)
        wait_for(lambda: get(kubectl, ns, "service/mc", missing_ok=True), 20, "Service back")
        kubectl("annotate", "deployment/mc", "-n", ns, "team=cache")
        kubectl(
            "patch",
            "deployment/mc",
            "-n",
            ns,
            "--field-manager=intruder",
            "--type=merge",
            "-p",
            '{"spec":{"replicas":4}}',
        )
        wait_for(
            lambda: get(kubectl, ns, "deployment/mc")["spec"]["replicas"] == 1,
            10,
            "replicas reverted",
        )
        assert get(kubectl, ns, "deployment/mc")["metadata"]["annotations"]["team"] == "cache"

        # deletion: children go with the owner
        kubectl("delete", "memcached/mc", "-n", ns)
        wait_for(
            lambda: get(kubectl, ns, "deployment/mc", missing_ok=True) is None,
            60,
            "Deployment garbage-collected",
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"size": 0}, "spec.size"),
        ({"size": 11}, "spec.size"),
        ({"port": 70000}, "spec.port"),
        ({"memoryLimitMB": 0}, "spec.memoryLimitMB"),
        ({"maxConnections": -1}, "spec.maxConnections"),
    ],
)
def test_invalid_memcached_is_rejected_naming_the_field(namespace, kubectl, spec, field):
    r = apply_mc(kubectl, namespace, "bad", **spec)
    assert r.returncode != 0 and field in r.stderr, r.stderr
