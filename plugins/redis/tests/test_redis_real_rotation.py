"""Password rotation done the operator's way (``auth.step`` decides the Secret's
content, pods restart in the order the StatefulSet controller would use, and the
operator moves on only when every pod runs the current configuration) keeps
replication and clients working, on every supported server."""

from __future__ import annotations

from minop_redis import auth
from redis_pod import refused, wait
from redis_pods import FIRST, SECOND


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
