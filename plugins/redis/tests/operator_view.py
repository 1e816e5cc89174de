"""What the operator reads from pods of local processes (redis_pods.py): roles.observe,
roles.forget_departed and roles.align_quorum with the test's loopback addresses, and
each pod's role."""

from __future__ import annotations

import re
from typing import Any

from minop_redis import roles
from minop_redis.children import Instance
from redis_pods import FIRST, Cluster


def _operator_args(c: Cluster) -> tuple[Any, ...]:
    """What the operator passes roles.observe and friends, with loopback addresses."""

    def addresses(inst: Instance, pod: dict[str, Any]) -> roles.Addresses:
        p = c.pods[int(pod["metadata"]["name"].rsplit("-", 1)[1])]
        sentinel = ("127.0.0.1", c.sentinel_ports[p.ordinal])
        announced = (c.announced(p.ordinal), p.port)
        return roles.Addresses(("127.0.0.1", p.port), sentinel, announced)

    pods = [{"metadata": {"name": p.name}} for p in c.pods]
    password = (c.auth / "replication").read_bytes()
    return c.inst, pods, password, addresses, c.operator_tls()


def operator_view(c: Cluster) -> tuple[str | None, list[roles.Member]]:
    """What the operator reads (roles.observe)."""
    return roles.observe(*_operator_args(c))


def operator_forgets_departed(c: Cluster) -> str | None:
    """One timer tick of the operator's Sentinel clean-up (roles.forget_departed)."""
    return roles.forget_departed(*_operator_args(c))


def operator_aligns_quorum(c: Cluster) -> list[str]:
    """One timer tick of the operator's quorum upkeep (roles.align_quorum)."""
    return roles.align_quorum(*_operator_args(c))


def roles_of(c: Cluster) -> list[str]:
    """Each pod's role as it reports it ('down': not answering)."""
    out = []
    for p in c.pods:
        info = p.cli("info", "replication", password=FIRST)
        role = re.search(r"^role:(\w+)", info, re.M)
        out.append(role.group(1) if role else "down")
    return out
