"""Desired children of an NginxServer: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop.kit import workloads as wl
from minop_nginx.config import (
    CONF,
    CONF_DIR,
    CONFIG_VOLUME,
    DEFAULT_HEALTH,
    DEFAULT_PORT,
    TLS_DIR,
    TLS_VOLUME,
    USER_DIR,
    USER_VOLUME,
)

UID = 101  # the nginx user of the unprivileged image
CONFIG_HASH = "minop.dev/config-hash"
# Writable scratch space on a read-only root: pid and temp files, a proxy cache.
SCRATCH = {"tmp": "/tmp", "cache": "/var/cache/nginx", "run": "/run"}


def configmap_name(name: str) -> str:
    return f"{name}-config"


def configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(name)},
        "data": dict(data),
    }


def probe(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "httpGet": {
            "path": spec.get("healthcheckPath", DEFAULT_HEALTH),
            "port": "http",
            "scheme": "HTTPS" if spec.get("tls") else "HTTP",
        },
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def volumes(
    name: str, spec: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of the pod."""
    mounts: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": CONF, "subPath": "nginx.conf", "readOnly": True},
        {"name": CONFIG_VOLUME, "mountPath": CONF_DIR, "readOnly": True},
    ]
    vols: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": configmap_name(name)}}
    ]
    for vol, path in SCRATCH.items():
        mounts.append({"name": vol, "mountPath": path})
        vols.append({"name": vol, "emptyDir": {}})
    if spec.get("configMapRef"):
        mounts.append({"name": USER_VOLUME, "mountPath": USER_DIR, "readOnly": True})
        vols.append({"name": USER_VOLUME, "configMap": {"name": spec["configMapRef"]["name"]}})
    if spec.get("tls"):
        mounts.append({"name": TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True})
        vols.append({"name": TLS_VOLUME, "secret": {"secretName": spec["tls"]["secretName"]}})
    return vols, mounts


def deployment(
    name: str,
    spec: Mapping[str, Any],
    image: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    config_hash: str,
) -> dict[str, Any]:
    vols, mounts = volumes(name, spec)
    container: dict[str, Any] = {
        "name": "nginx",
        "image": image,
        # -e stderr: never open the compiled-in error log path on a read-only root
        "command": ["nginx", "-c", CONF, "-e", "stderr", "-g", "daemon off;"],
        "ports": [
            {
                "name": "http",
                "containerPort": int(spec.get("port", DEFAULT_PORT)),
                "protocol": "TCP",
            }
        ],
        "readinessProbe": probe(spec),
        "livenessProbe": probe(spec),
        "volumeMounts": mounts,
        "securityContext": wl.restricted_container_security(),
    }
    # the hash rolls the pods whenever any configuration input changes
    meta = wl.pod_metadata(spec, labels, {CONFIG_HASH: config_hash})
    return wl.deployment(
        name, spec, int(spec.get("replicas", 1)), selector, meta, UID, container, vols
    )


def service(name: str, spec: Mapping[str, Any], selector: Mapping[str, str]) -> dict[str, Any]:
    port = int(spec.get("port", DEFAULT_PORT))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": spec.get("serviceType", "ClusterIP"),
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
