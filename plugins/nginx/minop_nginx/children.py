"""Desired children of an NginxServer: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop import content_hash
from minop.kit import monitoring
from minop.kit import workloads as wl
from minop_nginx.config import (
    CERT_VOLUME,
    CERTS_DIR,
    CONF,
    CONF_DIR,
    CONFIG_VOLUME,
    CONTENT_DIR,
    CONTENT_VOLUME,
    DEFAULT_DRAIN,
    DEFAULT_HEALTH,
    DEFAULT_PORT,
    DEFAULT_SHUTDOWN,
    EXTRA_DIR,
    EXTRA_VOLUME,
    LIVENESS_PATH,
    STUB_STATUS,
    TLS_DIR,
    TLS_VOLUME,
    USER_DIR,
    USER_VOLUME,
    status_port,
)
from minop_nginx.crd import DEFAULT_EXPORTER_IMAGE, DEFAULT_METRICS_PORT

UID = 101  # the nginx user of the unprivileged image
CONFIG_HASH = "minop.dev/config-hash"
CHECK = "nginx-t"  # the init container that runs the pod's own `nginx -t`
# Writable scratch space on a read-only root: pid and temp files, a proxy cache.
SCRATCH = {"tmp": "/tmp", "cache": "/var/cache/nginx", "run": "/run"}
CONFIGMAP_PREFIX = "-config-"


def configmap_name(name: str, data: Mapping[str, str]) -> str:
    """Named by content: a new configuration is a new ConfigMap, so the pods still on
    the last one never see the new files (not even when their container restarts)."""
    return f"{name}{CONFIGMAP_PREFIX}{content_hash(dict(data))[:10]}"


def configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(name, data)},
        "immutable": True,
        "data": dict(data),
    }


def port(spec: Mapping[str, Any]) -> int:
    return int(spec.get("port", DEFAULT_PORT))


def readiness(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The user's health path: it may be proxied, so it only takes the pod out of
    the Service while it fails."""
    return {
        "httpGet": {
            "path": spec.get("healthcheckPath", DEFAULT_HEALTH),
            "port": "http",
            "scheme": "HTTPS" if spec.get("tls") else "HTTP",
        },
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 2,
    }


def liveness() -> dict[str, Any]:
    """The status server's own answer (config.main_conf): fails only when nginx
    itself does, never with an upstream."""
    return {
        "httpGet": {"path": LIVENESS_PATH, "port": "status", "scheme": "HTTP"},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def grace_seconds(spec: Mapping[str, Any]) -> int:
    """The drain, the longest graceful stop, and a margin for the workers to exit."""
    return drain_seconds(spec) + int(spec.get("shutdownTimeoutSeconds", DEFAULT_SHUTDOWN)) + 5


def drain_seconds(spec: Mapping[str, Any]) -> int:
    return int(spec.get("drainSeconds", DEFAULT_DRAIN))


def volumes(
    name: str, spec: Mapping[str, Any], data: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of the pod."""
    mounts: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": CONF, "subPath": "nginx.conf", "readOnly": True},
        {"name": CONFIG_VOLUME, "mountPath": CONF_DIR, "readOnly": True},
    ]
    vols: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": configmap_name(name, data)}}
    ]
    for vol, path in SCRATCH.items():
        mounts.append({"name": vol, "mountPath": path})
        vols.append({"name": vol, "emptyDir": {}})
    if spec.get("configMapRef"):
        mounts.append({"name": USER_VOLUME, "mountPath": USER_DIR, "readOnly": True})
        vols.append({"name": USER_VOLUME, "configMap": {"name": spec["configMapRef"]["name"]}})
    if spec.get("tls"):
        # every key of the Secret (ca.crt for ssl_client_certificate, ...), not only the pair
        mounts.append({"name": TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True})
        vols.append({"name": TLS_VOLUME, "secret": {"secretName": spec["tls"]["secretName"]}})
        for i, cert in enumerate(spec.get("certificates") or []):
            name, path = f"{CERT_VOLUME}{i}", f"{CERTS_DIR}/{cert['secretName']}"
            mounts.append({"name": name, "mountPath": path, "readOnly": True})
            vols.append({"name": name, "secret": {"secretName": cert["secretName"]}})
    for extra in spec.get("extraVolumes") or []:
        name = f"{EXTRA_VOLUME}{extra['name']}"
        mounts.append({"name": name, "mountPath": f"{EXTRA_DIR}/{extra['name']}", "readOnly": True})
        files: dict[str, Any] = (
            {"configMap": {"name": extra["configMap"]["name"]}}
            if extra.get("configMap")
            else {"secret": {"secretName": extra["secret"]["secretName"]}}
        )
        vols.append({"name": name, **files})
    content = spec.get("content") or {}
    if content:
        mounts.append({"name": CONTENT_VOLUME, "mountPath": CONTENT_DIR, "readOnly": True})
        if content.get("configMapRef"):
            source: dict[str, Any] = {"configMap": {"name": content["configMapRef"]["name"]}}
        else:
            claim = content["persistentVolumeClaim"]["claimName"]
            source = {"persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        vols.append({"name": CONTENT_VOLUME, **source})
    return vols, mounts


def exporter(spec: Mapping[str, Any], image: str = DEFAULT_EXPORTER_IMAGE) -> dict[str, Any]:
    """The nginx-prometheus-exporter sidecar, reading the status server's stub_status
    (which answers the pod itself only)."""
    uri = f"http://127.0.0.1:{status_port(spec)}{STUB_STATUS}"
    return monitoring.sidecar(spec, image, DEFAULT_METRICS_PORT, [f"--nginx.scrape-uri={uri}"])


def deployment(
    inst: wl.Instance,
    data: Mapping[str, str],
    config_hash: str,
    exporter_image: str = DEFAULT_EXPORTER_IMAGE,
) -> dict[str, Any]:
    spec = inst.spec
    vols, mounts = volumes(inst.name, spec, data)
    # -e stderr: never open the compiled-in error log path on a read-only root
    command = ["nginx", "-c", CONF, "-e", "stderr", "-g", "daemon off;"]
    common: dict[str, Any] = {
        "image": inst.image,
        "volumeMounts": mounts,
        "securityContext": wl.restricted_container_security(),
        # nginx writes its errors to stderr: they become the container's status message
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    # The pod's own nginx judges the configuration before the pod serves: a config it
    # rejects leaves the new pod in Init (and the object Degraded with the message).
    check = {"name": CHECK, "command": [*command, "-t", "-q"], **common}
    container: dict[str, Any] = {
        "name": "nginx",
        # The kubelet's SIGTERM after the drain becomes SIGQUIT, a graceful stop (open
        # requests finish, up to worker_shutdown_timeout), whatever the image's STOPSIGNAL.
        "command": wl.stop_signal("QUIT", command),
        "ports": [
            {"name": "http", "containerPort": port(spec), "protocol": "TCP"},
            {"name": "status", "containerPort": status_port(spec), "protocol": "TCP"},
        ]
        + (
            [{"name": "redirect", "containerPort": spec["httpRedirectPort"], "protocol": "TCP"}]
            if spec.get("httpRedirectPort")
            else []
        ),
        "readinessProbe": readiness(spec),
        "livenessProbe": liveness(),
        **({"lifecycle": wl.pre_stop(drain_seconds(spec))} if drain_seconds(spec) else {}),
        **common,
    }
    return wl.deployment(
        inst,
        int(spec.get("replicas", 1)),
        UID,
        container,
        vols,
        # the hash rolls the pods whenever any configuration input changes
        pod_annotations={CONFIG_HASH: config_hash},
        init_containers=[check],
        max_unavailable=0,  # old pods serve until a new one passed its check and is ready
        spread=True,
        termination_grace_seconds=grace_seconds(spec),
        sidecars=[exporter(spec, exporter_image)] if monitoring.enabled(spec) else None,
    )


def service(inst: wl.Instance) -> dict[str, Any]:
    spec = inst.spec
    svc = spec.get("service") or {}
    tls = bool(spec.get("tls"))
    meta: dict[str, Any] = {"name": inst.name}
    if svc.get("annotations"):
        meta["annotations"] = dict(svc["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": svc.get("type") or spec.get("serviceType") or "ClusterIP",
            "selector": dict(inst.selector),
            "ports": [
                {
                    "name": "https" if tls else "http",
                    "port": int(svc.get("port") or (443 if tls else 80)),
                    "targetPort": "http",  # the container's port, whatever its number
                    "protocol": "TCP",
                }
            ]
            + (
                [{"name": "http", "port": 80, "targetPort": "redirect", "protocol": "TCP"}]
                if spec.get("httpRedirectPort")
                else []
            ),
        },
    }
