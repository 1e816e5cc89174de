"""Password rotation done the operator's way (``auth.step`` decides the Secret's
content, pods restart in the order the StatefulSet controller would use, and the
operator moves on only when every pod runs the current configuration) keeps
replication and clients working, on every supported server."""

from __future__ import annotations

from typing import Any

from minop_redis import auth
from operator_view import operator_view
from redis_pod import Pod, refused, wait
from redis_pods import FAILOVER, FIRST, SECOND


def test_password_rotation_the_operator_way_keeps_replication_and_clients(make_cluster):
    c = make_cluster({"replicas": 3, "passwordSecretRef": {"name": "pw"}})
    state = auth.step(None, FIRST, "v1", rolled=False)
    c.write_secret(state)
    c.start(0, 1, 2)
    wait(lambda: c.replicating(FIRST), "replication")
    assert c.primary.cli("set", "k", "before", password=FIRST) == "OK"

    def restart(i: int, passwords_ok: list[bytes]) -> None:
        c.restart(i)
        wait(lambda: c.replicating(FIRST, SECOND), f"replication after restarting r-{i}")
        for pw in passwords_ok:
            assert c.pods[i].cli("ping", password=pw) == "PONG", c.pods[i].name
        assert all(p.probe() for p in c.pods)

    # The user changes the Secret: phase 1, every new pod accepts both passwords.
    phase1 = auth.step(state, SECOND, "v2", rolled=False)
    assert phase1.password == SECOND and phase1.previous == (FIRST,)
    c.write_secret(phase1)
    # RollingUpdate with partition 1: pods 2 then 1; pod 0 stays on the old config
    for i in (2, 1):
        restart(i, [FIRST, SECOND])
    assert refused(c.primary.cli("ping", password=SECOND))
    assert c.primary.cli("ping", password=FIRST) == "PONG"  # clients keep working
    # not every pod runs phase 1 (partition held): the operator keeps the old password
    assert auth.step(phase1, SECOND, "v2", rolled=False) == phase1
    # The partition goes to 0: pod 0 rolls; now every pod accepts both.
    restart(0, [FIRST, SECOND])
    phase2 = auth.step(phase1, SECOND, "v2", rolled=True)
    assert phase2.previous == () and phase2.replication == state.replication
    c.write_secret(phase2)
    # Phase 2 in any order (OnDelete: whatever the user deletes first), primary first
    # here: replication never used the client password, so it holds throughout.
    for i in (0, 2, 1):
        restart(i, [SECOND])
        assert refused(c.pods[i].cli("ping", password=FIRST))
    assert c.primary.cli("get", "k", password=SECOND) == "before"  # data survived (AOF)
    assert c.primary.cli("set", "k", "after", password=SECOND) == "OK"
    for replica in c.pods[1:]:
        wait(lambda r=replica: r.cli("get", "k", password=SECOND) == "after", "replicated")


def test_internal_password_rotation_the_operator_way_keeps_replication_sentinels_and_failover(
    make_cluster, server
):
    """spec.auth.rotateInternalPassword: three rolls (pods recreated, highest ordinal
    first, the primary handing over), each once every pod runs the previous phase.
    Replication, the probes, the Sentinels and the operator's reads work throughout;
    afterwards the old internal password is refused and a crash failover happens."""
    sentinel = server.at_least(6, 2)  # failover needs 6.2; 6.0 rotates without
    spec: dict[str, Any] = {"replicas": 3, "passwordSecretRef": {"name": "pw"}}
    if sentinel:
        spec["sentinel"] = FAILOVER
    c = make_cluster(spec)
    state = auth.step(None, FIRST, "v1", rolled=False)
    old = state.replication
    c.write_secret(state)
    c.start(0, 1, 2)
    wait(lambda: c.replicating(FIRST), "replication")

    def sentinels_see_everyone() -> bool:
        return all("slaves=2,sentinels=3" in p.sentinel_cli("info", "sentinel") for p in c.pods)

    def replicating() -> bool:
        """One primary (a hand-over moves it off pod 0), every other pod linked to it."""
        infos = [p.cli("info", "replication", password=FIRST) for p in c.pods]
        masters = [i for i in infos if "role:master" in i]
        replicas = [i for i in infos if "role:slave" in i]
        linked = all("master_link_status:up" in i for i in replicas)
        return len(masters) == 1 and len(replicas) == 2 and linked

    def healthy(what: str) -> None:
        wait(replicating, f"replication {what}", 60)
        wait(lambda: all(p.probe() for p in c.pods), f"every probe passing {what}", 60)
        if sentinel:
            wait(sentinels_see_everyone, f"every Sentinel seeing everyone {what}", 60)
            assert operator_view(c)[0] is not None  # the operator reads the roles

    for phase in (1, 2, 3):
        state = auth.step(state, FIRST, "v1", rolled=True, rotation="2026-12-07")
        c.write_secret(state)  # the kubelet updates the files in every running pod
        healthy(f"with phase {phase}'s files, before the roll")
        for i in (2, 1, 0):
            c.pods[i].recreate()
            healthy(f"after recreating r-{i} in phase {phase}")
    assert not state.rotating_internal and state.replication != old
    new = state.replication
    for p in c.pods:
        assert refused(p.cli("ping", user="replication", password=old)), p.name
        assert p.cli("ping", user="replication", password=new) == "PONG"
        assert new in (p.run / "redis.conf").read_bytes()  # masterauth
        if sentinel:
            port = c.sentinel_ports[p.ordinal]
            assert refused(p.cli("ping", user="sentinel", password=old, port=port))
    if sentinel:  # a crash failover on the new password: the primary killed with its Sentinel
        primary = next(p for p in c.pods if "role:master" in p.cli("info", password=FIRST))
        assert primary.cli("set", "k", "v", password=FIRST) == "OK"
        assert primary.cli("wait", "2", "5000", password=FIRST) == "2"
        primary.kill()
        rest = [p for p in c.pods if p is not primary]

        def promoted() -> list[Pod]:
            return [p for p in rest if "role:master" in p.cli("info", password=FIRST)]

        wait(lambda: len(promoted()) == 1, "a replica promoted", 30)
        assert promoted()[0].cli("get", "k", password=FIRST) == "v"
