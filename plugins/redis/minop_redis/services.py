"""The Services of a Redis: stable DNS for every pod, the primary for clients, the
read-only replicas and, with failover, the Sentinels. The port names stay ``redis``
and ``sentinel`` whether or not the pods speak TLS (spec.tls). And who may reach the
pods at all: the NetworkPolicy of spec.networkPolicy."""

from __future__ import annotations

from typing import Any

from minop.kit import monitoring, netpol
from minop_redis import metrics
from minop_redis.children import PORT, ROLE_LABEL, SENTINEL_PORT, Instance


def _ports(inst: Instance, redis: bool = True) -> list[dict[str, Any]]:
    ports = [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}]
    if not redis:
        ports = []
    if inst.sentinel:
        ports.append(
            {"name": "sentinel", "port": SENTINEL_PORT, "targetPort": "sentinel", "protocol": "TCP"}
        )
    return ports


def headless_service(inst: Instance) -> dict[str, Any]:
    """Stable DNS for every pod: <name>-<i>.<name>-headless.<ns>.svc.

    Not-ready pods are published too: a replica must find the primary while
    either of them is still starting.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": inst.headless},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(inst.selector),
            "ports": _ports(inst),
        },
    }


def client_service(inst: Instance) -> dict[str, Any]:
    """Clients reach the primary, the only pod that takes writes: pod 0, or with
    failover the pod the operator labelled as the Sentinels' primary."""
    if inst.sentinel:
        primary = {**inst.selector, ROLE_LABEL: "master"}
    else:
        primary = {**inst.selector, "statefulset.kubernetes.io/pod-name": f"{inst.name}-0"}
    ports = [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": inst.name},
        "spec": {"selector": primary, "ports": ports},
    }


def replicas_service(inst: Instance) -> dict[str, Any]:
    """Read-only clients: every replica (the operator labels the pods' roles)."""
    ports = [{"name": "redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{inst.name}-replicas"},
        "spec": {"selector": {**inst.selector, ROLE_LABEL: "replica"}, "ports": ports},
    }


def sentinel_service(inst: Instance) -> dict[str, Any]:
    """Every ready Sentinel, for clients that ask SENTINEL get-master-addr-by-name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{inst.name}-sentinel"},
        "spec": {"selector": dict(inst.selector), "ports": _ports(inst, redis=False)},
    }


def network_policy(inst: Instance) -> dict[str, Any]:
    """The clients spec.networkPolicy names reach Redis and, with failover, the
    Sentinels (clients ask them for the primary); the pods reach each other
    (replication, the Sentinels' gossip); the operator reaches both (it reads the
    Sentinels and the servers' roles). Nothing else reaches the pods."""
    ports = [PORT, SENTINEL_PORT] if inst.sentinel else [PORT]
    # a scrape of the exporter's read-only metrics, from anywhere (Prometheus runs in
    # a namespace of its own)
    on = metrics.enabled(inst.spec)
    scrape = [monitoring.port(inst.spec, metrics.DEFAULT_METRICS_PORT)] if on else []
    return netpol.policy(inst, ports, peer_ports=ports, operator_ports=ports, open_ports=scrape)
