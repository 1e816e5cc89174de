"""Desired children of a Memcached: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop import workloads as wl

UID = 11211  # the image's "memcache" user is not numeric; restricted PSS needs a number


def command(spec: Mapping[str, Any]) -> list[str]:
    """memcached's command line; UDP off (amplification attacks), logs to stderr."""
    return [
        "memcached",
        "-m", str(spec.get("memoryLimitMB", 64)),
        "-c", str(spec.get("maxConnections", 1024)),
        "-p", str(spec.get("port", 11211)),
        "-U", "0",
    ]  # fmt: skip


def deployment(
    name: str,
    spec: Mapping[str, Any],
    image: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
) -> dict[str, Any]:
    port = int(spec.get("port", 11211))
    container: dict[str, Any] = {
        "name": "memcached",
        "image": image,
        "command": command(spec),
        "ports": [{"name": "memcached", "containerPort": port, "protocol": "TCP"}],
        "livenessProbe": wl.probe_port(port),
        "readinessProbe": wl.probe_port(port),
        "securityContext": wl.restricted_container_security(),
    }
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": int(spec.get("size", 1)),
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": wl.pod_metadata(spec, labels),
                "spec": {
                    "securityContext": wl.restricted_pod_security(UID),
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    **wl.scheduling(spec),
                },
            },
        },
    }


def service(name: str, spec: Mapping[str, Any], selector: Mapping[str, str]) -> dict[str, Any]:
    port = int(spec.get("port", 11211))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": dict(selector),
            "ports": [
                {"name": "memcached", "port": port, "targetPort": "memcached", "protocol": "TCP"}
            ],
        },
    }
