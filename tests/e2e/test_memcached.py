"""The Memcached operator against a real API server (KWOK runs the pods).

The helpers at the top are shared with test_nginx.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import minop_memcached.crd as memcached_crd
import minop_memcached.hooks as memcached
import pytest
from conftest import OTHER_IMAGE, AuditLog, metric

from minop.kit.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("plugin_crds")
INSTANCE = "app.kubernetes.io/instance"

# -- helpers shared with test_nginx.py --------------------------------------------------


def get(kubectl, ns: str, what: str, missing_ok: bool = False) -> Any:
    r = kubectl("get", what, "-n", ns, "-o", "json", check=not missing_ok)
    return json.loads(r.stdout) if r.returncode == 0 else None


def apply_cr(kubectl, ns: str, api_version: str, kind: str, name: str, spec: dict):
    """``kubectl apply`` a custom resource; returns the CompletedProcess (no check)."""
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def patch_spec(kubectl, ns: str, what: str, spec: dict) -> None:
    kubectl("patch", what, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def live_pods(kubectl, ns: str, name: str) -> list[dict]:
    """The instance's pods that are not terminating, sorted by name."""
    items = get(kubectl, ns, "pods")["items"]
    return sorted(
        (
            p
            for p in items
            if p["metadata"].get("labels", {}).get(INSTANCE) == name
            and not p["metadata"].get("deletionTimestamp")
        ),
        key=lambda p: p["metadata"]["name"],
    )


def schedulable_nodes(kubectl) -> int:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return sum(
        1
        for n in nodes
        if not n["spec"].get("unschedulable")
        and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
    )


def pod_ready(pod: dict) -> bool:
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def condition(obj: dict | None, ctype: str) -> dict:
    return next(
        (c for c in (obj or {}).get("status", {}).get("conditions", []) if c["type"] == ctype), {}
    )


def restricted(kubectl, ns: str) -> None:
    """Enforce the restricted Pod Security Standard: a non-compliant pod is never created."""
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")


def assert_owned(kubectl, ns: str, owner: dict, *children: str) -> None:
    for what in children:
        refs = get(kubectl, ns, what)["metadata"].get("ownerReferences", [])
        assert [(r["uid"], r.get("controller")) for r in refs] == [
            (owner["metadata"]["uid"], True)
        ], what


def assert_restricted_pod_template(dep: dict) -> None:
    pod = dep["spec"]["template"]["spec"]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


def replicasets(kubectl, ns: str, name: str) -> list[dict]:
    """ReplicaSets of Deployment ``name`` that still have pods wanted."""
    items = get(kubectl, ns, "replicasets")["items"]
    return [
        rs
        for rs in items
        if any(r["name"] == name for r in rs["metadata"].get("ownerReferences", []))
        and rs["spec"].get("replicas", 0) > 0
    ]


def wait_rolled(kubectl, ns: str, name: str, old_rs: set[str], pred: Callable[[dict], bool]):
    """Wait until every pod of ``name`` comes from a new ReplicaSet and matches ``pred``."""

    def done() -> bool:
        rs = replicasets(kubectl, ns, name)
        pods = live_pods(kubectl, ns, name)
        return (
            len(rs) == 1
            and rs[0]["metadata"]["name"] not in old_rs
            and bool(pods)
            and all(pred(p) for p in pods)
        )

    wait_for(done, 60, f"{name}'s pods rolled to a new ReplicaSet")


def rs_names(kubectl, ns: str, name: str) -> set[str]:
    return {rs["metadata"]["name"] for rs in replicasets(kubectl, ns, name)}


Settled = Callable[[Any, str, str, int], bool]  # (kubectl, ns, name, pods): Ready and true


def check_scale(kubectl, ns: str, kind: str, name: str, field: str, settled: Settled) -> None:
    """Scale through the spec's ``field`` to 3 pods, then through the scale subresource
    to 1, where the PDB goes."""
    patch_spec(kubectl, ns, f"{kind}/{name}", {field: 3})
    wait_for(lambda: settled(kubectl, ns, name, 3), 60, "3 pods")
    kubectl("scale", f"{kind}/{name}", "-n", ns, "--replicas=1")
    wait_for(lambda: settled(kubectl, ns, name, 1), 60, "1 pod")
    wait_for(lambda: get(kubectl, ns, f"pdb/{name}", missing_ok=True) is None, 20, "PDB removed")


def check_image_roll(kubectl, ns: str, kind: str, name: str, image: str, settled: Settled):
    """An image change rolls the (one) pod onto a new ReplicaSet."""
    old = rs_names(kubectl, ns, name)
    patch_spec(kubectl, ns, f"{kind}/{name}", {"image": image})
    wait_rolled(kubectl, ns, name, old, lambda p: p["spec"]["containers"][0]["image"] == image)
    wait_for(lambda: settled(kubectl, ns, name, 1), 60, "settled after the image roll")


def check_drift_repair(kubectl, ns: str, name: str, deleted: str) -> None:
    """A child deleted comes back; a field we own, changed by another field manager, is
    reverted within 10 s; an annotation a user added survives."""
    uid = get(kubectl, ns, deleted)["metadata"]["uid"]
    kubectl("delete", deleted, "-n", ns)
    wait_for(
        lambda: (
            (get(kubectl, ns, deleted, missing_ok=True) or {"metadata": {"uid": uid}})["metadata"][
                "uid"
            ]
            != uid
        ),
        20,
        f"{deleted} recreated",
    )
    want = get(kubectl, ns, f"deployment/{name}")["spec"]["replicas"]
    kubectl("annotate", f"deployment/{name}", "-n", ns, "team=platform")
    kubectl(
        "patch",
        f"deployment/{name}",
        "-n",
        ns,
        "--field-manager=intruder",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": want + 3}}),
    )
    wait_for(
        lambda: get(kubectl, ns, f"deployment/{name}")["spec"]["replicas"] == want,
        10,
        "replicas reverted",
    )
    dep = get(kubectl, ns, f"deployment/{name}")
    assert dep["metadata"]["annotations"]["team"] == "platform"


def check_invalid(kubectl, ns: str, api_version: str, kind: str, spec: dict, field: str):
    r = apply_cr(kubectl, ns, api_version, kind, "bad", spec)
    assert r.returncode != 0, f"accepted: {spec}"
    assert field in r.stderr, r.stderr
    return r.stderr


def check_valid(kubectl, ns: str, api_version: str, kind: str, spec: dict) -> None:
    """The API server admits ``spec`` (a server-side dry run: nothing is stored)."""
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "ok"}, "spec": spec}
    r = kubectl(
        "apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(obj), check=False
    )
    assert r.returncode == 0, f"refused: {spec}: {r.stderr}"


def nested(path: str, value: Any) -> dict:
    """``nested("service.port", 80)`` is ``{"service": {"port": 80}}``."""
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


def field_cases(definition: dict, path: str) -> tuple[list[Any], list[Any]]:
    """(valid, invalid) values of the spec field ``path`` (dotted), read from its CRD
    schema: an integer's bounds and one past each, an enum's values and one that is not."""
    schema = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for part in path.split("."):
        schema = schema["properties"][part]
    if "enum" in schema:
        return list(schema["enum"]), [f"Not{schema['enum'][0]}", schema["enum"][0].lower()]
    if schema.get("type") == "integer":
        valid, invalid = [], []
        if "minimum" in schema:
            valid.append(schema["minimum"])
            invalid.append(schema["minimum"] - 1)
        if "maximum" in schema:
            valid.append(schema["maximum"])
            invalid.append(schema["maximum"] + 1)
        return valid, [*invalid, "many"]
    raise ValueError(f"no generated cases for {path} ({schema.get('type')})")


def schema_cases(definition: dict, paths: list[str], base: dict) -> list[Any]:
    """pytest params (spec, field or None for valid) for every generated case of ``paths``,
    each on top of ``base`` (what cross-field rules need for the extremes)."""
    out = []
    for path in paths:
        valid, invalid = field_cases(definition, path)
        out += [pytest.param({**base, **nested(path, v)}, None, id=f"{path}={v}") for v in valid]
        out += [
            pytest.param({**base, **nested(path, v)}, f"spec.{path}", id=f"{path}={v}")
            for v in invalid
        ]
    return out


def check_admission(kubectl, ns: str, api_version: str, kind: str, spec: dict, field):
    if field is None:
        check_valid(kubectl, ns, api_version, kind, spec)
    else:
        check_invalid(kubectl, ns, api_version, kind, spec, field)


def audit_writes(audit_log: AuditLog, agent: str) -> list[tuple[str, str, str]]:
    out = []
    for e in audit_log.entries():
        if (
            e.get("userAgent") == agent
            and e.get("stage") == "ResponseComplete"
            and e.get("verb") in ("create", "update", "patch", "delete")
        ):
            ref = e["objectRef"]
            out.append((e["verb"], ref["resource"], ref.get("name", "")))
    return out


# -- Memcached -----------------------------------------------------------------------

MC = "cache.minop.dev/v1alpha1"


def apply_mc(kubectl, ns: str, name: str, **spec: Any):
    return apply_cr(kubectl, ns, MC, "Memcached", name, spec)


def settled(kubectl, ns: str, name: str, size: int) -> bool:
    """Ready, and the status true to the pods."""
    mc = get(kubectl, ns, f"memcached/{name}")
    st = mc.get("status", {})
    pods = live_pods(kubectl, ns, name)
    names = [p["metadata"]["name"] for p in pods]
    return (
        len(pods) == size
        and all(pod_ready(p) for p in pods)
        and st.get("nodes") == names
        and st.get("readyReplicas") == size
        and st.get("replicas") == size
        and st.get("observedGeneration") == mc["metadata"]["generation"]
        and condition(mc, "Ready").get("status") == "True"
    )


def test_memcached_lifecycle(namespace, kubectl):
    ns = namespace
    restricted(kubectl, ns)
    with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
        spec = {"size": 2, "memoryLimitMB": 128, "maxConnections": 500, "maxItemSizeMB": 2}
        spec |= {"threads": 2, "verbosity": 1}
        assert apply_mc(kubectl, ns, "mc", **spec).returncode == 0
        kubectl("wait", "--for=condition=Ready", "memcached/mc", "-n", ns, "--timeout=60s")
        wait_for(lambda: settled(kubectl, ns, "mc", 2), 30, "status true to the pods")

        mc = get(kubectl, ns, "memcached/mc")
        assert_owned(kubectl, ns, mc, "deployment/mc", "service/mc", "pdb/mc")
        dep = get(kubectl, ns, "deployment/mc")
        assert_restricted_pod_template(dep)
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 11211
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "memcached:1.6.38"
        assert container["command"] == [
            "memcached", "-m", "128", "-c", "500", "-p", "11211", "-U", "0",
            "-I", "2m", "-t", "2", "-v",
        ]  # fmt: skip
        # spread over nodes where the scheduler can, by default
        [spread] = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == (
            "kubernetes.io/hostname",
            "ScheduleAnyway",
        )
        nodes = {p["spec"]["nodeName"] for p in live_pods(kubectl, ns, "mc")}
        assert len(nodes) == min(2, schedulable_nodes(kubectl)), nodes
        svc = get(kubectl, ns, "service/mc")
        assert svc["spec"]["clusterIP"] == "None"  # clients shard over every pod
        assert svc["spec"]["ports"][0]["port"] == 11211
        assert get(kubectl, ns, "pdb/mc")["spec"]["maxUnavailable"] == 1
        table = kubectl("get", "mc", "-n", ns).stdout.splitlines()
        assert table[0].split() == ["NAME", "SIZE", "READY", "AGE"]
        assert table[1].split()[:3] == ["mc", "2", "2"]

        check_scale(kubectl, ns, "memcached", "mc", "size", settled)
        scale = json.loads(
            kubectl("get", "memcached/mc", "-n", ns, "--subresource=scale", "-o", "json").stdout
        )
        assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
        assert scale["status"]["selector"] == (
            "app.kubernetes.io/instance=mc,app.kubernetes.io/managed-by=minop,"
            "app.kubernetes.io/name=memcached"
        )

        check_image_roll(kubectl, ns, "memcached", "mc", OTHER_IMAGE["memcached"], settled)

        # a configuration change rolls them too
        old = rs_names(kubectl, ns, "mc")
        patch_spec(kubectl, ns, "memcached/mc", {"memoryLimitMB": 256})
        wait_rolled(
            kubectl, ns, "mc", old, lambda p: "256" in p["spec"]["containers"][0]["command"]
        )
        wait_for(lambda: settled(kubectl, ns, "mc", 1), 60, "settled after the config roll")

        check_drift_repair(kubectl, ns, "mc", "service/mc")

        # deletion: the garbage collector removes every child with the owner
        patch_spec(kubectl, ns, "memcached/mc", {"size": 2})
        wait_for(lambda: get(kubectl, ns, "pdb/mc", missing_ok=True), 20, "PDB back")
        kubectl("delete", "memcached/mc", "-n", ns)
        for child in ("deployment/mc", "service/mc", "pdb/mc"):
            wait_for(
                lambda c=child: get(kubectl, ns, c, missing_ok=True) is None,
                60,
                f"{child} garbage-collected",
            )
        wait_for(lambda: not live_pods(kubectl, ns, "mc"), 60, "pods gone")


def test_memcached_scheduling_passes_through_and_image_env_overrides(
    namespace, kubectl, monkeypatch
):
    ns = namespace
    monkeypatch.setenv("MEMCACHED_IMAGE", OTHER_IMAGE["memcached"])
    # labels every node has, KWOK's and kind's, so the pods still run
    spec = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "Exists"}]}
                    ]
                }
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {INSTANCE: "mc"}},
            }
        ],
        "imagePullSecrets": [{"name": "regcred"}],
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "podLabels": {"team": "cache"},
        "resources": {
            "requests": {"cpu": "0.1", "memory": "0.125Gi"},
            "limits": {"memory": "1024Mi"},
        },
    }
    with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
        assert apply_mc(kubectl, ns, "mc", **spec).returncode == 0
        kubectl("wait", "--for=condition=Ready", "memcached/mc", "-n", ns, "--timeout=60s")
    pod = get(kubectl, ns, "deployment/mc")["spec"]["template"]
    for field in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints"):
        assert pod["spec"][field] == spec[field], field
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert pod["metadata"]["labels"]["team"] == "cache"
    container = pod["spec"]["containers"][0]
    assert container["image"] == OTHER_IMAGE["memcached"]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_memcached_restart_over_converged_objects_writes_nothing(namespace, kubectl, audit_log):
    """Quantities in the spec that the API server rewrites ("0.1" → "100m") must not
    make every reconcile send the Deployment again."""
    ns = namespace
    spec = {"size": 2, "resources": {"requests": {"cpu": "0.1"}, "limits": {"memory": "0.5Gi"}}}
    with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
        assert apply_mc(kubectl, ns, "mc", **spec).returncode == 0
        wait_for(lambda: settled(kubectl, ns, "mc", 2), 60, "settled")
    second = OperatorRunner({"memcached": memcached}, namespaces=[ns])
    with second:
        # the children's initial listing re-queues the Memcached: an update per child kind
        wait_for(
            lambda: metric(second, "minop_hook_calls_total", hook="minop_update") >= 2,
            30,
            "reconciles after the restart",
        )
        wait_for(lambda: metric(second, "workqueue_depth") == 0, 30, "queue drained")
        assert metric(second, "minop_hook_calls_total", result="error") == 0
        assert audit_writes(audit_log, second.agent) == []


def test_memcached_horizontal_pod_autoscaler_scales_through_the_subresource(namespace, kubectl):
    """The HPA controller reads /scale (status.replicas, status.selector) and writes
    spec.size; below minReplicas it scales without needing any metrics."""
    ns = namespace
    with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
        assert apply_mc(kubectl, ns, "mc", size=1).returncode == 0
        wait_for(lambda: settled(kubectl, ns, "mc", 1), 60, "1 pod")
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "mc"},
            "spec": {
                "scaleTargetRef": {"apiVersion": MC, "kind": "Memcached", "name": "mc"},
                "minReplicas": 3,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        }
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(hpa))
        wait_for(lambda: settled(kubectl, ns, "mc", 3), 90, "HPA scaled to minReplicas")
        assert get(kubectl, ns, "memcached/mc")["spec"]["size"] == 3


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"size": 0}, "spec.size"),
        ({"size": 11}, "spec.size"),
        ({"port": 0}, "spec.port"),
        ({"port": 70000}, "spec.port"),
        ({"memoryLimitMB": 0}, "spec.memoryLimitMB"),
        ({"maxConnections": 0}, "spec.maxConnections"),
        ({"maxConnections": 70000}, "spec.maxConnections"),
        ({"image": ""}, "spec.image"),
        ({"resources": {"limits": {"memory": "lots"}}}, "spec.resources.limits.memory"),
        (
            {"memoryLimitMB": 128, "resources": {"limits": {"memory": "128Mi"}}},
            "spec.resources.limits[memory]",
        ),
    ],
)
def test_invalid_memcached_is_rejected_naming_the_field(namespace, kubectl, spec, field):
    check_invalid(kubectl, namespace, MC, "Memcached", spec, field)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        # generated from the CRD: the typed memcached options; 2 GiB of memory lets the
        # largest item size pass the cross-field rule
        *schema_cases(
            memcached_crd.DEFINITION,
            ["maxItemSizeMB", "threads", "verbosity"],
            {"memoryLimitMB": 2048},
        ),
        # cross-field: an item at most half the memory, as memcached demands
        pytest.param({"memoryLimitMB": 8, "maxItemSizeMB": 4}, None, id="item-half-memory"),
        pytest.param(
            {"memoryLimitMB": 7, "maxItemSizeMB": 4}, "spec.maxItemSizeMB", id="item-over-half"
        ),
        pytest.param({"maxItemSizeMB": 33}, "spec.maxItemSizeMB", id="item-over-default-half"),
    ],
)
def test_memcached_options_admission(namespace, kubectl, spec, field):
    check_admission(kubectl, namespace, MC, "Memcached", spec, field)
