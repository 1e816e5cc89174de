"""Desired children of an NginxServer: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop import workloads as wl
from minop_nginx.config import CONF_DIR, TLS_DIR, USER_DIR

UID = 101  # the nginx user of the unprivileged image
CONFIG_HASH = "minop.dev/config-hash"


def configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config"},
        "data": dict(data),
    }


def deployment(
    name: str,
    spec: Mapping[str, Any],
    image: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    config_hash: str,
) -> dict[str, Any]:
    port = int(spec.get("port", 8080))
    scheme = "HTTPS" if spec.get("tls") else "HTTP"
    probe = {
        "httpGet": {
            "path": spec.get("healthcheckPath", "/healthz"),
            "port": "http",
            "scheme": scheme,
        },
        "periodSeconds": 10,
        "timeoutSeconds": 2,
    }
    mounts = [
        {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": "/var/cache/nginx"},
        {"name": "run", "mountPath": "/run"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{name}-config"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "run", "emptyDir": {}},
    ]
    if spec.get("configMapRef"):
        mounts.append({"name": "user-config", "mountPath": USER_DIR, "readOnly": True})
        volumes.append({"name": "user-config", "configMap": {"name": spec["configMapRef"]["name"]}})
    if spec.get("tls"):
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": spec["tls"]["secretName"]}})
    container: dict[str, Any] = {
        "name": "nginx",
        "image": image,
        # -e stderr: never open the compiled-in error log path on a read-only root
        "command": ["nginx", "-e", "stderr", "-c", f"{CONF_DIR}/nginx.conf", "-g", "daemon off;"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 3},
        "volumeMounts": mounts,
        "securityContext": wl.restricted_container_security(),
    }
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": dict(selector)},
            "template": {
                # the hash rolls the pods whenever any configuration input changes
                "metadata": wl.pod_metadata(spec, labels, {CONFIG_HASH: config_hash}),
                "spec": {
                    "securityContext": wl.restricted_pod_security(UID),
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": volumes,
                    **wl.scheduling(spec),
                },
            },
        },
    }


def service(name: str, spec: Mapping[str, Any], selector: Mapping[str, str]) -> dict[str, Any]:
    port = int(spec.get("port", 8080))
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
