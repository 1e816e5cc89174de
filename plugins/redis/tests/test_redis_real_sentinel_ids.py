"""A recreated pod's Sentinel is the same Sentinel to the others (its ID is static),
so a crash failover stays possible after pods are recreated (drains, rollouts,
rotations). On 6.2 a Sentinel that came back with a new ID at the same address was
counted twice: the primary and its Sentinel lost together left too few votes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from operator_view import operator_forgets_departed, roles_of, sentinels_agree
from redis_pod import refused, wait
from redis_pods import FIRST, Cluster
from redis_servers import AS_ROOT
from test_redis_real_failover import three_with_sentinels


def test_a_recreated_pods_sentinel_keeps_its_id_and_a_crash_failover_still_happens(
    make_cluster, server
):
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    c.pods[1].recreate()
    me = c.pods[1].sentinel_cli("sentinel", "myid")
    for p in (c.pods[0], c.pods[2]):  # the others have heard from it since
        wait(
            lambda p=p: me in p.sentinel_cli("sentinel", "sentinels", "r"),
            f"{p.name}'s Sentinel knows the recreated one",
            30,
        )
    kill_primary_and_its_sentinel(c, server.version)


def test_the_operator_resets_stale_sentinel_entries_one_at_a_time(make_cluster, server):
    """A Sentinel back with another ID at the same address (a pod recreated under an
    operator that wrote random IDs): the operator resets the Sentinels counting it,
    never two at once, and a crash failover then happens."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    c.pods[1].restart_sentinel("f" * 40)
    for p in (c.pods[0], c.pods[2]):
        wait(
            lambda p=p: "f" * 40 in p.sentinel_cli("sentinel", "sentinels", "r"),
            f"{p.name}'s Sentinel knows the new ID",
            30,
        )
    reset: list[str] = []

    def settled() -> bool:
        """After the operator's resets, every Sentinel knows 2 others and 2 replicas."""
        name = operator_forgets_departed(c)
        if name:
            reset.append(name)
        for p in c.pods:
            info = p.sentinel_cli("sentinel", "master", "r").splitlines()
            fields = dict(zip(info[::2], info[1::2], strict=True))
            if (fields["num-other-sentinels"], fields["num-slaves"]) != ("2", "2"):
                return False
        return True

    wait(settled, "every Sentinel knowing exactly its peers and replicas", 60)
    kill_primary_and_its_sentinel(c, server.version)
    print(f"{server.version}: Sentinels reset, in order: {reset}")


def test_a_scale_3_4_3_restarts_no_process_and_a_crash_failover_still_happens(make_cluster, server):
    """kubectl scale changes the ConfigMap, not the pods: r-3's Sentinel joins the
    others (hellos), the operator sets the new quorum; scaled back, it resets the
    Sentinels that still count r-3 one at a time and sets the quorum back. The first
    three pods' processes run throughout, and a crash failover then happens."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    pids = [(p.proc.pid, p.sentinel.pid) for p in c.pods if p.proc and p.sentinel]
    # with a client password the Sentinels run in protected mode too
    assert all("protected-mode yes" in (p.run / "sentinel.conf").read_text() for p in c.pods)

    c.scale(4)
    wait(lambda: c.replicating(FIRST), "r-3 replicating")
    wait(lambda: sentinels_agree(c, 4), "4 Sentinels with quorum 3", 60)
    c.scale(3)
    wait(lambda: sentinels_agree(c, 3), "3 Sentinels with quorum 2 again", 60)
    assert [(p.proc.pid, p.sentinel.pid) for p in c.pods if p.proc and p.sentinel] == pids
    kill_primary_and_its_sentinel(c, server.version)


def test_clients_may_ask_a_sentinel_but_never_reconfigure_it(make_cluster, server):
    """With the client password a client discovers the primary, the replicas and the
    Sentinels and may subscribe to +switch-master; FAILOVER, SET, REMOVE, RESET and
    CONFIG are refused (only user sentinel, the operator's and the Sentinels', has
    them), and a failover then still happens."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    port = c.sentinel_ports[1]

    def client(*args: str) -> str:
        return c.pods[1].cli(*args, password=FIRST, port=port)

    assert client("ping") == "PONG"
    assert client("sentinel", "get-master-addr-by-name", "r").split() == [
        c.announced(0),
        str(c.pods[0].port),
    ]
    for ask in (("master", "r"), ("replicas", "r"), ("sentinels", "r"), ("masters",)):
        assert "NOPERM" not in client("sentinel", *ask), ask
    for change in (
        ("sentinel", "failover", "r"),
        ("sentinel", "set", "r", "quorum", "1"),
        ("sentinel", "remove", "r"),
        ("sentinel", "reset", "*"),
        ("sentinel", "config", "set", "resolve-hostnames", "no"),
        ("acl", "setuser", "default", "+@all"),
    ):
        assert "NOPERM" in client(*change), change
    assert refused(c.pods[1].cli("ping", password=b"guess", port=port))
    kill_primary_and_its_sentinel(c, server.version)


def kill_primary_and_its_sentinel(c: Cluster, version: str) -> None:
    """kill -9 of pod 0 (the primary) with its Sentinel, acknowledged writes before:
    a replica is promoted within 30 s and has them."""
    for i in range(20):
        assert c.primary.cli("set", f"k{i}", str(i), password=FIRST) == "OK"
    # a recreated replica may still be in its full resync: acknowledged once both have them
    wait(
        lambda: int(c.primary.cli("wait", "2", "1000", password=FIRST)) == 2,
        "both replicas acknowledging the writes",
        60,
    )
    c.pods[0].kill()  # 2 of 3 Sentinels left: a majority
    t0 = time.monotonic()
    wait(lambda: roles_of(c)[1:].count("master") == 1, "a replica promoted", 30)
    print(f"{version}: new primary {time.monotonic() - t0:.1f}s after the kill")
    promoted = c.pods[1 + roles_of(c)[1:].index("master")]
    assert promoted.cli("mget", *(f"k{i}" for i in range(20)), password=FIRST).split() == [
        str(i) for i in range(20)
    ]


def test_pods_under_an_arbitrary_uid_with_group_0_replicate_and_fail_over(make_cluster, server):
    """podSecurityContext with the IDs OpenShift's restricted-v2 assigns (a UID from the
    namespace's range, group 0, that fsGroup): init.sh, the servers, the Sentinels and
    record.sh work with only the group's access to the mounted files and volumes."""
    if not AS_ROOT:
        pytest.skip("runs the pods' processes as another user: needs root")
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    ids = {"runAsUser": 1000680000, "runAsGroup": 0, "fsGroup": 1000680000}
    c = three_with_sentinels(make_cluster, podSecurityContext=ids)
    for p in c.pods:
        for proc in (p.proc, p.sentinel):
            assert proc is not None
            status = Path(f"/proc/{proc.pid}/status").read_text()
            assert re.search(r"^Uid:\s+1000680000\s", status, re.M), status
            assert re.search(r"^Groups:\s+1000680000\s*$", status, re.M), status
    kill_primary_and_its_sentinel(c, server.version)
