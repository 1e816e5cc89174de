"""Shard membership and hand-over, through Leases in the API server.

Each replica holds a Lease of its own (``<group>-member-<id>``, labelled with the group)
and renews it like the leader's; the live members are the unexpired ones. The leader
stores the assignment (member -> buckets, see ``minop.shard.rebalance``) on the Lease
``<group>-shards``. Each member's Lease lists the buckets it holds — its
acknowledgement — and a bucket changes hands only through it:

- a bucket no longer assigned to us: stop taking its keys and let its in-flight work
  end (``on_release``, on a thread of its own: renewals go on meanwhile), then renew
  our Lease without it;
- a bucket newly assigned to us: taken only once no live member's Lease lists it
  (a crashed member's claim counts until its Lease expires), and worked on only
  after our Lease lists it.

``may_write`` is the per-bucket write fence: open only while the bucket is ours and
our Lease surely unexpired. Expiry is judged by this process's clock from when it
last saw a Lease change, as leader election does, so clock skew does not matter.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from minop import kinds
from minop.apierrors import ApiError, NotFound
from minop.kube import Kube
from minop.lease import DEFAULT_TIMING, LeaseLoop, LeaseTiming, lease_body, micro_now
from minop.metrics import Metrics
from minop.objects import Obj
from minop.shard import BUCKETS, Assignment, rebalance

log = logging.getLogger("minop.membership")

GROUP_LABEL = "minop.dev/shard-group"
HELD = "minop.dev/buckets"  # on a member's Lease: the buckets it holds
ASSIGNMENT = "minop.dev/assignment"  # on <group>-shards: JSON {member: buckets}
EVERY = frozenset(range(BUCKETS))


def encode(buckets: Iterable[int]) -> str:
    """``0-19,40,42-44``: short enough for an annotation, readable by a human."""
    out: list[str] = []
    run: list[int] = []
    for b in sorted(set(buckets)):
        if run and b != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(b)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def decode(text: str) -> frozenset[int]:
    """The inverse of ``encode``; ValueError names what is wrong."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if not 0 <= first <= last < BUCKETS:
            raise ValueError(f"bucket range {part!r} outside 0-{BUCKETS - 1}")
        out.update(range(first, last + 1))
    return frozenset(out)


def member_name(group: str, identity: str) -> str:
    """A Lease name (DNS subdomain) for the member ``identity`` of ``group``."""
    clean = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")
    return f"{group}-member-{clean}"[:253].rstrip("-")


class Membership(LeaseLoop):
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        group: str,
        identity: str,
        *,
        on_acquire: Callable[[frozenset[int]], None],
        on_release: Callable[[frozenset[int]], None],
        on_lost: Callable[[], None],
        is_leader: Callable[[], bool],
        timing: LeaseTiming = DEFAULT_TIMING,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(kube, timing, metrics, clock, "shard-membership")
        self.namespace, self.group = namespace, group
        self.name = member_name(group, identity)
        self.on_acquire, self.on_release, self.on_lost = on_acquire, on_release, on_lost
        self.is_leader = is_leader
        self.held: frozenset[int] = frozenset()
        # given up, in-flight work still ending: still listed in our Lease
        self._draining: frozenset[int] = frozenset()
        self._lock = threading.Lock()  # _draining: the tick and drain threads
        self._lease: Obj | None = None  # ours, as last written
        self._seen: dict[str, tuple[str, float]] = {}  # peer -> (renewTime, seen at)
        self._assigned_at: dict[int, float] = {}  # bucket -> when we saw it assigned to us
        self.metrics.shard_buckets.set(0, group=group)

    # -- public ------------------------------------------------------------------------

    def may_write(self, bucket: int) -> bool:
        """The write fence of one bucket."""
        return bucket in self.held and self.fresh()

    def stop(self) -> None:
        """Give every bucket up (in-flight work ends first), then delete our Lease: the
        others take over at once instead of after it expires."""
        self._end()
        if self.held:
            self._release(self.held, wait=True)
        try:
            self.kube.delete(kinds.LEASE, self.name, self.namespace)
        except ApiError as e:
            if not isinstance(e, NotFound):
                log.warning("could not delete the member Lease %s: %s", self.name, e)

    # -- loop ----------------------------------------------------------------------------

    def _waiting(self) -> None:
        log.info("shard member %s of %s/%s", self.name, self.namespace, self.group)

    def tick(self) -> bool:
        """One round: see the members, (leader) reassign, hand over, renew. False once
        our Lease could not be renewed within the renew deadline."""
        attempt = self._clock()
        try:
            claims = self._live_claims()
            assignment = self._assignment(set(claims) | {self.name})
        except ApiError as e:
            log.warning("shard membership: %s", e)
            return self._check_deadline()
        target = assignment.get(self.name, frozenset())
        now = self._clock()
        for b in target - self.held:
            self._assigned_at.setdefault(b, now)
        if self.held - target:
            self._release(self.held - target)
        taken = {b for peer, held in claims.items() if peer != self.name for b in held}
        with self._lock:
            draining = self._draining
        gains = target - self.held - draining - taken
        if not self._renew(self.held | draining | gains):
            return self._check_deadline()
        self._renewed = attempt
        if gains and not self._stop.is_set():
            self._acquire(gains)
        return True

    def _check_deadline(self) -> bool:
        if self._within_deadline() or not self._renewed:
            return True
        log.error("shard member Lease not renewed for %.0fs; exiting", self.timing.renew_deadline)
        self.held = frozenset()
        self.metrics.shard_buckets.set(0, group=self.group)
        self.on_lost()
        return False

    # -- hand-over -------------------------------------------------------------------------

    def _release(self, buckets: frozenset[int], wait: bool = False) -> None:
        """Stop working on ``buckets`` at once (the fence closes); once their in-flight
        work ended, the next renewal stops listing them."""
        started = self._clock()
        self.held = self.held - buckets
        self.metrics.shard_buckets.set(len(self.held), group=self.group)
        with self._lock:
            self._draining = self._draining | buckets

        def drain() -> None:
            self.on_release(buckets)
            with self._lock:
                self._draining = self._draining - buckets
            self._observe("released", len(buckets), self._clock() - started)
            log.info("released buckets %s", encode(buckets))

        if wait:
            drain()
        else:
            threading.Thread(target=drain, name="shard-drain", daemon=True).start()

    def _acquire(self, buckets: frozenset[int]) -> None:
        self.held = self.held | buckets
        self.metrics.shard_buckets.set(len(self.held), group=self.group)
        now = self._clock()
        for b in buckets:
            self._observe("acquired", 1, now - self._assigned_at.pop(b, now))
        log.info("acquired buckets %s", encode(buckets))
        self.on_acquire(buckets)

    def _observe(self, direction: str, n: int, seconds: float) -> None:
        self.metrics.shard_handovers.inc(n, group=self.group, direction=direction)
        self.metrics.shard_handover_duration.observe(seconds, group=self.group, direction=direction)

    # -- the API server ------------------------------------------------------------------------

    def _live_claims(self) -> dict[str, frozenset[int]]:
        """Every live member (by Lease name) and the buckets its Lease lists."""
        leases, _ = self.kube.list(
            kinds.LEASE, self.namespace, label_selector=f"{GROUP_LABEL}={self.group}"
        )
        now, live = self._clock(), {}
        names = set()
        for lease in leases:
            name = lease["metadata"]["name"]
            names.add(name)
            spec = lease.get("spec") or {}
            renew = str(spec.get("renewTime"))
            if self._seen.get(name, ("", 0.0))[0] != renew:
                self._seen[name] = (renew, now)
            if self.timing.expired(spec, self._seen[name][1], now) and name != self.name:
                continue  # expired: its claims lapse
            live[name] = self._held_by(lease)
        self._seen = {n: v for n, v in self._seen.items() if n in names}
        return live

    def _held_by(self, lease: Obj) -> frozenset[int]:
        text = ((lease["metadata"].get("annotations") or {}).get(HELD)) or ""
        try:
            return decode(text)
        except ValueError as e:
            # unreadable: it may hold anything, so nobody takes from it until it expires
            log.error("Lease %s: annotation %s: %s", lease["metadata"]["name"], HELD, e)
            return EVERY

    def _assignment(self, live: set[str]) -> Assignment:
        """The stored assignment; the leader first moves it to the live members."""
        name = f"{self.group}-shards"
        stored = self.kube.get_or_none(kinds.LEASE, name, self.namespace)
        current = _parse_assignment(stored)
        if not self.is_leader() or set(current) == live:
            return current
        new = rebalance(current, live)
        body = stored or lease_body({"name": name, "namespace": self.namespace}, {})
        body["metadata"].setdefault("annotations", {})[ASSIGNMENT] = json.dumps(
            {m: encode(b) for m, b in sorted(new.items())}
        )
        if stored is None:
            self.kube.create(kinds.LEASE, body, self.namespace, fenced=False)
        else:
            self.kube.replace(kinds.LEASE, body, fenced=False)
        log.info("shard assignment: %s", ", ".join(f"{m}={len(b)}" for m, b in new.items()))
        return new

    def _renew(self, held: frozenset[int]) -> bool:
        """Write our Lease listing ``held``; False if the API server did not take it."""
        now = micro_now()
        meta: dict[str, object] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {GROUP_LABEL: self.group},
            "annotations": {HELD: encode(held)},
        }
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": int(self.timing.lease_duration),
            "renewTime": now,
        }
        try:
            if self._lease is None:
                spec["acquireTime"] = now
                self._lease = self.kube.create(
                    kinds.LEASE, lease_body(meta, spec), self.namespace, fenced=False
                )
            else:
                meta["resourceVersion"] = self._lease["metadata"]["resourceVersion"]
                spec["acquireTime"] = (self._lease.get("spec") or {}).get("acquireTime", now)
                self._lease = self.kube.replace(kinds.LEASE, lease_body(meta, spec), fenced=False)
            return True
        except ApiError as e:
            log.warning("shard member Lease %s: %s", self.name, e)
            if e.status == 404:
                self._lease = None  # deleted under us: created again next round
            elif e.status == 409:
                self._refetch()
            return False

    def _refetch(self) -> None:
        """Our Lease as the API server has it now (a write of ours raced another)."""
        try:
            self._lease = self.kube.get_or_none(kinds.LEASE, self.name, self.namespace)
        except ApiError as e:
            log.warning("shard member Lease %s: %s", self.name, e)


def _parse_assignment(lease: Obj | None) -> Assignment:
    text = ((lease or {}).get("metadata", {}).get("annotations") or {}).get(ASSIGNMENT)
    if not text:
        return {}
    try:
        raw: Mapping[str, str] = json.loads(text)
        return {m: decode(b) for m, b in raw.items()}
    except (ValueError, AttributeError) as e:
        # the leader rewrites it from the live members; until then nobody gains
        log.error("annotation %s unreadable (%s): assigning afresh", ASSIGNMENT, e)
        return {}
