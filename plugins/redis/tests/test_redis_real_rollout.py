"""A rollout with failover on real servers (6.2 and later), the operator's ticks driving
it as in a cluster: the primary hands over to pod 0 before anything is replaced and is
replaced last (two hand-overs in all, whatever ordinal held it), and a crash in the
middle never promotes a replica of another revision (a canary)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minop_redis.rollout import HOLD_S, TEMPLATE_HASH
from nemesis import accepts_writes
from operator_view import operator_rollout_tick, pods_on, roles_of
from redis_pod import Pod, wait
from redis_pods import FIRST, Cluster
from redis_servers import install
from test_redis_real_failover import never_two_masters, three_with_sentinels


def as_sentinel(p: Pod, *args: str) -> str:
    """A command on a pod's Redis as user sentinel (what the operator may run)."""
    return p.cli(*args, password=(p.c.auth / "replication").read_bytes(), user="sentinel")


def sentinel_sees_priority(c: Cluster, seen_by: Pod, replica: Pod, priority: int) -> bool:
    flat = seen_by.sentinel_cli("sentinel", "replicas", "r").splitlines()
    # redis-cli prints each replica's fields as name/value lines, "ip" first among them
    for i, line in enumerate(flat):
        if line == "port" and flat[i + 1] == str(replica.port):
            at = flat.index("slave-priority", i)
            return flat[at + 1] == str(priority)
    return False


def statefulset(applied: str, update: str) -> dict[str, Any]:
    annotations = {TEMPLATE_HASH: applied}
    return {"metadata": {"annotations": annotations}, "status": {"updateRevision": update}}


def write(c: Cluster, keys: list[str], n: int) -> None:
    """n writes on the primary, each acknowledged by both replicas (WAIT 2)."""
    primary = primary_of(c)
    for _ in range(n):
        key = f"k{len(keys)}"
        assert primary.cli("set", key, key, password=FIRST) == "OK"
        keys.append(key)
    assert primary.cli("wait", "2", "10000", password=FIRST) == "2"


def writable(c: Cluster) -> list[str]:
    """The pods that take writes as primary (a pod restarting may report the master
    role for a moment with no replica, and refuses writes: minReplicasToWrite)."""
    return [p.name for p in c.pods if accepts_writes(p)]


def primary_of(c: Cluster) -> Pod:
    wait(lambda: roles_of(c).count("master") == 1, "one primary", 30)
    return c.pods[roles_of(c).index("master")]


def test_the_primary_hands_over_to_pod_0_first_and_is_replaced_last(make_cluster, server):
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    # an earlier failover left the primary on r-2
    assert as_sentinel(c.pods[1], "config", "set", "replica-priority", "0") == "OK"
    wait(lambda: sentinel_sees_priority(c, c.pods[2], c.pods[1], 0), "priority seen", 15)
    assert c.pods[2].sentinel_cli("sentinel", "failover", "r") == "OK"
    wait(lambda: roles_of(c) == ["slave", "slave", "master"], "r-2 primary", 30)
    assert as_sentinel(c.pods[1], "config", "set", "replica-priority", "100") == "OK"
    keys: list[str] = []
    write(c, keys, 20)
    changes: list[str] = []

    def primary_changed() -> None:
        now = primary_of(c).name
        if not changes or changes[-1] != now:
            changes.append(now)

    key = f"t-{c.root}"  # the template hashes: unique per test (the hold is per Redis)
    with never_two_masters(c, writable, every=0.2):
        primary_changed()
        # the template changes: the operator holds the partition and hands over to r-0
        held = statefulset(f"{key}-1", "a")

        answers: list[str | None] = []  # each hand-over's outcome: None, or why not

        def handed_over() -> bool:
            primary, target = operator_rollout_tick(c, pods_on("aaa"), held, f"{key}-2", answers)
            # (mid-hand-over no majority of Sentinels may name a primary: no target)
            assert target in ("r-0", None), target
            return primary == "r-0"  # what a majority of the Sentinels say

        try:  # within the operator's own bound (HOLD_S: it gives up after)
            wait(handed_over, "the hand-over to r-0 before any pod is replaced", HOLD_S)
        except AssertionError as e:
            raise AssertionError(f"{e}; the hand-overs said: {answers}") from e
        primary_changed()
        wait(lambda: c.replicating(FIRST), "r-1 and r-2 replicating from r-0", 60)
        # the next tick releases the hold: nothing left for it to do
        rolling = statefulset(f"{key}-2", "b")
        assert operator_rollout_tick(c, pods_on("aaa"), rolling, f"{key}-2") == ("r-0", None)
        write(c, keys, 20)
        # the StatefulSet controller replaces r-2, then r-1 (replicas: no hand-over)
        for ordinal, revisions in ((2, "aab"), (1, "abb")):
            c.pods[ordinal].recreate()
            wait(lambda: c.replicating(FIRST), "replication", 60)
            assert operator_rollout_tick(c, pods_on(revisions), rolling, f"{key}-2") == (
                "r-0",
                None,
            )
            primary_changed()
            write(c, keys, 20)
    with never_two_masters(c, writable, every=0.2):
        # then r-0, the primary: its preStop hook hands over to a replaced pod
        c.pods[0].recreate()
        wait(lambda: roles_of(c)[0] == "slave", "r-0 back as a replica", 60)
        primary_changed()
    assert changes[0] == "r-2" and changes[1] == "r-0" and changes[2] in ("r-1", "r-2"), changes
    assert len(changes) == 3, f"one hand-over first and one at the end, no more: {changes}"
    got = primary_of(c).cli("mget", *keys, password=FIRST).splitlines()
    assert got == keys, "acknowledged writes lost"


def test_a_crash_during_a_rollout_never_promotes_a_replica_of_another_revision(
    make_cluster, server
):
    """A canary on r-2 (partition 2): the primary r-0 crashes with its Sentinel. The
    Sentinels would prefer r-2 (r-1's priority is worse); the operator's priority 0
    on r-2 leaves r-1, which runs the primary's revision."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    crash_with_a_canary(three_with_sentinels(make_cluster))


@pytest.fixture
def canary_cluster() -> Iterator[Cluster]:
    """Three pods with failover on Redis 7.0, r-2 a canary on 8.0 (another image)."""
    top = Path(tempfile.mkdtemp(prefix="minop-canary-"))
    top.chmod(0o755)
    made: list[Cluster] = []
    try:
        (top / "old").mkdir(mode=0o755)
        (top / "new").mkdir(mode=0o755)
        old = install("redis-7.0-bookworm", top / "old")
        new = install("redis-8.0-trixie", top / "new")

        def make(spec: dict[str, Any]) -> Cluster:
            (top / "c").mkdir(mode=0o755)
            made.append(Cluster(top / "c", spec, old))
            made[0].pod_servers[2] = new
            return made[0]

        yield three_with_sentinels(make)
    finally:
        for c in made:
            c.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_a_canary_of_a_newer_major_version_is_never_promoted(canary_cluster):
    """The canary is Redis 8.0 beside 7.0 pods: promoted, its RDB (format 12) could not
    be loaded by the 7.0 replicas, which would never sync again. r-1 (7.0) is."""
    c = canary_cluster
    assert "redis_version:8.0" in c.pods[2].cli("info", "server", password=FIRST)
    crash_with_a_canary(c)
    # the 8.0 canary replicates from the 7.0 primary (an older RDB loads)
    wait(lambda: "master_link_status:up" in c.pods[2].cli("info", "replication", password=FIRST),
         "the canary replicating from r-1", 60)  # fmt: skip


def crash_with_a_canary(c: Cluster) -> None:
    """r-2 on another revision, the Sentinels' favourite by priority: the operator's tick
    sets it to 0, then r-0 dies with its Sentinel; r-1 must be promoted, every
    acknowledged write on it."""
    assert as_sentinel(c.pods[1], "config", "set", "replica-priority", "200") == "OK"
    keys: list[str] = []
    write(c, keys, 20)
    canary = statefulset(f"t-{c.root}", "b")
    assert operator_rollout_tick(c, pods_on("aab"), canary, f"t-{c.root}") == ("r-0", None)
    assert "slave_priority:0" in as_sentinel(c.pods[2], "info", "replication").split()
    for seen_by in c.pods[1:]:  # the Sentinels that survive the crash
        wait(lambda s=seen_by: sentinel_sees_priority(c, s, c.pods[2], 0), "priority seen", 15)
    with never_two_masters(c):
        c.pods[0].kill()
        wait(lambda: "master" in roles_of(c)[1:], "a replica promoted", 60)
    assert roles_of(c)[1:] == ["master", "slave"], "the canary was promoted"
    got = c.pods[1].cli("mget", *keys, password=FIRST).splitlines()
    assert got == keys, "acknowledged writes lost"
