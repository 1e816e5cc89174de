"""The metrics sidecar's Service and the optional ServiceMonitor against a real API
server: a missing Prometheus Operator CRD is a condition and an Event, never a failed
reconcile; once the CRD exists the ServiceMonitor follows the spec."""

from __future__ import annotations

import minop_memcached.hooks as memcached
import pytest

from minop.kit import monitoring
from minop.kit.e2e import monitoring as prom
from minop.kit.e2e.deployment import apply_cr, assert_owned, get, patch_spec
from minop.kit.testing import OperatorRunner, wait_for

pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("plugin_crds")]

MC = "cache.minop.dev/v1alpha1"


def test_service_monitor_waits_for_its_crd_then_follows_the_spec(namespace, kubectl):
    ns = namespace
    metrics = {"enabled": True, "port": 9200, "serviceMonitor": {"enabled": True}}
    with (
        prom.without_operator_crds(kubectl),
        OperatorRunner({"memcached": memcached}, namespaces=[ns]),
    ):
        assert apply_cr(kubectl, ns, MC, "Memcached", "mc", {"metrics": metrics}).returncode == 0
        # everything else is reconciled: the object is Ready, the sidecar runs
        kubectl("wait", "--for=condition=Ready", "memcached/mc", "-n", ns, "--timeout=60s")
        prom.assert_crd_missing(kubectl, ns, "memcached/mc", monitoring.MONITOR)
        pod = get(kubectl, ns, "deployment/mc")["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["memcached", "metrics"]
        mc = get(kubectl, ns, "memcached/mc")
        assert_owned(kubectl, ns, mc, "service/mc-metrics")
        svc = get(kubectl, ns, "service/mc-metrics")
        assert svc["spec"]["ports"][0]["name"] == "metrics"
        assert svc["spec"]["ports"][0]["port"] == 9200

        # the Prometheus Operator arrives; the next change of the object creates it
        prom.install_crd(kubectl, monitoring.SERVICE_MONITOR)
        metrics["serviceMonitor"] = {"enabled": True, "interval": "30s"}
        patch_spec(kubectl, ns, "memcached/mc", {"metrics": metrics})
        sm = prom.wait_applied(kubectl, ns, "memcached/mc", monitoring.MONITOR)
        assert_owned(kubectl, ns, mc, "servicemonitor/mc")
        assert sm["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s"}
        ]
        assert sm["spec"]["selector"] == {"matchLabels": {monitoring.METRICS_LABEL: "mc"}}
        assert svc["metadata"]["labels"][monitoring.METRICS_LABEL] == "mc"

        # turned off: the ServiceMonitor goes; metrics off: the Service and sidecar go
        patch_spec(kubectl, ns, "memcached/mc", {"metrics": {"serviceMonitor": None}})
        prom.wait_deleted(kubectl, ns, "memcached/mc", monitoring.MONITOR)
        patch_spec(kubectl, ns, "memcached/mc", {"metrics": None})
        wait_for(
            lambda: get(kubectl, ns, "service/mc-metrics", missing_ok=True) is None,
            30,
            "metrics Service deleted",
        )
        pod = get(kubectl, ns, "deployment/mc")["spec"]["template"]["spec"]
        assert [c["name"] for c in pod["containers"]] == ["memcached"]
