"""The metrics sidecar's Service and the optional ServiceMonitor against a real API
server: a missing Prometheus Operator CRD is a condition and an Event, never a failed
reconcile; once the CRD exists the ServiceMonitor follows the spec."""

from __future__ import annotations

import json

import minop_memcached.hooks as memcached
import pytest

from minop.kit import monitoring
from minop.kit.e2e.deployment import apply_cr, assert_owned, condition, get, patch_spec
from minop.kit.testing import OperatorRunner, wait_for

pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("plugin_crds")]

MC = "cache.minop.dev/v1alpha1"
SM_CRD = "servicemonitors.monitoring.coreos.com"
# The kind as the Prometheus Operator serves it, its schema left open: what the plugins
# write is checked by the unit tests, this only makes the API serve the kind.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": SM_CRD},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "listKind":
                  "ServiceMonitorList", "singular": "servicemonitor"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


def sm_condition(kubectl, ns: str) -> dict:
    return condition(get(kubectl, ns, "memcached/mc"), monitoring.CONDITION)


def warnings(kubectl, ns: str) -> list[str]:
    events = get(kubectl, ns, "events")["items"]
    return [e["reason"] for e in events if e["type"] == "Warning"]


def test_service_monitor_waits_for_its_crd_then_follows_the_spec(namespace, kubectl):
    ns = namespace
    kubectl("delete", "crd", SM_CRD, "--ignore-not-found", "--wait=true")
    metrics = {"enabled": True, "port": 9200, "serviceMonitor": {"enabled": True}}
    try:
        with OperatorRunner({"memcached": memcached}, namespaces=[ns]):
            assert (
                apply_cr(kubectl, ns, MC, "Memcached", "mc", {"metrics": metrics}).returncode == 0
            )
            # everything else is reconciled: the object is Ready, the sidecar runs
            kubectl("wait", "--for=condition=Ready", "memcached/mc", "-n", ns, "--timeout=60s")
            c = wait_for(lambda: sm_condition(kubectl, ns) or None, 30, "ServiceMonitorReady")
            assert (c["status"], c["reason"]) == ("False", "CRDNotInstalled")
            assert "metrics.serviceMonitor.enabled" in c["message"] and SM_CRD in c["message"]
            wait_for(lambda: "CRDNotInstalled" in warnings(kubectl, ns), 30, "a Warning Event")
            pod = get(kubectl, ns, "deployment/mc")["spec"]["template"]["spec"]
            assert [c["name"] for c in pod["containers"]] == ["memcached", "metrics"]
            mc = get(kubectl, ns, "memcached/mc")
            assert_owned(kubectl, ns, mc, "service/mc-metrics")
            svc = get(kubectl, ns, "service/mc-metrics")
            assert svc["spec"]["ports"][0]["name"] == "metrics"
            assert svc["spec"]["ports"][0]["port"] == 9200

            # the Prometheus Operator arrives; the next change of the object creates it
            kubectl("apply", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
            kubectl("wait", "--for=condition=Established", f"crd/{SM_CRD}", "--timeout=60s")
            metrics["serviceMonitor"] = {"enabled": True, "interval": "30s"}
            patch_spec(kubectl, ns, "memcached/mc", {"metrics": metrics})
            wait_for(
                lambda: sm_condition(kubectl, ns).get("status") == "True", 30, "ServiceMonitor"
            )
            sm = get(kubectl, ns, "servicemonitor/mc")
            assert_owned(kubectl, ns, mc, "servicemonitor/mc")
            assert sm["spec"]["endpoints"] == [
                {"port": "metrics", "path": "/metrics", "interval": "30s"}
            ]
            assert sm["spec"]["selector"] == {"matchLabels": {monitoring.METRICS_LABEL: "mc"}}
            assert svc["metadata"]["labels"][monitoring.METRICS_LABEL] == "mc"

            # turned off: the ServiceMonitor goes; metrics off: the Service and sidecar go
            patch_spec(kubectl, ns, "memcached/mc", {"metrics": {"serviceMonitor": None}})
            wait_for(
                lambda: get(kubectl, ns, "servicemonitor/mc", missing_ok=True) is None,
                30,
                "ServiceMonitor deleted",
            )
            assert sm_condition(kubectl, ns)["reason"] == "Disabled"
            patch_spec(kubectl, ns, "memcached/mc", {"metrics": None})
            wait_for(
                lambda: get(kubectl, ns, "service/mc-metrics", missing_ok=True) is None,
                30,
                "metrics Service deleted",
            )
            pod = get(kubectl, ns, "deployment/mc")["spec"]["template"]["spec"]
            assert [c["name"] for c in pod["containers"]] == ["memcached"]
    finally:
        kubectl("delete", "crd", SM_CRD, "--ignore-not-found", "--wait=false")
