"""The metrics sidecar on real pods (kind): nginx-prometheus-exporter, built here from
the Go module proxy into a FROM-scratch image, reads stub_status inside the pod and
serves the counts through the <name>-metrics Service."""

from __future__ import annotations

import pytest

from minop.kit.e2e.pods import apply, first_through_service, wait
from minop.kit.e2e.pods import http_get_from as http_get

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]


def value(exposition: str, series: str) -> float:
    return next(float(line.split()[-1]) for line in exposition.splitlines()
                if line.startswith(series + " "))  # fmt: skip


def test_stub_status_metrics_are_scraped_through_the_metrics_service(
    namespace, kubectl, operator, client
):
    ns = namespace
    apply(kubectl, ns, "web.minop.dev/v1alpha1", "NginxServer", "web", metrics={"enabled": True})
    wait(kubectl, ns, "nginxserver/web", 180)
    host = f"web.{ns}.svc.cluster.local"
    first_through_service(
        lambda: http_get(client, host, 80, "/healthz"),
        lambda out: out.startswith("HTTP/1.1 200"),
        "/healthz through the Service",
    )
    out = first_through_service(
        lambda: http_get(client, f"web-metrics.{ns}.svc.cluster.local", 9113, "/metrics"),
        lambda out: "nginx_up 1" in out,
        "/metrics through the metrics Service",
    )
    # our request and the kubelet's probes reached nginx, and the sidecar saw them
    assert value(out, "nginx_connections_accepted") >= 1, out
    assert value(out, "nginx_http_requests_total") >= 1, out
