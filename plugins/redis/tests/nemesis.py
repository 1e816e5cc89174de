"""The Redis nemesis: faults in a seeded random schedule against pods of local
processes (redis_pods.py: the plugin's own init.sh, probes, handover.sh and
Sentinel config), while a client writes and reads throughout, and a checker of
the history.

The client is Sentinel-aware, as the README tells users: it asks a Sentinel for
the primary, SETs a key of its own, and counts the write acknowledged only when
``WAIT 1`` says a replica has it (the documented durability). A sampler reads
every pod's replication state meanwhile. The checker asserts, in ``Report.problems``:
every acknowledged write is on the final primary (and read back when the client
read it), never two pods that accept writes as primary in the same sample, and
a new primary within ``bound`` after every fault that takes the primary away.

Faults (one at a time; the cluster healed and settled in between, as after a pod
comes back): ``kill_primary`` (kill -9 of redis-server, the kubelet restarts the
container), ``kill_sentinel`` (the primary's Sentinel), ``kill_both`` (the
primary's pod gone with its node, then recreated elsewhere: empty run directory,
same volume), ``recreate`` (any pod deleted, preStop hook first, and created again);
and, as operations on every pod (nemesis_operations.py), a cold start, a rollout and
a scale up and down.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nemesis_operations as operations
import redis
from minop_redis import config
from operator_view import operator_forgets_departed
from partition import Partition
from redis_pod import Pod, wait
from redis_pods import FIRST, Cluster
from redis_servers import Server
from test_redis_real_failover import three_with_sentinels

FAULTS = ("kill_primary", "kill_sentinel", "kill_both", "recreate", "partition")
COLD = ("cold_start",)  # every pod restarted, pod 0 stale or empty
ROLLOUT = ("rollout",)  # every pod replaced in the StatefulSet's order, the operator ticking
SCALE = ("scale",)  # one pod more, then one less
TIMEOUT = 2.0  # seconds a client waits for an answer before it reconnects


@dataclass
class Report:
    seed: int
    version: str
    bound: float  # seconds: a new primary within this after a fault that needs one
    faults: list[str] = field(default_factory=list)
    to_new_primary: list[float] = field(default_factory=list)  # one per failover
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    stale_reads: list[str] = field(default_factory=list)  # acknowledged, then read missing
    two_primaries: list[tuple[float, list[str]]] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # faults without a new primary in time

    def problems(self) -> list[str]:
        found: dict[str, list[Any]] = {
            "acknowledged writes lost": self.lost,
            "acknowledged writes read missing": self.stale_reads,
            "samples with two write-accepting primaries": self.two_primaries,
            f"faults without a new primary within {self.bound:.0f}s": self.late,
        }
        return [f"{len(v)} {what}: {v[:10]}" for what, v in found.items() if v]

    def summary(self) -> str:
        worst = max(self.to_new_primary, default=0.0)
        return (
            f"seed {self.seed} on {self.version}: {len(self.faults)} faults {self.faults}, "
            f"{len(self.to_new_primary)} failovers (max {worst:.1f}s to a new primary), "
            f"{self.acknowledged} writes acknowledged, {len(self.lost)} lost, "
            f"{len(self.two_primaries)} samples with two write-accepting primaries"
        )


def connect(port: int) -> redis.Redis:
    return redis.Redis("127.0.0.1", port, password=FIRST.decode(), socket_timeout=TIMEOUT)


def accepts_writes(pod: Pod) -> bool | None:
    """It is a primary that takes writes (role master, enough good replicas for
    min-replicas-to-write); None: not answering."""
    if pod.proc is None:
        return None
    try:
        info = connect(pod.port).info("replication")
    except redis.RedisError:
        return None
    if info.get("role") != "master":
        return False
    wanted = config.min_replicas_to_write(pod.c.inst)
    return int(info.get("min_slaves_good_slaves", info.get("connected_slaves", 0))) >= wanted


def named_primary(c: Cluster) -> Pod | None:
    """The pod a majority of the Sentinels name and that reports the master role."""
    votes: dict[int, int] = {}
    for p in c.pods:
        if p.sentinel is None:
            continue
        try:
            s = connect(c.sentinel_ports[p.ordinal])
            _, port = s.execute_command("SENTINEL", "get-master-addr-by-name", "r")
            votes[int(port)] = votes.get(int(port), 0) + 1
        except (redis.RedisError, ValueError, TypeError):
            continue
    named = [p for p in c.pods if votes.get(p.port, 0) * 2 > len(c.pods) and p.proc]
    if named and "role:master" in named[0].cli("info", "replication", password=FIRST):
        return named[0]
    return None


class Checked(threading.Thread):
    """A thread whose unexpected exception the checker re-raises: a client or sampler
    that died early would make the run pass unchecked."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.loop()
        except BaseException as e:
            self.error = e
            raise

    def loop(self) -> None:
        raise NotImplementedError


class Client(Checked):
    """Writes k<i> = i, one key at a time, to the primary a Sentinel names; reads back
    an earlier acknowledged key now and then."""

    def __init__(self, c: Cluster, rng: random.Random) -> None:
        super().__init__()
        self.c, self.rng = c, rng
        self.acked: list[str] = []
        self.stale: list[str] = []

    def primary_port(self) -> int | None:
        for port in self.rng.sample(self.c.sentinel_ports, len(self.c.sentinel_ports)):
            try:
                answer = connect(port).execute_command("SENTINEL", "get-master-addr-by-name", "r")
                return int(answer[1])
            except (redis.RedisError, TypeError, ValueError):
                continue
        return None

    def loop(self) -> None:
        i, conn = 0, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    port = self.primary_port()
                    if port is None:
                        self.stop.wait(0.1)  # a client's back-off: no Sentinel answers
                        continue
                    conn = connect(port)
                key = f"k{i}"
                i += 1
                conn.set(key, key)
                if conn.wait(1, 1000) >= 1:
                    self.acked.append(key)
                if self.acked and self.rng.random() < 0.1:
                    old = self.rng.choice(self.acked)
                    if conn.get(old) != old.encode():
                        self.stale.append(old)
            except (redis.RedisError, OSError):
                conn = None  # reconnect through the Sentinels
                self.stop.wait(0.05)


class Sampler(Checked):
    """Every pod's state, sampled continuously: the samples with two write-accepting
    primaries."""

    def __init__(self, c: Cluster, t0: float) -> None:
        super().__init__()
        self.c, self.t0 = c, t0
        self.two: list[tuple[float, list[str]]] = []
        self.samples = 0

    def loop(self) -> None:
        while not self.stop.is_set():
            self.samples += 1
            writable = [p.name for p in self.c.pods if accepts_writes(p)]
            if len(writable) > 1:
                self.two.append((round(time.monotonic() - self.t0, 2), writable))
            self.stop.wait(0.1)


def wait_for(fn: Callable[[], object], what: str, timeout: float, seed: int) -> None:
    """``redis_pods.wait``, naming the seed that replays the run."""
    wait(fn, f"{what} (seed {seed})", timeout)


def settled(c: Cluster) -> bool:
    """Every pod up, the primary named by the Sentinels with both replicas' links up,
    every Sentinel knowing its peers and the replicas (the operator's clean-up runs,
    as its timer would)."""
    operator_forgets_departed(c)
    primary = named_primary(c)
    if primary is None or any(p.proc is None for p in c.pods):
        return False
    others = len(c.pods) - 1
    for p in c.pods:
        if p is not primary and "master_link_status:up" not in p.cli(
            "info", "replication", password=FIRST
        ):
            return False
        fields = p.sentinel_cli("sentinel", "master", "r").splitlines()
        known = dict(zip(fields[::2], fields[1::2], strict=False))
        if known.get("num-other-sentinels") != str(others) or known.get("num-slaves") != str(
            others
        ):
            return False
    return True


def run(
    c: Cluster,
    seed: int,
    faults: int,
    bound: float,
    kinds: tuple[str, ...] = FAULTS,
    schedule: tuple[str, ...] = (),
) -> Report:
    """``faults`` faults of ``kinds`` drawn with ``seed`` (print it: the same seed
    replays the same schedule), or those of ``schedule`` in its order; the cluster
    must be running and settled."""
    rng = random.Random(seed)
    if c.partition is None:  # pods that talk directly cannot be cut off
        kinds = tuple(k for k in kinds if k != "partition")
    report = Report(seed, c.server.version, bound)
    t0 = time.monotonic()
    client, sampler = Client(c, random.Random(seed + 1)), Sampler(c, t0)
    client.start()
    sampler.start()
    try:
        for _ in range(faults):
            wait_for(lambda: len(client.acked) >= 5, "writes acknowledged", 30, seed)
            kind = schedule[len(report.faults)] if schedule else rng.choice(kinds)
            print(f"seed {seed}, fault {len(report.faults) + 1}: {kind}", flush=True)
            before = sampler.samples
            if kind in COLD:
                report.faults.append(operations.cold_start(c, rng, lambda: len(client.acked), seed))
            elif kind in ROLLOUT:
                report.faults.append(operations.rolling(c, rng, seed))
            elif kind in SCALE:
                report.faults.append(operations.scaling(c, seed))
            else:
                inject(c, kind, rng, report, seed)
            # the sampler looked at the pods during the fault, however slow the machine
            wait_for(
                lambda before=before: settled(c) and sampler.samples > before + 2,
                "the cluster to settle, sampled",
                90,
                seed,
            )
    finally:
        client.stop.set()
        sampler.stop.set()
        client.join()
        sampler.join()
    for t in (client, sampler):
        assert t.error is None, f"seed {seed}: {type(t).__name__} failed: {t.error!r}"
    primary = named_primary(c)
    assert primary is not None, f"seed {seed}: no primary at the end"
    report.acknowledged = len(client.acked)
    report.stale_reads = client.stale
    report.two_primaries = sampler.two
    conn = connect(primary.port)
    for start in range(0, len(client.acked), 500):
        keys = client.acked[start : start + 500]
        got = conn.mget(keys)
        report.lost += [k for k, v in zip(keys, got, strict=True) if v != k.encode()]
    return report


def inject(c: Cluster, kind: str, rng: random.Random, report: Report, seed: int) -> None:
    primary = named_primary(c)
    assert primary is not None, f"seed {seed}: no primary before {kind}"
    target = rng.choice(c.pods) if kind == "recreate" else primary
    report.faults.append(f"{kind} {target.name}")
    started = time.monotonic()
    if kind == "kill_primary":
        target.crash()
    elif kind == "kill_sentinel":
        target.crash_sentinel()
    elif kind == "kill_both":
        target.kill()
    elif kind == "recreate":  # its preStop hook hands over meanwhile, if it is primary
        recreating = threading.Thread(target=target.recreate)
        recreating.start()
    elif kind == "partition":
        assert c.partition is not None
        c.partition.isolate(target.address)
    if kind == "kill_sentinel" or target is not primary:
        if kind == "recreate":
            recreating.join()
        return

    def moved() -> bool:
        now = named_primary(c)
        return now is not None and now is not target

    deadline = started + report.bound
    while not moved():
        if time.monotonic() > deadline:
            report.late.append(report.faults[-1])
            wait_for(moved, f"a new primary after {report.faults[-1]}", 120, seed)
            break
        time.sleep(0.1)
    report.to_new_primary.append(round(time.monotonic() - started, 2))
    if kind == "partition":
        # held until the old primary refuses writes (no replica acknowledging within
        # minReplicasMaxLag), then healed: the Sentinels make it a replica
        wait_for(
            lambda: not accepts_writes(target), "the cut-off primary refusing writes", 60, seed
        )
        assert c.partition is not None
        c.partition.isolate(None)
    if kind == "kill_both":
        target.recreate()  # the pod again, on another node
    if kind == "recreate":
        recreating.join()


def version_of_the_day(ids: list[str]) -> str:
    """One server a day, in turn (CI runs cover them all over len(ids) days)."""
    return ids[time.gmtime().tm_yday % len(ids)]


def parse_seed(text: str) -> int:
    m = re.fullmatch(r"\d+", text.strip())
    assert m, f"MINOP_NEMESIS_SEED must be an integer, not {text!r}"
    return int(text)


def replay(
    server: Server,
    faults: int,
    kinds: tuple[str, ...] = FAULTS,
    spec: dict[str, Any] | None = None,
    schedule: tuple[str, ...] = (),
) -> Report:
    """A run on three fresh pods (failover, every pod behind a partitionable link, and
    ``spec``'s fields) with the seed MINOP_NEMESIS_SEED, else a random one; both print it."""
    seed = parse_seed(os.environ.get("MINOP_NEMESIS_SEED") or str(random.randrange(10**6)))
    print(f"nemesis seed {seed} (replay: MINOP_NEMESIS_SEED={seed})")
    top = Path(tempfile.mkdtemp(prefix="minop-nemesis-"))
    top.chmod(0o755)
    made: list[Cluster] = []

    def make(base: dict[str, Any]) -> Cluster:
        made.append(Cluster(top, {**base, **(spec or {})}, server, Partition()))
        return made[0]

    try:
        # the default downAfterMilliseconds (5 s) and minReplicasMaxLag
        c = three_with_sentinels(make, {"enabled": True, "failoverTimeoutMilliseconds": 10000})
        # down-after + one failed election retried after 2 x failover-timeout + 5 s
        bound = c.inst.down_after_ms / 1000 + 2 * 10 + 5
        report = run(c, seed, faults, bound, kinds, schedule)
    finally:
        for c in made:
            c.stop()
        shutil.rmtree(top, ignore_errors=True)
    print(report.summary())
    return report
