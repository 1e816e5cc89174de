"""Failover by the generated Sentinels on every supported server that has it (6.2
and later): a crashed primary replaced, a deleted primary's pod handing over
first, nothing acknowledged lost, never two masters, and what the operator reads
from the Sentinels."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from minop_redis import auth, children, roles
from operator_view import operator_view, roles_of
from redis_pod import Pod, terminate, wait
from redis_pods import FAILOVER, FIRST, Cluster


def three_with_sentinels(
    make_cluster: Any, sentinel: dict[str, Any] = FAILOVER, **spec: Any
) -> Cluster:
    """Three pods with failover (``sentinel``; the default minReplicasToWrite: 1) and
    ``spec``, replicating, every Sentinel seeing every other and both replicas."""
    spec = {"replicas": 3, "passwordSecretRef": {"name": "pw"}, "sentinel": sentinel, **spec}
    c = make_cluster(spec)
    c.write_secret(auth.step(None, FIRST, "v1", rolled=False))
    c.start(0, 1, 2)
    wait(lambda: c.replicating(FIRST), "replication")

    def sentinels_see_everyone() -> bool:
        for p in c.pods:
            info = p.sentinel_cli("info", "sentinel")
            if "slaves=2,sentinels=3" not in info:
                return False
        return True

    wait(sentinels_see_everyone, "every Sentinel sees 2 replicas and 3 Sentinels", 60)
    return c


def masters(c: Cluster) -> list[str]:
    """The pods that report the master role themselves."""
    return [p.name for p, role in zip(c.pods, roles_of(c), strict=True) if role == "master"]


@contextmanager
def never_two_masters(
    c: Cluster, primaries: Callable[[Cluster], list[str]] = masters, every: float = 0.5
) -> Iterator[None]:
    """``primaries`` sampled every ``every`` s meanwhile (by default the pods reporting
    the master role): no sample names two."""
    samples = 0
    two: list[list[str]] = []
    stop = threading.Event()

    def sample() -> None:
        nonlocal samples
        while not stop.is_set():
            samples += 1
            found = primaries(c)
            if len(found) > 1:
                two.append(found)
            stop.wait(every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
    assert samples and not two, f"{len(two)} of {samples} samples: {two[:5]}"


def test_sentinel_fails_over_a_crashed_primary_and_it_rejoins_as_a_replica(make_cluster, server):
    if not server.at_least(6, 2):
        init_refuses_failover_on_6_0(make_cluster)
        return
    c = three_with_sentinels(make_cluster)
    primary, members = operator_view(c)
    assert primary == "r-0" and [m.role for m in members] == ["master", "replica", "replica"]
    assert all(m.link_up for m in members[1:])
    # acknowledged by a replica before the crash: must survive it
    for i in range(50):
        assert c.primary.cli("set", f"k{i}", str(i), password=FIRST) == "OK"
    assert int(c.primary.cli("wait", "1", "5000", password=FIRST)) >= 1

    with never_two_masters(c):
        old = c.pods[0]
        old.crash()
        t0 = time.monotonic()
        wait(lambda: roles_of(c)[1:].count("master") == 1, "a replica promoted", 30)
        promoted = c.pods[1 + roles_of(c)[1:].index("master")]
        assert time.monotonic() - t0 < 30

        # what clients asking any Sentinel get (they agree within a moment)
        def told(p: Pod) -> bool:
            answer = p.sentinel_cli("sentinel", "get-master-addr-by-name", "r").split()
            return answer == ["127.0.0.1", str(promoted.port)]

        wait(lambda: all(told(p) for p in c.pods), "every Sentinel names the new primary", 15)
        # the operator moves the Service's label: off the old primary, then onto the new
        wait(lambda: operator_view(c)[0] == promoted.name, "the operator sees it", 15)
        labelled = [{"metadata": {"name": "r-0", "labels": {children.ROLE_LABEL: "master"}}}]
        labelled += [{"metadata": {"name": p.name}} for p in c.pods[1:]]
        changes = roles.label_changes(labelled, promoted.name)
        assert changes[0] == ("r-0", "replica") and changes[-1] == (promoted.name, "master")
        # writes succeed on the new primary, every acknowledged key is there
        wait(lambda: promoted.cli("set", "after", "1", password=FIRST) == "OK", "writes", 30)
        for i in range(50):
            assert promoted.cli("get", f"k{i}", password=FIRST) == str(i)
        # the old primary comes back, as a replica of the new one, with the new data
        wait(lambda: roles_of(c)[0] == "slave", "the old primary back as a replica", 60)
        wait(lambda: old.cli("get", "after", password=FIRST) == "1", "replicated to it", 30)
        assert "READONLY" in old.cli("set", "x", "1", password=FIRST)


def test_a_deleted_primarys_pod_hands_over_before_it_stops_and_loses_no_acknowledged_write(
    make_cluster, server
):
    """Its preStop hook (handover.sh): writes paused, replicas caught up, a Sentinel
    of another pod promotes one without an election; a client writing all along
    finds every write it got OK for on the new primary."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2 (that 6.0 is refused is the test above)")
    c = three_with_sentinels(make_cluster)
    old = c.pods[0]
    acknowledged: list[str] = []
    stop = threading.Event()

    def client() -> None:
        """SET after SET on the old primary, as a client that has not reconnected."""
        env = {"PATH": server.path, "REDISCLI_AUTH": FIRST.decode()}
        i = 0
        while not stop.is_set():
            cmd = [str(server.cli), "-p", str(old.port), "set", f"w{i}", str(i)]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
            except subprocess.TimeoutExpired:
                continue
            if r.stdout.strip() == "OK":
                acknowledged.append(f"w{i}")
            i += 1

    writer = threading.Thread(target=client)
    with never_two_masters(c):
        writer.start()
        wait(lambda: len(acknowledged) >= 20, "the client's first writes")
        took = old.delete()
        stop.set()
        writer.join()
        log = (c.root / "r-0-prestop.log").read_text()
        assert "handover: the Sentinels promoted" in log, log
        promoted = next(p for p in c.pods[1:] if roles_of(c)[p.ordinal] == "master")
        # no Sentinel counted the old primary down: a hand-over, not a crash failover
        for p in c.pods:
            sentinel_log = (c.root / f"{p.name}-sentinel.log").read_text()
            assert "+odown" not in sentinel_log, sentinel_log
        got = promoted.cli("mget", *acknowledged, password=FIRST).splitlines()
        lost = [k for k, v in zip(acknowledged, got, strict=True) if v != k[1:]]
        assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged writes lost: {lost}"
        wait(lambda: promoted.cli("set", "after", "1", password=FIRST) == "OK", "writes", 15)
        # the pod comes back as a replica of the new primary
        old.start()
        wait(lambda: roles_of(c)[0] == "slave", "the old primary back as a replica", 60)
    print(f"{server.version}: hand-over in {took:.1f}s, {len(acknowledged)} writes acknowledged")

    # every pod at once (the Redis deleted): nobody is left to hand over to, and no
    # hook waits for a promotion that cannot come
    took_each: list[float] = []
    stops = [threading.Thread(target=lambda p=p: took_each.append(p.delete())) for p in c.pods]
    for t in stops:
        t.start()
    for t in stops:
        t.join()
    assert len(took_each) == 3 and max(took_each) < 15, took_each
    print(f"{server.version}: every pod at once: the hooks took {sorted(took_each)}")


def init_refuses_failover_on_6_0(make_cluster: Any) -> None:
    c = make_cluster({"replicas": 1, "sentinel": FAILOVER})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    with pytest.raises(subprocess.CalledProcessError):
        c.start(0)
    assert "needs Redis 6.2 or later" in (c.root / "r-0-init.log").read_text()


def test_the_operator_names_a_primary_only_when_a_majority_of_all_sentinels_do(
    make_cluster, server
):
    """One Sentinel of three answering is no majority (it may be the one cut off):
    the operator names no primary and so changes no label."""
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    assert operator_view(c)[0] == "r-0"
    for p in c.pods[1:]:
        terminate(p.sentinel)
        p.sentinel = None
    assert operator_view(c)[0] is None
