"""What the operator reads from pods of local processes (redis_pods.py): roles.observe,
roles.forget_departed and roles.align_quorum with the test's loopback addresses, a
rollout's tick (rollout.py), and each pod's role."""

from __future__ import annotations

import re
from typing import Any

from minop_redis import roles, rollout
from minop_redis.children import Instance
from minop_redis.status import REVISION
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


def pods_on(revisions: str) -> list[dict[str, Any]]:
    """The pods as the operator's cache holds them, one per character (its revision
    label), each Ready."""
    return [
        {
            "metadata": {"name": f"r-{i}", "labels": {REVISION: rev}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        for i, rev in enumerate(revisions)
    ]


def operator_rollout_tick(
    c: Cluster,
    pods: list[dict[str, Any]],
    sts: dict[str, Any],
    template_hash: str,
    answers: list[str | None] | None = None,
) -> tuple[str | None, str | None]:
    """One timer tick of what the operator does for a rollout (failover.py's
    composition): the replicas' priorities, and a hand-over to pod 0 while the
    primary would be replaced early (its outcome appended to ``answers``: None, or
    why not). Returns the primary it read and the target."""
    inst, _, password, addresses, tls = _operator_args(c)
    primary, members = roles.observe(inst, pods, password, addresses, tls)
    due = rollout.primary_due_early(inst, sts, template_hash, pods, primary)
    target = "r-0" if rollout.hold(inst, template_hash, due) == "held" else None
    ready = target is not None and rollout.ready_target(inst, pods, members) == target
    wanted = rollout.priorities(pods, primary, target if ready else None)
    rollout.set_priorities(inst, pods, members, wanted, password, addresses, tls)
    if ready and target is not None and primary is not None:
        failed = rollout.hand_over(inst, pods, primary, target, password, addresses, tls)
        if answers is not None:
            answers.append(failed)
    return primary, target


def sentinels_agree(c: Cluster, n: int) -> bool:
    """One tick of the operator's Sentinel upkeep (resets, quorum), then whether every
    pod's Sentinel counts n - 1 others and n - 1 replicas, with quorum n // 2 + 1."""
    operator_forgets_departed(c)
    operator_aligns_quorum(c)
    want = (str(n - 1), str(n - 1), str(n // 2 + 1))
    for p in c.pods:
        info = p.sentinel_cli("sentinel", "master", "r").splitlines()
        fields = dict(zip(info[::2], info[1::2], strict=False))
        keys = ("num-other-sentinels", "num-slaves", "quorum")
        if tuple(fields.get(k) for k in keys) != want:
            return False
    return True


def roles_of(c: Cluster) -> list[str]:
    """Each pod's role as it reports it ('down': not answering)."""
    out = []
    for p in c.pods:
        info = p.cli("info", "replication", password=FIRST)
        role = re.search(r"^role:(\w+)", info, re.M)
        out.append(role.group(1) if role else "down")
    return out
