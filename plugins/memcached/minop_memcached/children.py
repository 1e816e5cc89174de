"""Desired children of a Memcached: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop.kit import monitoring, netpol
from minop.kit import workloads as wl
from minop_memcached.crd import (
    DEFAULT_DRAIN,
    DEFAULT_EXPORTER_IMAGE,
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
)

UID = 11211  # the image's "memcache" user, by number: restricted pods need a numeric user
CONFIG_HASH = "minop.dev/config-hash"
SASL_DIR = "/etc/memcached/sasl"  # memcached.conf (mech_list) and the password file
SECRET_DIR = "/etc/memcached/secret"  # the sasl Secret: username, password
PWDB = f"{SASL_DIR}/pwdb"
SASL_INIT = "sasl-pwdb"
MEMORY_DIR = "/var/lib/memcached"  # warmRestart: the item memory file and its index
MEMORY_FILE = f"{MEMORY_DIR}/memory_file"
# warmRestart: the kubelet's stop signal (SIGTERM, after the drain) becomes SIGUSR1 for
# memcached, which then stops accepting, saves the index of its memory file
# (memory_file.meta) and exits (wl.stop_signal says why a shell in front does it).


def port(spec: Mapping[str, Any]) -> int:
    return int(spec.get("port", DEFAULT_PORT))


def command(spec: Mapping[str, Any]) -> list[str]:
    """memcached's command line; UDP off (it is an amplification vector). Options the
    spec leaves unset keep memcached's own defaults."""
    argv = [
        "memcached",
        "-m", str(spec.get("memoryLimitMB", 64)),
        "-c", str(spec.get("maxConnections", 1024)),
        "-p", str(port(spec)),
        "-U", "0",
    ]  # fmt: skip
    if spec.get("maxItemSizeMB"):
        argv += ["-I", f"{spec['maxItemSizeMB']}m"]
    if spec.get("threads"):
        argv += ["-t", str(spec["threads"])]
    if spec.get("verbosity"):
        argv.append("-" + "v" * int(spec["verbosity"]))
    if spec.get("sasl"):
        argv.append("-S")  # binary protocol only, every client authenticates
    if spec.get("warmRestart"):
        argv += ["-e", MEMORY_FILE]
    return argv


def pwdb_script() -> str:
    """Writes memcached's SASL files from the Secret: the password file the image's
    memcached reads (built with --enable-sasl-pwdb: MEMCACHED_SASL_PWDB), readable by
    the pod's user only, and the SASL configuration allowing PLAIN."""
    return (
        "umask 077 && "
        f'u="$(cat {SECRET_DIR}/username)" && p="$(cat {SECRET_DIR}/password)" && '
        f'printf \'%s:%s\\n\' "$u" "$p" > {PWDB} && '
        f"printf 'mech_list: plain\\n' > {SASL_DIR}/memcached.conf"
    )


def exporter(spec: Mapping[str, Any], image: str = DEFAULT_EXPORTER_IMAGE) -> dict[str, Any]:
    """The memcached_exporter sidecar: it asks the pod's own memcached."""
    return monitoring.sidecar(
        spec, image, DEFAULT_METRICS_PORT, [f"--memcached.address=127.0.0.1:{port(spec)}"]
    )


def workload(
    inst: wl.Instance, config_hash: str = "", exporter_image: str = DEFAULT_EXPORTER_IMAGE
) -> dict[str, Any]:
    """A Deployment, or with ``stableNames`` a StatefulSet of the same pods; with
    ``metrics.enabled`` each pod also runs the exporter."""
    spec = inst.spec
    drain = int(spec.get("drainSeconds", DEFAULT_DRAIN))
    warm = bool(spec.get("warmRestart"))
    argv = command(spec)
    container: dict[str, Any] = {
        "name": "memcached",
        "image": inst.image,
        "command": wl.stop_signal("USR1", argv) if warm else argv,
        "ports": [{"name": "memcached", "containerPort": port(spec), "protocol": "TCP"}],
        "livenessProbe": wl.probe_port(port(spec)),
        "readinessProbe": wl.probe_port(port(spec)),
        # memcached writes nothing to disk: the root filesystem stays read-only
        "securityContext": wl.restricted_container_security(),
    }
    lifecycle = wl.pre_stop(drain)  # serve, then go (warmRestart: save, then go)
    if lifecycle:
        container["lifecycle"] = lifecycle
    volumes: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    if warm:
        # tmpfs: memcached expects its memory file in memory (on a disk every write of an
        # item would become a write of its page); it outlives the container, not the pod
        size = f"{int(spec.get('memoryLimitMB', 64)) + 8}Mi"  # the file, its index
        container["volumeMounts"] = [{"name": "memory", "mountPath": MEMORY_DIR}]
        volumes.append({"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": size}})
    if spec.get("sasl"):
        sasl_mount = {"name": "sasl", "mountPath": SASL_DIR}
        container["env"] = [
            {"name": "SASL_CONF_PATH", "value": SASL_DIR},
            {"name": "MEMCACHED_SASL_PWDB", "value": PWDB},
        ]
        container["volumeMounts"] = [
            *container.get("volumeMounts", []),
            {**sasl_mount, "readOnly": True},
        ]
        secret_mount = {"name": "sasl-secret", "mountPath": SECRET_DIR, "readOnly": True}
        init.append(
            {
                "name": SASL_INIT,
                "image": inst.image,
                "command": ["/bin/sh", "-c", pwdb_script()],
                "volumeMounts": [sasl_mount, secret_mount],
                "securityContext": wl.restricted_container_security(),
            }
        )
        volumes += [
            {"name": "sasl", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {
                "name": "sasl-secret",
                "secret": {
                    "secretName": spec["sasl"]["secretName"],
                    "items": [{"key": k, "path": k} for k in ("username", "password")],
                },
            },
        ]
    deployment = wl.deployment(
        inst,
        int(spec.get("size", 1)),
        UID,
        container,
        volumes,
        pod_annotations={CONFIG_HASH: config_hash} if config_hash else None,
        init_containers=init,
        spread=True,  # a node lost takes one pod's share of the cache, not all of it
        termination_grace_seconds=drain + 10,
        sidecars=[exporter(spec, exporter_image)] if monitoring.enabled(spec) else None,
    )
    return wl.statefulset(deployment, inst.name) if spec.get("stableNames") else deployment


def servers(inst: wl.Instance) -> list[str]:
    """With ``stableNames``: every pod's stable DNS name and port, as clients list them."""
    if not inst.spec.get("stableNames"):
        return []
    host = f"{inst.name}.{inst.namespace}.svc"
    return [
        f"{inst.name}-{i}.{host}:{port(inst.spec)}" for i in range(int(inst.spec.get("size", 1)))
    ]


def service(inst: wl.Instance) -> dict[str, Any]:
    """A headless Service: its DNS name resolves to every ready pod and, with
    ``stableNames``, gives each pod its own name.

    Memcached clients shard keys over the servers themselves (consistent
    hashing), so they need each pod's address; a load-balanced virtual IP would
    send a key to a different pod on every connection, so a delete on one pod
    would leave stale copies on the others.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": inst.name},
        "spec": {
            "clusterIP": "None",
            "selector": dict(inst.selector),
            "ports": [
                {
                    "name": "memcached",
                    "port": port(inst.spec),
                    "targetPort": "memcached",
                    "protocol": "TCP",
                }
            ],
        },
    }


def network_policy(inst: wl.Instance) -> dict[str, Any]:
    """Only the clients ``networkPolicy.from`` names reach memcached's port; nothing
    else reaches the pods but a scrape of the exporter's read-only metrics, from
    anywhere (Prometheus runs in a namespace of its own)."""
    scrape = monitoring.enabled(inst.spec)
    metrics = [monitoring.port(inst.spec, DEFAULT_METRICS_PORT)] if scrape else []
    return netpol.policy(inst, [port(inst.spec)], open_ports=metrics)
