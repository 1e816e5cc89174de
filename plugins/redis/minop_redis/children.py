"""Desired children of a Redis: pure functions of its spec (no API calls here).

Every environment-specific value the init script and the probes need (pod name,
port, bind address, the primary's stable DNS name, mount paths) reaches them as
an environment variable set in the pod spec, so the real-program tests run the
very same script, config and probe commands with only those values swapped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from minop.kit import workloads as wl
from minop_redis import containers, metrics, tls
from minop_redis.crd import SENTINEL_RESOURCES

UID = 999  # the redis user of the official image; fsGroup makes the volume writable
PORT = 6379
CONFIG_DIR = "/etc/redis"  # the ConfigMap: redis.conf (shared part), the scripts
AUTH_DIR = "/etc/redis-auth"  # the operator's <name>-auth Secret
RUN_DIR = "/run/redis"  # in-memory emptyDir: this pod's complete redis.conf
DATA_DIR = "/data"  # the PersistentVolumeClaim data-<name>-<ordinal>
CONFIG_HASH = "minop.dev/config-hash"
AUTH_HASH = "minop.dev/auth-hash"
REPLICATION_USER = "replication"
SENTINEL_PORT = 26379
# The pod the Sentinels elected primary: "master"; the others "replica" (set by the
# operator, never in the pod template: a new pod serves no clients until elected).
ROLE_LABEL = "redis.minop.dev/role"
STARTUP_PERIOD = 5  # seconds between startup probes


@dataclass(frozen=True)
class Instance(wl.Instance):
    """One Redis object, as the builders need it."""

    @property
    def replicas(self) -> int:
        return int(self.spec.get("replicas", 1))

    @property
    def sentinel(self) -> Mapping[str, Any] | None:
        """spec.sentinel when failover is enabled, else None."""
        sentinel = self.spec.get("sentinel") or {}
        return sentinel if sentinel.get("enabled") else None

    @property
    def quorum(self) -> int:
        """Sentinels that must agree the primary is down: a majority by default."""
        return int((self.sentinel or {}).get("quorum") or self.replicas // 2 + 1)

    @property
    def down_after_ms(self) -> int:
        return int((self.sentinel or {}).get("downAfterMilliseconds", 5000))

    @property
    def failover_timeout_ms(self) -> int:
        return int((self.sentinel or {}).get("failoverTimeoutMilliseconds", 20000))

    @property
    def headless(self) -> str:
        return f"{self.name}-headless"

    @property
    def auth_secret(self) -> str:
        return f"{self.name}-auth"

    @property
    def config_map(self) -> str:
        return f"{self.name}-config"

    def pod_host(self, ordinal: int) -> str:
        """The stable DNS name of a pod (cluster-domain agnostic: resolv.conf's search)."""
        return f"{self.name}-{ordinal}.{self.headless}.{self.namespace}.svc"


def init_env(inst: Instance, policy: str) -> list[dict[str, Any]]:
    """What init.sh reads (the real-program tests swap these values only); ``policy``:
    the StatefulSet's podManagementPolicy."""
    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "REDIS_BIND", "value": "* -::*"},
        {"name": "REDIS_PORT", "value": str(PORT)},
        {"name": "REDIS_PRIMARY_HOST", "value": inst.pod_host(0)},
        {"name": "REDIS_PRIMARY_PORT", "value": str(PORT)},
        {"name": "REDIS_CONFIG_DIR", "value": CONFIG_DIR},
        {"name": "REDIS_AUTH_DIR", "value": AUTH_DIR},
        {"name": "REDIS_RUN_DIR", "value": RUN_DIR},
        {"name": "REDIS_DATA_DIR", "value": DATA_DIR},
        *tls.env(inst.spec),
        *sentinel_env(inst, policy),
        *metrics.env(inst.spec),
    ]


def sentinel_env(inst: Instance, policy: str) -> list[dict[str, Any]]:
    sentinel = inst.sentinel
    if sentinel is None:
        return []
    # nothing that follows spec.replicas (the peers, the quorum: in the ConfigMap)
    values = {
        "REDIS_SENTINEL_PORT": SENTINEL_PORT,
        "REDIS_SENTINEL_DOWN_AFTER_MS": inst.down_after_ms,
        "REDIS_SENTINEL_FAILOVER_TIMEOUT_MS": inst.failover_timeout_ms,
        "REDIS_MASTER_NAME": inst.name,
        # this pod's stable DNS name ($(POD_NAME): the kubelet expands it)
        "REDIS_ANNOUNCE_HOST": f"$(POD_NAME).{inst.headless}.{inst.namespace}.svc",
        "REDIS_POD_MANAGEMENT": policy,
    }
    return [{"name": k, "value": str(v)} for k, v in values.items()]


def sentinel_container(inst: Instance, security: dict[str, Any]) -> dict[str, Any]:
    probe = _probe(containers.SENTINEL_READY, 5, 3)
    return {
        "name": "sentinel",
        "image": inst.image,
        "command": ["sh", "-c", containers.SENTINEL, f"{RUN_DIR}/sentinel.conf"],
        "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"}],
        # record.sh's (the Sentinel runs it with its own environment)
        "env": [
            {"name": "REDIS_SENTINEL_PORT", "value": str(SENTINEL_PORT)},
            {"name": "REDIS_AUTH_DIR", "value": AUTH_DIR},
            {"name": "REDIS_DATA_DIR", "value": DATA_DIR},
            {"name": "REDIS_MASTER_NAME", "value": inst.name},
            *tls.env(inst.spec),
        ],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "run", "mountPath": RUN_DIR},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
            # record.sh, and the data volume it records the primary on
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            *tls.mounts(inst.spec),
        ],
        "securityContext": security,
        "resources": wl.canonical_resources(
            (inst.sentinel or {}).get("resources", SENTINEL_RESOURCES)
        ),
    }


def grace_seconds(inst: Instance) -> int:
    """With failover: handover.sh's longest run (3 s per answer it waits for: the
    role, the pause, the Sentinel it found; up to containers.PEER_SEARCH_S finding another pod's
    Sentinel; 10 s for the replicas to catch up; 10 s asking for the failover; the
    failover timeout + 5 s for the promotion), then Kubernetes' default 30 s for the
    server's own shutdown. Not a function of spec.replicas: a scale rolls no pod."""
    handover = 3 * 3 + containers.PEER_SEARCH_S + 10 + 10 + inst.failover_timeout_ms // 1000 + 5
    return handover + 30


def _probe(script: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["sh", "-c", script]},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def startup_failures(claim_size: str) -> int:
    """The startup probe's budget, sized for the data: loading an append-only file
    or snapshot from a volume of ``claim_size`` after a restart. Generous (5 min
    plus 2 min per GiB, i.e. ~8 MB/s): running out restarts the load from scratch."""
    gib = max(wl.quantity(claim_size) / 2**30, 0)
    return math.ceil((300 + 120 * gib) / STARTUP_PERIOD)


def pod_management(inst: Instance) -> str:
    """spec.podManagementPolicy; by default Parallel with failover: a cold start
    follows the pods' records only when they start together (init.sh)."""
    return str(
        inst.spec.get("podManagementPolicy") or ("Parallel" if inst.sentinel else "OrderedReady")
    )


def update_strategy(spec: Mapping[str, Any]) -> dict[str, Any]:
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return {"type": "OnDelete"}
    partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
    return {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}


def volume_claim(inst: Instance, size: str, storage_class: str | None) -> dict[str, Any]:
    """The claim template ``data``; immutable once the StatefulSet exists, so the caller
    passes the size and class the StatefulSet was created with (growth goes to the PVCs).
    The labels make the PVCs visible to the operator's watch."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": wl.canonical_quantity(size)}},
    }
    if storage_class:
        claim["storageClassName"] = storage_class
    return {"metadata": {"name": "data", "labels": dict(inst.labels)}, "spec": claim}


def statefulset(
    inst: Instance,
    *,
    config_hash: str,
    auth_hash: str,
    claim_size: str,
    storage_class: str | None,
    tls_hash: str | None = None,
    policy: str | None = None,
    exporter_image: str = metrics.DEFAULT_EXPORTER_IMAGE,
) -> dict[str, Any]:
    """The StatefulSet. The hashes are pod-template annotations: a change of the
    config, the passwords or the TLS Secret makes a new revision, which rolls the pods.
    ``policy``: the live StatefulSet's podManagementPolicy (immutable), if any; with
    spec.metrics every pod also runs the exporter (``exporter_image``)."""
    spec = inst.spec
    policy = policy or pod_management(inst)
    retention = spec.get("pvcRetention") or {}
    resources = wl.canonical_resources(spec["resources"]) if spec.get("resources") else None
    security = wl.restricted_container_security()
    config = {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
    auth = {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True}
    run = {"name": "run", "mountPath": RUN_DIR}
    data = {"name": "data", "mountPath": DATA_DIR}
    init: dict[str, Any] = {
        "name": "config",
        "image": inst.image,
        "command": ["sh", f"{CONFIG_DIR}/init.sh"],
        "env": init_env(inst, policy),
        "volumeMounts": [config, auth, run, data, *tls.mounts(spec)],
        "securityContext": security,
    }
    container: dict[str, Any] = {
        "name": "redis",
        "image": inst.image,
        "command": ["sh", "-c", containers.START, f"{CONFIG_DIR}/init.sh", f"{RUN_DIR}/redis.conf"],
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "env": init_env(inst, policy),
        "startupProbe": _probe(containers.STARTED, STARTUP_PERIOD, startup_failures(claim_size)),
        "readinessProbe": _probe(containers.READY, 5, 2),
        "livenessProbe": _probe(containers.ALIVE, 10, 6),
        "volumeMounts": [data, run, auth, config, *tls.mounts(spec)],
        "securityContext": security,
    }
    pod_containers = [container]
    grace: dict[str, int] = {}
    if inst.sentinel:
        pod_containers.append(sentinel_container(inst, security))
        hook = {"exec": {"command": ["sh", f"{CONFIG_DIR}/handover.sh"]}}
        container["lifecycle"] = {"preStop": hook}
        grace["terminationGracePeriodSeconds"] = grace_seconds(inst)
    if metrics.enabled(spec):
        host = f"$(POD_NAME).{inst.headless}.{inst.namespace}.svc"
        pod_containers.append(metrics.sidecar(spec, PORT, RUN_DIR, host, exporter_image))
    if resources:
        init["resources"] = container["resources"] = resources
    sched = wl.scheduling(spec)
    sched.setdefault("affinity", spread(inst.selector))
    annotations = {CONFIG_HASH: config_hash, AUTH_HASH: auth_hash}
    if tls_hash is not None:
        annotations[tls.HASH] = tls_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": inst.name},
        "spec": {
            "replicas": inst.replicas,
            "serviceName": inst.headless,
            "podManagementPolicy": policy,
            "updateStrategy": update_strategy(spec),
            "revisionHistoryLimit": int(spec.get("revisionHistoryLimit", 10)),
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": retention.get("whenDeleted", "Retain"),
                "whenScaled": retention.get("whenScaled", "Retain"),
            },
            "selector": {"matchLabels": dict(inst.selector)},
            "template": {
                "metadata": wl.pod_metadata(spec, inst.labels, annotations),
                "spec": {
                    "securityContext": {
                        **wl.pod_security(spec, UID, fs_group=UID),
                        # chown the volume once, not on every start (large volumes)
                        "fsGroupChangePolicy": "OnRootMismatch",
                    },
                    "automountServiceAccountToken": False,
                    # no docker-link variables (a Service "redis" would set REDIS_PORT)
                    "enableServiceLinks": False,
                    **grace,
                    "initContainers": [init],
                    "containers": pod_containers,
                    "volumes": [
                        # executable: the Sentinel runs record.sh itself
                        {
                            "name": "config",
                            "configMap": {"name": inst.config_map, "defaultMode": 0o555},
                        },
                        {
                            "name": "auth",
                            "secret": {"secretName": inst.auth_secret, "defaultMode": 0o440},
                        },
                        # the generated config holds masterauth: keep it off the node's disk
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                        *tls.volumes(spec),
                    ],
                    **sched,
                },
            },
            "volumeClaimTemplates": [volume_claim(inst, claim_size, storage_class)],
        },
    }


def spread(selector: Mapping[str, str]) -> dict[str, Any]:
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
