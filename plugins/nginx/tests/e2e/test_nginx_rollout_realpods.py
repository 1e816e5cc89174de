"""No request lost while NGINX pods roll and scale down: the preStop drain, then a
graceful stop (kind; skipped with "needs real pods" on KWOK). The client is a pod in the
namespace going through the Service's DNS name, as applications do; the operator runs
in-cluster (the ``operator`` fixture)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import apply, first_through_service, wait
from minop.kit.e2e.pods import http_get_from as http_get
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
NGX = "web.minop.dev/v1alpha1"
# One request after another through the Service, each on a new connection, until
# /tmp/stop exists: the status line of each (or "failed") on its own line of /tmp/codes.
LOAD = r"""
: > /tmp/codes
while [ ! -e /tmp/stop ]; do
  line=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/80" &&
    printf "GET /healthz HTTP/1.0\r\nHost: $0\r\n\r\n" >&3 && head -n 1 <&3' "$0" 2>/dev/null)
  echo "${line:-failed}" | tr -d '\r' >> /tmp/codes
done
"""


def pods(kubectl: Callable[..., Any], ns: str) -> list[Any]:
    """Every pod of the NginxServer ``web``, terminating ones too."""
    out = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=web", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def answered(run: Callable[..., str]) -> list[str]:
    return run("cat", "/tmp/codes").splitlines()


def test_no_request_fails_through_an_nginx_rollout_and_scale_down(namespace, kubectl, client):
    ns = namespace
    apply(kubectl, ns, NGX, "NginxServer", "web", replicas=3)
    wait(kubectl, ns, "nginxserver/web", 240)
    host = f"web.{ns}.svc.cluster.local"
    first_through_service(
        lambda: http_get(client, host, 80, "/healthz"),
        lambda out: out.startswith("HTTP/1.1 200"),
        "/healthz through the Service",
    )
    # the load runs detached in the client pod, throughout everything below
    client("bash", "-c", 'setsid bash -c "$1" "$2" </dev/null >/dev/null 2>&1 &', "_", LOAD, host)
    wait_for(lambda: len(answered(client)) >= 5, 60, "the load running")

    before = set(get(kubectl, ns, "nginxserver/web")["status"]["podNames"])
    apply(kubectl, ns, NGX, "NginxServer", "web", replicas=3, healthcheckPath="/healthz",
          podAnnotations={"rollout": "2"})  # fmt: skip

    def rolled() -> bool:
        status = get(kubectl, ns, "nginxserver/web").get("status") or {}
        names = set(status.get("podNames") or [])
        return len(names) == 3 and not names & before and len(pods(kubectl, ns)) == 3

    wait_for(rolled, 300, "every pod replaced and the old ones gone")
    during_rollout = len(answered(client))

    kubectl("scale", "nginxserver/web", "-n", ns, "--replicas=1")

    def scaled() -> bool:
        return len(pods(kubectl, ns)) == 1  # the two stopped pods drained, quit and are gone

    wait_for(scaled, 180, "scaled down to one pod")
    # requests went on after the last pod stopped, so the load covered all of it
    wait_for(lambda: len(answered(client)) > during_rollout + 5, 60, "requests after the scale")
    client("touch", "/tmp/stop")
    codes = answered(client)
    failed = [c for c in codes if c != "HTTP/1.1 200 OK"]
    assert not failed, f"{len(failed)} of {len(codes)} requests failed: {sorted(set(failed))}"
    # five pods stopped: none of them with a failed preStop hook (a hook that signals the
    # program is killed with the container; the kubelet reports that before the pod is gone)
    hooks = kubectl(
        "get", "events", "-n", ns, "--field-selector=reason=FailedPreStopHook", "-o", "name"
    ).stdout
    assert not hooks.strip(), hooks
