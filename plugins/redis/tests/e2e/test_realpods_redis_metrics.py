"""spec.metrics on real pods (kind): redis_exporter, built here from the Go module proxy
into a FROM-scratch image, runs beside each server as the pod's user, reads its
password file from the pod's in-memory volume and reports the pod's role and
replication; the <name>-metrics Service reaches the exporters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import Kubectl, apply, first_through_service, wait
from minop.kit.e2e.pods import http_get_from as http_get
from minop.kit.testing import tls_secret_data, wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]


def series(out: str, name: str) -> list[str]:
    """The lines of that metric (with any labels), as the scrape has them."""
    return [line for line in out.splitlines() if line.startswith((name + " ", name + "{"))]


def redis_with_metrics(kubectl: Kubectl, ns: str, pw: str, **spec: Any) -> None:
    kubectl("create", "secret", "generic", "pw", "-n", ns, f"--from-literal=password={pw}")
    apply(kubectl, ns, "cache.minop.dev/v1alpha1", "Redis", "r", replicas=2,
          passwordSecretRef={"name": "pw"}, storage={"size": "64Mi"},
          metrics={"enabled": True}, **spec)  # fmt: skip
    wait(kubectl, ns, "redis/r", 300)


def check_exporters(kubectl: Kubectl, ns: str, client: Any, pw: str) -> None:
    """Both pods' exporters: up, the role, the primary's replica and its lag, the
    replica's link; no password in a scrape or the exporter's container."""

    def scrape(pod: str) -> str:
        ip = get(kubectl, ns, f"pod/{pod}")["status"]["podIP"]
        return http_get(client, ip, 9121, "/metrics")

    def primary_sees_its_replica() -> str | None:
        out = scrape("r-0")
        return (
            out if series(out, "redis_connected_slaves") == ["redis_connected_slaves 1"] else None
        )

    primary = wait_for(primary_sees_its_replica, 60, "r-0's exporter: one replica")
    assert series(primary, "redis_up") == ["redis_up 1"]
    assert 'role="master"' in series(primary, "redis_instance_info")[0]
    assert len(series(primary, "redis_connected_slave_lag_seconds")) == 1
    replica = scrape("r-1")
    assert series(replica, "redis_up") == ["redis_up 1"]
    assert 'role="slave"' in series(replica, "redis_instance_info")[0]
    [link] = series(replica, "redis_master_link_up")
    assert link.endswith(" 1"), link
    for out in (primary, replica):
        assert pw not in out
    pod = get(kubectl, ns, "pod/r-0")["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "metrics")
    assert all("secretKeyRef" not in json.dumps(e) for e in sidecar.get("env", []))


def test_each_pods_exporter_reports_its_role_and_replication(namespace, kubectl, operator, client):
    ns, pw = namespace, "s3cret-metrics"
    redis_with_metrics(kubectl, ns, pw)
    check_exporters(kubectl, ns, client, pw)
    # and the Service in front of both
    first_through_service(
        lambda: http_get(client, f"r-metrics.{ns}.svc.cluster.local", 9121, "/metrics"),
        lambda out: "redis_up 1" in out,
        "/metrics through r-metrics",
    )


def test_with_tls_each_exporter_speaks_tls_to_its_server(namespace, kubectl, operator, client):
    """The kubelet expands the pod's name into the server name the exporter checks;
    the certificate names the pods as the README's Certificate does."""
    ns, pw = namespace, "s3cret-metrics-tls"
    files = tls_secret_data("r", (f"*.r-headless.{ns}.svc",))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"},
              "type": "kubernetes.io/tls", "stringData": files}  # fmt: skip
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))
    redis_with_metrics(kubectl, ns, pw, tls={"secretName": "cert"})
    check_exporters(kubectl, ns, client, pw)
