"""Desired children of a Memcached: pure functions of its spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop.kit import workloads as wl
from minop_memcached.crd import DEFAULT_PORT

UID = 11211  # the image's "memcache" user, by number: restricted pods need a numeric user


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
    return argv


def deployment(inst: wl.Instance) -> dict[str, Any]:
    spec = inst.spec
    container: dict[str, Any] = {
        "name": "memcached",
        "image": inst.image,
        "command": command(spec),
        "ports": [{"name": "memcached", "containerPort": port(spec), "protocol": "TCP"}],
        "livenessProbe": wl.probe_port(port(spec)),
        "readinessProbe": wl.probe_port(port(spec)),
        # memcached writes nothing to disk: the root filesystem stays read-only
        "securityContext": wl.restricted_container_security(),
    }
    return wl.deployment(
        inst,
        int(spec.get("size", 1)),
        UID,
        container,
        spread=True,  # a node lost takes one pod's share of the cache, not all of it
    )


def service(inst: wl.Instance) -> dict[str, Any]:
    """A headless Service: its DNS name resolves to every ready pod.

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
