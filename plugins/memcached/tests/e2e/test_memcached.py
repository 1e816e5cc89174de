"""The Memcached operator against a real API server (KWOK runs the pods)."""

from __future__ import annotations

import json
from typing import Any

import minop_memcached.crd as memcached_crd
import minop_memcached.hooks as memcached
import pytest

from minop.kit.e2e.deployment import (
    INSTANCE,
    apply_cr,
    assert_owned,
    assert_restricted_pod_template,
    audit_writes,
    check_admission,
    check_drift_repair,
    check_image_roll,
    check_invalid,
    check_scale,
    condition,
    get,
    live_pods,
    patch_spec,
    pod_ready,
    restricted,
    rs_names,
    schedulable_nodes,
    schema_cases,
    wait_rolled,
)
from minop.kit.e2e.fixtures import metric
from minop.kit.testing import OperatorRunner, wait_for

INTERVAL = "spec.metrics.serviceMonitor.interval"
pytestmark = pytest.mark.usefixtures("plugin_crds")
# another image of Memcached, also on the kind nodes (hack/kind/app-images.sh; nothing can be
# pulled there): tests that change spec.image switch to it
OTHER_IMAGE = "minop/memcached:1.6"

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

        check_image_roll(kubectl, ns, "memcached", "mc", OTHER_IMAGE, settled)

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
    monkeypatch.setenv("MEMCACHED_IMAGE", OTHER_IMAGE)
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
    assert container["image"] == OTHER_IMAGE
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
        # the resync as the controllers start queues the Memcached: one update (the
        # initial listing's events come before: a replica not yet leading queues nothing)
        wait_for(
            lambda: metric(second, "minop_hook_calls_total", hook="minop_update") >= 1,
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


@pytest.mark.apionly
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"size": 0}, "spec.size"),
        ({"size": 1001}, "spec.size"),
        ({"drainSeconds": 301}, "spec.drainSeconds"),
        ({"sasl": {}}, "spec.sasl.secretName"),
        ({"sasl": {"secretName": "Bad_Name"}}, "spec.sasl.secretName"),
        ({"networkPolicy": {"from": [{}] * 33}}, "spec.networkPolicy.from"),
        ({"stableNames": "yes"}, "spec.stableNames"),
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


@pytest.mark.apionly
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
        *schema_cases(memcached_crd.DEFINITION, ["size", "drainSeconds"], {}),
        pytest.param({"stableNames": True, "size": 3}, None, id="stable-names"),
        pytest.param(
            {"networkPolicy": {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}},
            None,
            id="network-policy",
        ),
        pytest.param({"networkPolicy": {}}, None, id="network-policy-nobody"),
        pytest.param({"sasl": {"secretName": "creds"}}, None, id="sasl"),
        *schema_cases(memcached_crd.DEFINITION, ["metrics.port"], {}),
        *[
            pytest.param(
                {"metrics": {"serviceMonitor": {"interval": v}}}, field, id=f"interval={v}"
            )
            for v, field in [("30s", None), ("1m30s", None), ("30", INTERVAL), ("soon", INTERVAL)]
        ],
        pytest.param({"metrics": {"enabled": True}}, None, id="metrics"),
        pytest.param({"warmRestart": True}, None, id="warm-restart"),
        pytest.param(
            {"warmRestart": True, "memoryLimitMB": 63}, "spec.warmRestart", id="warm-under-64"
        ),
        pytest.param({"warmRestart": False, "memoryLimitMB": 8}, None, id="cold-small"),
        pytest.param({"metrics": {"port": 11211}}, "spec.metrics.port", id="metrics-port=port"),
        pytest.param(
            {"metrics": {"enabled": True}, "sasl": {"secretName": "creds"}},
            "spec.metrics.enabled",
            id="metrics-with-sasl",
        ),
        pytest.param(
            {"metrics": {"enabled": False}, "sasl": {"secretName": "creds"}},
            None,
            id="metrics-off-with-sasl",
        ),
        pytest.param(
            {"metrics": {"serviceMonitor": {"enabled": True}}},
            "spec.metrics.serviceMonitor.enabled",
            id="servicemonitor-without-metrics",
        ),
        pytest.param(
            {
                "metrics": {
                    "enabled": True,
                    "serviceMonitor": {"enabled": True, "interval": "30s", "labels": {"a": "b"}},
                }
            },
            None,
            id="servicemonitor",
        ),
    ],
)
def test_memcached_options_admission(namespace, kubectl, spec, field):
    check_admission(kubectl, namespace, MC, "Memcached", spec, field)
