"""spec.metrics of a Redis against a real API server (KWOK): the sidecar and the metrics
Service always; the ServiceMonitor and the PrometheusRule each applied once its CRD
is served, and until then a condition (and a Warning Event) naming the missing CRD,
never a failed reconcile; each one independent of the other."""

from __future__ import annotations

import pytest
from test_redis import apply_redis, get, operator, patch_redis, redis_crd, wait_ready  # noqa: F401

from minop.kit import monitoring
from minop.kit.e2e import monitoring as prom
from minop.kit.e2e.deployment import assert_owned

pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("redis_crd")]


def test_service_monitor_and_prometheus_rule_wait_for_their_crds(namespace, kubectl):
    ns = namespace
    metrics = {
        "enabled": True,
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
    }
    with prom.without_operator_crds(kubectl), operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=2, metrics=metrics).returncode == 0
        # everything else is reconciled: Ready, with the sidecar and the metrics Service
        wait_ready(kubectl, ns, "r")
        prom.assert_crd_missing(kubectl, ns, "redis/r", monitoring.MONITOR)
        prom.assert_crd_missing(kubectl, ns, "redis/r", monitoring.RULE)
        pod = get(kubectl, ns, "statefulset/r")["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["redis", "metrics"]
        r = get(kubectl, ns, "redis/r")
        assert_owned(kubectl, ns, r, "service/r-metrics")
        assert get(kubectl, ns, "service/r-metrics")["spec"]["ports"][0]["port"] == 9121

        # PrometheusRule's CRD first: the rule follows, the ServiceMonitor still waits
        prom.install_crd(kubectl, monitoring.PROMETHEUS_RULE)
        metrics["prometheusRule"] = {"enabled": True, "labels": {"release": "prom"}}
        assert patch_redis(kubectl, ns, "r", {"metrics": metrics}).returncode == 0
        rule = prom.wait_applied(kubectl, ns, "redis/r", monitoring.RULE)
        assert_owned(kubectl, ns, r, "prometheusrules.monitoring.coreos.com/r")
        assert rule["metadata"]["labels"]["release"] == "prom"
        exprs = [x["expr"] for g in rule["spec"]["groups"] for x in g["rules"]]
        assert exprs and all(f'namespace="{ns}",service="r-metrics"' in e for e in exprs)
        prom.assert_crd_missing(kubectl, ns, "redis/r", monitoring.MONITOR)

        prom.install_crd(kubectl, monitoring.SERVICE_MONITOR)
        metrics["serviceMonitor"] = {"enabled": True, "interval": "30s"}
        assert patch_redis(kubectl, ns, "r", {"metrics": metrics}).returncode == 0
        sm = prom.wait_applied(kubectl, ns, "redis/r", monitoring.MONITOR)
        assert sm["spec"]["selector"] == {"matchLabels": {monitoring.METRICS_LABEL: "r"}}

        # turned off, each goes on its own
        assert patch_redis(kubectl, ns, "r", {"metrics": {"prometheusRule": None}}).returncode == 0
        prom.wait_deleted(kubectl, ns, "redis/r", monitoring.RULE)
        assert get(kubectl, ns, "servicemonitor/r", missing_ok=True) is not None
