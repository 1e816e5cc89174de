"""Shard membership through Leases (issue 24): members agree on a partition of the
buckets, a bucket changes hands only after its last owner's Lease stops listing it,
a crashed member's buckets move once its Lease expires, and the per-bucket fence."""

import copy
import json
import threading

import pytest

from minop.apierrors import Conflict, NotFound
from minop.kit.testing import wait_for
from minop.lease import LeaseTiming
from minop.membership import ASSIGNMENT, HELD, Membership, decode, encode
from minop.metrics import Metrics
from minop.shard import BUCKETS


class Leases:
    """Leases in memory, with resourceVersion conflicts. Every write is checked like
    the audit log would be: no bucket listed by two unexpired member Leases."""

    def __init__(self, clock):
        self.clock = clock
        self.written: dict[str, float] = {}  # Lease name -> when last written
        self.items: dict[str, dict] = {}
        self.rv = 0
        self.metrics = Metrics()
        self.down = False  # every request fails, as with the API server unreachable

    def with_timeouts(self, timeout, retries):
        return self

    def _check(self):
        if self.down:
            raise Conflict(0, "", "connection refused")

    def held(self) -> dict[str, frozenset[int]]:
        out = {}
        for n, o in self.items.items():
            try:
                out[n] = decode((o["metadata"].get("annotations") or {})[HELD])
            except (KeyError, ValueError):
                continue  # not a member's Lease, or one the test made unreadable
        return out

    def assignment(self) -> dict[str, frozenset[int]]:
        lease = next(o for n, o in self.items.items() if n.endswith("-shards"))
        stored = json.loads(lease["metadata"]["annotations"][ASSIGNMENT])
        return {m: decode(b) for m, b in stored.items()}

    def _store(self, body):
        self.rv += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.items[obj["metadata"]["name"]] = obj
        self.written[obj["metadata"]["name"]] = self.clock()
        held = {n: b for n, b in self.held().items() if self.clock() - self.written[n] <= 15}
        for a in held:
            for b in held:
                assert a == b or not held[a] & held[b], f"{a} and {b} both hold buckets"
        return copy.deepcopy(obj)

    def list(self, kind, namespace=None, *, label_selector=None):
        self._check()
        key, _, value = label_selector.partition("=")
        found = [
            copy.deepcopy(o)
            for o in self.items.values()
            if (o["metadata"].get("labels") or {}).get(key) == value
        ]
        return found, str(self.rv)

    def get_or_none(self, kind, name, namespace=None):
        self._check()
        return copy.deepcopy(self.items.get(name))

    def create(self, kind, body, namespace=None, *, fenced=True):
        self._check()
        if body["metadata"]["name"] in self.items:
            raise Conflict(409, "AlreadyExists", body["metadata"]["name"])
        return self._store(body)

    def replace(self, kind, body, *, fenced=True):
        self._check()
        current = self.items.get(body["metadata"]["name"])
        if current is None:
            raise NotFound(404, "NotFound", body["metadata"]["name"])
        if current["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
            raise Conflict(409, "Conflict", body["metadata"]["name"])
        return self._store(body)

    def delete(self, kind, name, namespace=None):
        self._check()
        self.items.pop(name, None)


class Cluster:
    """Members of one group on one fake API server and one clock; ``leader`` names the
    member whose ``is_leader`` is true."""

    def __init__(self):
        self.now, self.leader = [1000.0], "a"
        self.api = Leases(lambda: self.now[0])
        self.members: dict[str, Membership] = {}
        self.log: list[tuple[str, str, frozenset[int]]] = []
        self.lost: list[str] = []

    def add(self, name, on_release=None):
        m = Membership(
            self.api, "ns", "op", name,
            on_acquire=lambda b: self.log.append((name, "acquire", b)),
            on_release=on_release or (lambda b: self.log.append((name, "release", b))),
            on_lost=lambda: self.lost.append(name),
            is_leader=lambda: self.leader == name,
            timing=LeaseTiming(lease_duration=15, renew_deadline=10, retry_period=2),
            clock=lambda: self.now[0],
        )  # fmt: skip
        self.members[name] = m
        return m

    def rounds(self, n=3, only=None):
        for _ in range(n):
            for name, m in self.members.items():
                if only is None or name in only:
                    m.tick()
            self.now[0] += 2


def shares(cluster):
    return {n: len(m.held) for n, m in cluster.members.items()}


def test_encode_and_decode_buckets():
    assert encode([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert decode("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert decode("") == frozenset()
    with pytest.raises(ValueError, match="outside 0-119"):
        decode(f"100-{BUCKETS}")


def test_three_members_split_the_buckets_and_say_so_in_their_leases():
    c = Cluster()
    for n in "abc":
        c.add(n)
    c.rounds(4)
    assert shares(c) == {"a": 40, "b": 40, "c": 40}
    held = c.api.held()
    assert {len(b) for b in held.values()} == {40} and len(held) == 3
    assert set(c.api.assignment()) == set(held)  # the leader's assignment, by Lease name
    assert 'minop_shard_buckets_owned{group="op"} 40' in c.members["b"].metrics.render()


def test_a_bucket_moves_only_after_its_owner_released_it():
    """b joins while a's in-flight work for the buckets it gives up runs on (longer than
    a Lease): a keeps renewing and listing them, b takes none of them; once the work
    ended, a's next renewal drops them and b's next round takes them."""
    c = Cluster()
    a = c.add("a")
    c.rounds(2)
    assert len(a.held) == BUCKETS
    b = c.add("b")
    draining, drained = threading.Event(), threading.Event()

    def in_flight(buckets):
        assert not any(a.may_write(x) for x in buckets)  # the fence closed first
        draining.set()
        drained.wait(10)

    a.on_release = in_flight
    c.rounds(1, only="b")  # b's Lease exists, so the leader assigns it a share
    a.tick()  # reassigns and gives up half: the drain starts
    assert draining.wait(5)
    c.rounds(10)  # 20 s
    assert a.fresh() and len(a.held) == 60 and not b.held
    assert len(c.api.held()["op-member-a"]) == BUCKETS
    drained.set()
    wait_for(lambda: a.tick() and len(c.api.held()["op-member-a"]) == 60, 5, "a's release")
    b.tick()
    assert len(b.held) == 60 and not a.held & b.held


def test_a_crashed_members_buckets_move_once_its_lease_expires():
    c = Cluster()
    for n in "abc":
        c.add(n)
    c.rounds(3)
    crashed = set(c.members["c"].held)
    del c.members["c"]  # kill -9: its Lease stays, listing its buckets
    before = len(c.log)
    c.rounds(7)  # its last renewal seen 12 s ago: not expired (15 s)
    assert shares(c) == {"a": 40, "b": 40}
    c.rounds(2)
    assert shares(c) == {"a": 60, "b": 60}
    assert crashed <= c.members["a"].held | c.members["b"].held
    acquired = [e for e in c.log[before:] if e[1] == "acquire" and e[2] & crashed]
    assert {e[0] for e in acquired} == {"a", "b"}


def test_a_member_that_stops_cleanly_hands_over_at_once():
    c = Cluster()
    for n in "ab":
        c.add(n)
    c.rounds(3)
    c.members.pop("b").stop()
    assert "op-member-b" not in c.api.items
    c.rounds(2)
    assert shares(c) == {"a": BUCKETS}


def test_a_member_that_cannot_renew_closes_its_fence_and_gives_up():
    c = Cluster()
    a = c.add("a")
    c.rounds(2)
    assert a.may_write(0)
    c.api.down = True  # last renewed at 1002; now 1004
    c.now[0] += 5
    assert a.tick() is True  # failed, but within the renew deadline
    assert a.may_write(0)
    c.now[0] += 4  # 11 s since the last renewal
    assert not a.may_write(0)
    assert a.tick() is False
    assert c.lost == ["a"] and not a.held


def test_an_unreadable_claim_blocks_its_buckets_until_its_lease_expires():
    c = Cluster()
    for n in "ab":
        c.add(n)
    c.rounds(3)
    bad = c.api.items["op-member-b"]
    bad["metadata"]["annotations"][HELD] = "0-999"
    c.members.pop("b")
    c.rounds(1)
    assert len(c.members["a"].held) == 60
    c.rounds(8)  # b's Lease expired
    assert len(c.members["a"].held) == BUCKETS
