"""Helpers for tests that need pods that really run (kind; marked ``realpods``): client
pods to reach the servers from inside the cluster, waits on conditions, commands in pods.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from minop.kit.testing import wait_for

Kubectl = Callable[..., Any]


def client_pod(namespace: str, kubectl: Kubectl, image: str) -> Callable[..., str]:
    """``client(*cmd)``: runs a command in a new pod ``client`` of ``image``; its stdout."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "client",
                    "image": image,
                    "command": ["sleep", "infinity"],
                    # not best-effort: on a busy node those get almost no CPU, and a
                    # test's client (the failover test's ROLE sampler) must keep time
                    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    wait(kubectl, namespace, "pod/client", 120)
    return lambda *cmd: run_in(kubectl, namespace, "client", *cmd)


def wait(kubectl: Kubectl, ns: str, what: str, seconds: int, cond: str = "Ready") -> None:
    """``kubectl wait --for=condition=<cond>`` (a watch, not a poll) for up to ``seconds``."""
    kubectl(
        "wait",
        "-n",
        ns,
        f"--for=condition={cond}",
        what,
        f"--timeout={seconds}s",
        timeout=seconds + 30,
    )


def run_in(kubectl: Kubectl, ns: str, pod: str, *cmd: str) -> str:
    return str(kubectl("exec", "-n", ns, pod, "--", *cmd).stdout)


def apply(kubectl: Kubectl, ns: str, api_version: str, kind: str, name: str, **spec: Any) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def first_through_service(fetch: Callable[[], str], ok: Callable[[str], bool], what: str) -> str:
    """The first answer through a new Service's ClusterIP. Until kube-proxy has programmed
    the address (seconds under load) the packets leave the node: on the CI machines an
    egress proxy answers them (an empty 404). So wait until our pods answer, bounded."""

    def answer() -> str | None:
        out = fetch()
        return out if ok(out) else None

    return str(wait_for(answer, 60, what, interval=1))


def http_get_from(client: Callable[..., str], host: str, port: int, path: str) -> str:
    """One HTTP/1.0 request from a client pod through bash's /dev/tcp; the whole response."""
    script = (
        'exec 3<>"/dev/tcp/$0/$1"; printf "GET $2 HTTP/1.0\\r\\nHost: $0\\r\\n\\r\\n" >&3; '
        "timeout 5 cat <&3"
    )
    return client("timeout", "10", "bash", "-c", script, host, str(port), path)
