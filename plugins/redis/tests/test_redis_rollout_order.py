"""A rollout with failover: which replicas may be promoted, when the primary hands over
to pod 0 first (the partition held meanwhile), and when the operator gives that up."""

from __future__ import annotations

from typing import Any

from minop_redis import children, rollout
from minop_redis.children import Instance
from minop_redis.roles import Member
from minop_redis.rollout import DEFAULT_PRIORITY, TEMPLATE_HASH
from minop_redis.status import REVISION

SELECTOR = {"app.kubernetes.io/instance": "r"}


def inst(**spec: Any) -> Instance:
    base = {"replicas": 3, "sentinel": {"enabled": True}}
    return Instance("r", "ns", {**base, **spec}, SELECTOR, SELECTOR, "redis")


def pods(revisions: str, ready: bool = True) -> list[dict[str, Any]]:
    """One pod per character: its revision."""
    state = "True" if ready else "False"
    return [
        {
            "metadata": {"name": f"r-{i}", "labels": {REVISION: rev}},
            "status": {"conditions": [{"type": "Ready", "status": state}]},
        }
        for i, rev in enumerate(revisions)
    ]


def sts(applied: str | None, update: str) -> dict[str, Any]:
    annotations = {TEMPLATE_HASH: applied} if applied else {}
    return {"metadata": {"annotations": annotations}, "status": {"updateRevision": update}}


D = DEFAULT_PRIORITY


def test_without_a_rollout_every_replica_may_be_promoted() -> None:
    assert rollout.priorities(pods("aaa"), "r-0") == {"r-1": D, "r-2": D}
    assert rollout.priorities(pods("aaa"), None) == {}


def test_a_replica_of_another_revision_is_never_promoted_while_one_of_the_primarys_is_left() -> (
    None
):
    # a canary (or the first pod a rollout replaced): r-1 takes over if r-0 fails
    assert rollout.priorities(pods("aab"), "r-0") == {"r-1": D, "r-2": 0}
    # the primary is the last pod on its revision: its own hand-over needs a replica
    assert rollout.priorities(pods("abb"), "r-0") == {"r-1": D, "r-2": D}
    # after that hand-over the old pod, now a replica, is the one left out
    assert rollout.priorities(pods("abb"), "r-1") == {"r-0": 0, "r-2": D}


def test_during_a_hand_over_only_the_target_may_be_promoted() -> None:
    assert rollout.priorities(pods("aaa"), "r-2", target="r-0") == {"r-0": D, "r-1": 0}


def test_a_primary_past_pod_0_is_due_early_when_the_template_changes() -> None:
    i = inst()
    assert rollout.primary_due_early(i, sts("t1", "a"), "t2", pods("aaa"), "r-2")
    assert rollout.primary_due_early(i, sts("t1", "a"), "t2", pods("aaa"), "r-1")
    # pod 0 is replaced last anyway
    assert not rollout.primary_due_early(i, sts("t1", "a"), "t2", pods("aaa"), "r-0")
    # nothing changes
    assert not rollout.primary_due_early(i, sts("t1", "a"), "t1", pods("aaa"), "r-2")
    # a StatefulSet an older operator applied (no hash): only a rollout under way counts
    assert not rollout.primary_due_early(i, sts(None, "a"), "t2", pods("aaa"), "r-2")
    assert rollout.primary_due_early(i, sts(None, "b"), "t2", pods("aab"), "r-1")
    # unknown primary, no StatefulSet yet
    assert not rollout.primary_due_early(i, sts("t1", "a"), "t2", pods("aaa"), None)
    assert not rollout.primary_due_early(i, None, "t2", pods("aaa"), "r-2")


def test_a_rollout_under_way_is_due_until_the_primary_runs_the_update_revision() -> None:
    i = inst()
    assert rollout.primary_due_early(i, sts("t2", "b"), "t2", pods("aab"), "r-1")
    assert not rollout.primary_due_early(i, sts("t2", "b"), "t2", pods("abb"), "r-2")


def test_below_the_partition_or_under_on_delete_nothing_is_due() -> None:
    canary = inst(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert not rollout.primary_due_early(canary, sts("t1", "a"), "t2", pods("aaa"), "r-1")
    assert rollout.primary_due_early(canary, sts("t1", "a"), "t2", pods("aaa"), "r-2")
    on_delete = inst(updateStrategy={"type": "OnDelete"})
    assert not rollout.primary_due_early(on_delete, sts("t1", "a"), "t2", pods("aaa"), "r-2")


def test_pod_0_is_a_target_only_as_a_ready_replica_with_its_link_up() -> None:
    i = inst()
    up = [Member("r-0", "replica", 10, True), Member("r-2", "master", 10)]
    assert rollout.ready_target(i, pods("aaa"), up) == "r-0"
    assert rollout.ready_target(i, pods("aaa", ready=False), up) is None
    down = [Member("r-0", "replica", 10, False), Member("r-2", "master", 10)]
    assert rollout.ready_target(i, pods("aaa"), down) is None
    assert rollout.ready_target(i, pods("aaa"), [Member("r-0", "unknown")]) is None


def test_the_hold_lasts_hold_s_per_template_then_the_rollout_goes_on() -> None:
    i = inst()
    assert rollout.hold(i, "t2", True, now=0.0) == "held"
    assert rollout.hold(i, "t2", True, now=rollout.HOLD_S) == "held"
    assert rollout.hold(i, "t2", True, now=rollout.HOLD_S + 1) == "expired"  # said once
    assert rollout.hold(i, "t2", True, now=rollout.HOLD_S + 3) == "gave-up"
    # another template: a new attempt
    assert rollout.hold(i, "t3", True, now=rollout.HOLD_S + 5) == "held"
    assert rollout.hold(i, "t3", False, now=rollout.HOLD_S + 7) == "free"
    assert rollout.hold(i, "t3", True, now=1000.0) == "held"
    rollout.hold(i, "t3", False)


def test_the_held_partition_replaces_no_pod_and_the_hash_ignores_it() -> None:
    i = inst(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    desired = children.statefulset(
        i, config_hash="c", auth_hash="a", claim_size="1Gi", storage_class=None
    )
    digest = rollout.mark(desired)
    assert desired["metadata"]["annotations"][TEMPLATE_HASH] == digest
    assert desired["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1
    rollout.hold_partition(desired)
    assert desired["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 3
    assert rollout.mark(desired) == digest
    other = children.statefulset(
        i, config_hash="c2", auth_hash="a", claim_size="1Gi", storage_class=None
    )
    assert rollout.mark(other) != digest
