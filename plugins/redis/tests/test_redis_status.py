"""Rollout status: Ready with a held partition or OnDelete, Progressing while rolling."""

from __future__ import annotations

from typing import Any

from minop_redis import status
from minop_redis.children import AUTH_HASH
from redis_objects import pod, statefulset


def spec(replicas: int, partition: int = 0, on_delete: bool = False) -> dict[str, Any]:
    strategy: dict[str, Any] = (
        {"type": "OnDelete"}
        if on_delete
        else {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": partition},
        }
    )
    return {"replicas": replicas, "updateStrategy": strategy}


def test_all_pods_ready_on_the_update_revision() -> None:
    r = status.rollout("r", spec(3), statefulset(3, current="rev-new"), [pod(i) for i in range(3)])
    assert (r.ready, r.progressing, r.reason) == (True, False, "AllPodsReady")
    assert r.fields["primary"] == "r-0" and r.fields["podNames"] == ["r-0", "r-1", "r-2"]
    assert r.fields["updateRevision"] == "rev-new" and r.fields["replicas"] == 3
    assert r.fields["currentRevision"] == "rev-new"


def test_ready_waits_for_the_statefulset_to_record_a_finished_rollout() -> None:
    # every pod is updated and ready, but the controller has not moved currentRevision yet
    r = status.rollout("r", spec(3), statefulset(3), [pod(i) for i in range(3)])
    assert (r.ready, r.progressing, r.reason) == (False, True, "RolloutInProgress")
    assert "waiting for the StatefulSet" in r.message
    # OnDelete: the controller never moves currentRevision, so updated pods are enough
    r = status.rollout("r", spec(3, on_delete=True), statefulset(3), [pod(i) for i in range(3)])
    assert (r.ready, r.reason) == (True, "AllPodsReady")


def test_pods_are_listed_by_ordinal_not_by_string() -> None:
    pods = [pod(i) for i in (10, 2, 1, 0, 3, 4, 5, 6, 7, 8, 9)]
    r = status.rollout("r", spec(11), statefulset(11), pods)
    assert r.fields["podNames"] == [f"r-{i}" for i in range(11)]


def test_creation_and_unobserved_generation_are_progressing() -> None:
    r = status.rollout("r", spec(1), None, [])
    assert (r.ready, r.progressing, r.reason) == (False, True, "Creating")
    r = status.rollout("r", spec(1), statefulset(1, observed=False), [pod(0)])
    assert (r.ready, r.reason) == (False, "RolloutInProgress")


def test_missing_or_unready_pods() -> None:
    r = status.rollout("r", spec(3), statefulset(3), [pod(0), pod(1, ready=False)])
    assert (r.ready, r.progressing, r.reason) == (False, True, "PodsNotReady")
    assert "1/3" in r.message and "r-1, r-2" in r.message


def test_scaling_down_is_not_ready_until_the_extra_pods_are_gone() -> None:
    pods = [pod(0), pod(1), pod(2, gone=True), pod(3)]
    r = status.rollout("r", spec(2), statefulset(2), pods)
    assert (r.ready, r.reason) == (False, "ScalingDown") and "r-2, r-3" in r.message


def test_rolling_update_in_progress() -> None:
    pods = [pod(0, "rev-old"), pod(1, "rev-old"), pod(2)]
    r = status.rollout("r", spec(3), statefulset(3), pods)
    assert (r.ready, r.progressing, r.reason) == (False, True, "RolloutInProgress")
    assert r.outdated == (0, 1) and "r-0, r-1" in r.message


def test_a_held_partition_is_ready() -> None:
    pods = [pod(0, "rev-old"), pod(1, "rev-old")] + [pod(i) for i in (2, 3, 4)]
    r = status.rollout("r", spec(5, partition=2), statefulset(5), pods)
    assert (r.ready, r.progressing, r.reason) == (True, False, "PartitionHeld")
    assert "r-0, r-1 stay on rev-old (partition 2)" in r.message
    assert r.fields["currentRevision"] == "rev-old"
    # pod 2 not yet updated: that one is still due
    pods[2] = pod(2, "rev-old")
    r = status.rollout("r", spec(5, partition=2), statefulset(5), pods)
    assert (r.ready, r.reason) == (False, "RolloutInProgress") and "r-2" in r.message


def test_on_delete_waits_for_the_user_and_is_ready() -> None:
    pods = [pod(0, "rev-old"), pod(1)]
    r = status.rollout("r", spec(2, on_delete=True), statefulset(2), pods)
    assert (r.ready, r.progressing, r.reason) == (True, False, "UpdateWaitsForDelete")
    assert "r-0" in r.message


def test_zero_replicas_is_ready_without_a_primary() -> None:
    r = status.rollout("r", spec(0), statefulset(0, current="rev-new"), [])
    assert r.ready and r.fields["primary"] is None and r.fields["podNames"] == []


def test_everyone_on_needs_every_ordinal_ready_on_the_template_revision() -> None:
    sts = statefulset(3, digest="d1")
    pods = [pod(i) for i in range(3)]
    assert status.everyone_on(sts, pods, AUTH_HASH, "d1")
    assert not status.everyone_on(sts, pods, AUTH_HASH, "d0")  # another template
    assert not status.everyone_on(sts, pods[:2], AUTH_HASH, "d1")  # a pod missing
    assert not status.everyone_on(sts, [*pods[:2], pod(2, "rev-old")], AUTH_HASH, "d1")
    assert not status.everyone_on(sts, [*pods[:2], pod(2, ready=False)], AUTH_HASH, "d1")
    assert not status.everyone_on(
        statefulset(3, digest="d1", observed=False), pods, AUTH_HASH, "d1"
    )
    assert status.everyone_on(None, [], AUTH_HASH, "d1")  # nothing runs at all
