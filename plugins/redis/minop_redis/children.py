"""Desired children of a Redis: pure functions of its spec."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from minop import workloads as wl

UID = 999  # the redis user of the official image; fsGroup makes the volume writable
PORT = 6379
CONFIG_HASH = "minop.dev/config-hash"
CONFIG_DIR, ETC_DIR, AUTH_DIR, DATA_DIR = "/config", "/etc/redis", "/auth", "/data"

# Runs in the init container: writes this pod's redis.conf. Pod 0 is the primary;
# every other pod replicates it through its stable DNS name. Passwords come from
# the operator's auth Secret: every accepted one on the default user, and the one
# replicas present to the primary.
INIT_SCRIPT = f"""#!/bin/sh
set -eu
ordinal="${{POD_NAME##*-}}"
conf="{ETC_DIR}/redis.conf"
cp "{CONFIG_DIR}/redis.conf" "$conf"
chmod 600 "$conf"
if [ -f "{AUTH_DIR}/masterauth" ]; then
  acl="user default on ~* &* +@all"
  while IFS= read -r pw || [ -n "$pw" ]; do
    [ -n "$pw" ] && acl="$acl >$pw"
  done < "{AUTH_DIR}/accept"
  echo "$acl" >> "$conf"
  echo "masteruser default" >> "$conf"
  echo "masterauth $(cat "{AUTH_DIR}/masterauth")" >> "$conf"
fi
if [ "$ordinal" != "0" ]; then
  echo "replicaof $REDIS_PRIMARY $REDIS_PRIMARY_PORT" >> "$conf"
fi
"""

# The probes authenticate with the password replicas use (accepted in every phase).
PROBE = [
    "sh",
    "-c",
    f'[ -f {AUTH_DIR}/masterauth ] && export REDISCLI_AUTH="$(cat {AUTH_DIR}/masterauth)"; '
    f"redis-cli -p {PORT} ping | grep -q PONG",
]


def redis_conf(spec: Mapping[str, Any]) -> str:
    lines = [
        "bind * -::*",
        f"port {PORT}",
        # access is controlled by the ACL below (or by NetworkPolicy when no password)
        "protected-mode no",
        f"dir {DATA_DIR}",
        f"appendonly {'yes' if (spec.get('persistence') or {}).get('appendOnly', True) else 'no'}",
        'appenddirname "appendonlydir"',
        "replica-read-only yes",
    ]
    if spec.get("maxMemory"):
        lines.append(f"maxmemory {spec['maxMemory']}")
    if spec.get("maxMemoryPolicy"):
        lines.append(f"maxmemory-policy {spec['maxMemoryPolicy']}")
    return "\n".join(lines) + "\n"


def configmap(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config"},
        "data": {"redis.conf": redis_conf(spec), "init.sh": INIT_SCRIPT},
    }


def auth_secret(name: str, masterauth: str, accept: list[str]) -> dict[str, Any]:
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-auth"},
        "type": "Opaque",
        "data": {"masterauth": b64(masterauth), "accept": b64("\n".join(accept) + "\n")},
    }


def headless_service(name: str, selector: Mapping[str, str]) -> dict[str, Any]:
    """Stable DNS for every pod: <name>-<i>.<name>-headless.<ns>.svc."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-headless"},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(selector),
            "ports": [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }


def client_service(name: str, selector: Mapping[str, str]) -> dict[str, Any]:
    """Clients reach the primary (pod 0): it is the only one taking writes."""
    primary = {**selector, "statefulset.kubernetes.io/pod-name": f"{name}-0"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": primary,
            "ports": [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }


def statefulset(
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    image: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    *,
    claim_size: str,
    config_hash: str,
    with_auth: bool,
) -> dict[str, Any]:
    storage = spec.get("storage") or {}
    strategy = spec.get("updateStrategy") or {}
    retention = spec.get("pvcRetention") or {}
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "REDIS_PRIMARY", "value": f"{name}-0.{name}-headless.{namespace}.svc"},
        {"name": "REDIS_PRIMARY_PORT", "value": str(PORT)},
    ]
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "etc", "mountPath": ETC_DIR},
        {"name": "data", "mountPath": DATA_DIR},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{name}-config"}},
        {"name": "etc", "emptyDir": {}},
    ]
    if with_auth:
        mounts.append({"name": "auth", "mountPath": AUTH_DIR, "readOnly": True})
        volumes.append({"name": "auth", "secret": {"secretName": f"{name}-auth"}})
    security = wl.restricted_container_security()
    probe = {"exec": {"command": PROBE}, "periodSeconds": 10, "timeoutSeconds": 3}
    container: dict[str, Any] = {
        "name": "redis",
        "image": image,
        "command": ["redis-server", f"{ETC_DIR}/redis.conf"],
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 5},
        "volumeMounts": mounts,
        "securityContext": security,
    }
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    init = {
        "name": "config",
        "image": image,
        "command": ["sh", f"{CONFIG_DIR}/init.sh"],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": security,
    }
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": claim_size}},
    }
    if storage.get("storageClassName"):
        claim["storageClassName"] = storage["storageClassName"]
    update: dict[str, Any] = {"type": strategy.get("type", "RollingUpdate")}
    if update["type"] == "RollingUpdate":
        update["rollingUpdate"] = {"partition": int(strategy.get("partition", 0))}
    sched = wl.scheduling(spec)
    sched.setdefault("affinity", _spread(selector))
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "serviceName": f"{name}-headless",
            "podManagementPolicy": spec.get("podManagementPolicy", "OrderedReady"),
            "updateStrategy": update,
            "revisionHistoryLimit": int(spec.get("revisionHistoryLimit", 10)),
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": retention.get("whenDeleted", "Retain"),
                "whenScaled": retention.get("whenScaled", "Retain"),
            },
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": wl.pod_metadata(spec, labels, {CONFIG_HASH: config_hash}),
                "spec": {
                    "securityContext": wl.restricted_pod_security(UID, fs_group=UID),
                    "automountServiceAccountToken": False,
                    "initContainers": [init],
                    "containers": [container],
                    "volumes": volumes,
                    **sched,
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": dict(labels)}, "spec": claim}
            ],
        },
    }


def _spread(selector: Mapping[str, str]) -> dict[str, Any]:
    """By default replicas prefer different nodes: losing a node loses one copy."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": dict(selector)},
                    },
                }
            ]
        }
    }
