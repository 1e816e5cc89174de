"""minop.kit.workloads: reading a failed init container, spreading pods over nodes, whom
the pods run as."""

from __future__ import annotations

from typing import Any

from minop.kit import workloads as wl

MSG = '2026/12/01 09:00:00 [emerg] 1#1: unknown directive "x" in /etc/nginx/a.conf:1\n'


def pod(*statuses: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": {"initContainerStatuses": list(statuses)}}


def status(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "check", "state": state, "lastState": last or {}}


def test_init_failure_reads_the_failed_run_while_the_kubelet_backs_off():
    failed = {"terminated": {"exitCode": 1, "message": MSG}}
    assert wl.init_failure(pod(status(failed)), "check") == MSG.strip()
    crashloop = status({"waiting": {"reason": "CrashLoopBackOff"}}, failed)
    assert wl.init_failure(pod(crashloop), "check") == MSG.strip()
    # the kubelet's next try of the same check: until it ends, the failure stands (the
    # object stayed Degraded only between tries, so the condition and its Event flapped)
    retrying = status({"running": {}}, failed)
    assert wl.init_failure(pod(retrying), "check") == MSG.strip()
    no_message = {"terminated": {"exitCode": 2}}
    assert wl.init_failure(pod(status(no_message)), "check") == "exited 2"


def test_init_failure_is_none_unless_the_last_run_failed():
    failed = {"terminated": {"exitCode": 1, "message": MSG}}
    succeeded_after_failing = status({"terminated": {"exitCode": 0}}, failed)
    assert wl.init_failure(pod(succeeded_after_failing), "check") is None
    assert wl.init_failure(pod(status({"running": {}})), "check") is None
    first_run_pending = status({"waiting": {"reason": "PodInitializing"}})
    assert wl.init_failure(pod(first_run_pending), "check") is None
    assert wl.init_failure(pod(status(failed)), "other") is None
    assert wl.init_failure({"metadata": {"name": "p"}}, "check") is None


def deployment(spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    inst = wl.Instance("d", "ns", spec, {}, {"app": "d"}, "img")
    return wl.deployment(inst, 2, 1000, {"name": "c"}, **kw)


def test_spread_across_nodes_is_soft_per_revision_and_yields_to_the_spec():
    pod_spec = deployment({}, spread=True)["spec"]["template"]["spec"]
    assert pod_spec["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "d"}},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]
    assert "topologySpreadConstraints" not in deployment({})["spec"]["template"]["spec"]
    own = [{"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]
    spec = {"topologySpreadConstraints": own}
    assert (
        deployment(spec, spread=True)["spec"]["template"]["spec"]["topologySpreadConstraints"]
        == own
    )
    affinity = {"affinity": {"podAntiAffinity": {}}}
    assert (
        "topologySpreadConstraints"
        not in deployment(affinity, spread=True)["spec"]["template"]["spec"]
    )


def test_init_containers_share_the_resources_and_max_unavailable_sets_the_strategy():
    spec = {"resources": {"limits": {"memory": "1024Mi"}}}
    d = deployment(spec, init_containers=[{"name": "i"}], max_unavailable=0)
    pod_spec = d["spec"]["template"]["spec"]
    assert pod_spec["initContainers"] == [{"name": "i", "resources": {"limits": {"memory": "1Gi"}}}]
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert "strategy" not in deployment({})["spec"]


def test_cpu_count_rounds_the_limit_else_the_request_up():
    assert wl.cpu_count({"resources": {"limits": {"cpu": "1500m"}, "requests": {"cpu": "4"}}}) == 2
    assert wl.cpu_count({"resources": {"requests": {"cpu": "100m"}}}) == 1
    assert wl.cpu_count({"resources": {"limits": {"memory": "1Gi"}}}) is None
    assert wl.cpu_count({}) is None


def test_pre_stop_drains_with_the_kubelets_sleep():
    assert wl.pre_stop(5) == {"preStop": {"sleep": {"seconds": 5}}}
    assert wl.pre_stop(0) == {}


def test_statefulset_keeps_the_deployments_pods_under_the_headless_service():
    inst = wl.Instance("c", "ns", {"replicas": 2}, {"i": "c"}, {"i": "c"}, "img")
    d = wl.deployment(inst, 2, 1000, {"name": "c", "image": "img"}, max_unavailable=0)
    sts = wl.statefulset(d, "c-headless")
    assert sts["kind"] == "StatefulSet" and sts["metadata"] == d["metadata"]
    assert sts["spec"] == {
        "replicas": 2,
        "serviceName": "c-headless",
        "podManagementPolicy": "Parallel",
        "selector": d["spec"]["selector"],
        "template": d["spec"]["template"],
    }  # no Deployment strategy carried over


def test_pod_security_context_sets_whom_the_pods_run_as_or_leaves_it_to_the_platform():
    """The image's user by default; the user's UID/GIDs (OpenShift's range, say); or none
    at all with assignedByPlatform (an SCC assigns them), still restricted otherwise."""

    def identity(spec: dict[str, Any]) -> dict[str, Any]:
        return deployment(spec)["spec"]["template"]["spec"]["securityContext"]

    restricted = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert identity({}) == {**restricted, "runAsUser": 1000, "runAsGroup": 1000}
    given = {"runAsUser": 1000680000, "runAsGroup": 0, "fsGroup": 1000680000}
    assert identity({"podSecurityContext": given}) == {**restricted, **given}
    assert identity({"podSecurityContext": {"assignedByPlatform": True}}) == restricted
    assert wl.pod_security({"podSecurityContext": {"fsGroup": 5}}, 999, fs_group=999) == {
        **restricted, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 5,
    }  # fmt: skip
