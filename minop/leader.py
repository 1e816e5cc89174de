"""Leader election through a coordination.k8s.io/v1 Lease.

Only the leader reconciles; standbys keep their caches warm. A Python thread
cannot be stopped, so a leader that misses its renew deadline stops writing at
once (the client's write fence) and then exits, as controller-runtime does: a
hook still in flight can never write after another replica may lead. Expiry is
judged by this process's own clock from when it last saw the Lease change, so
clock skew between replicas does not matter.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

from minop import kinds
from minop.apierrors import ApiError
from minop.kube import Kube
from minop.metrics import Metrics
from minop.objects import Obj

log = logging.getLogger("minop.leader")


def micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        on_started: Callable[[], None],
        on_lost: Callable[[], None],
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A renewal must fail fast: blocked for longer than the renew deadline, the
        # loop could not notice in time that it has to stop leading.
        self.kube = kube.with_timeouts(timeout=min(5.0, renew_deadline / 2), retries=1)
        self.namespace, self.name = namespace, name
        self.identity = identity()
        self.on_started, self.on_lost = on_started, on_lost
        self.lease_duration, self.renew_deadline = lease_duration, renew_deadline
        self.retry_period = retry_period
        self.metrics = metrics or kube.metrics
        self._clock = clock
        self._renewed = 0.0  # monotonic time of our last successful renewal
        self._leading = False
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self.metrics.leader_status.set(0, name=name)

    # -- public ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def may_write(self) -> bool:
        """The client's write fence: true only while our lease is surely ours (and
        never again once stopping: a renewal still in flight cannot reopen it)."""
        return (
            self._leading
            and not self._stop.is_set()
            and self._clock() - self._renewed < self.renew_deadline
        )

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:  # on_lost may call this
            self._thread.join(self.retry_period + 5)
        if release and self._leading:
            self._release()

    # -- loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        log.info(
            "waiting to lead through Lease %s/%s as %s", self.namespace, self.name, self.identity
        )
        while not self._stop.is_set() and self._tick():
            self._stop.wait(self.retry_period)

    def _tick(self) -> bool:
        """One attempt to acquire or renew; False once leadership is lost."""
        # The lease counts from before the request: the server may have written it at
        # any moment of a slow one, and other replicas count from what they saw.
        attempt = self._clock()
        ok = self._try_acquire_or_renew()
        if self._stop.is_set():
            return False  # stopping: a late answer must not make us lead again
        if ok:
            self._renewed = attempt
            if not self._leading:
                self._leading = True
                self.metrics.leader_status.set(1, name=self.name)
                log.info("became leader (Lease %s/%s)", self.namespace, self.name)
                threading.Thread(target=self.on_started, name="leading", daemon=True).start()
        elif self._leading and self._clock() - self._renewed >= self.renew_deadline:
            self._leading = False
            self.metrics.leader_status.set(0, name=self.name)
            log.error(
                "lost leadership: no renewal for %.0fs; exiting", self._clock() - self._renewed
            )
            self.on_lost()
            return False
        return True

    def _try_acquire_or_renew(self) -> bool:
        try:
            lease = self.kube.get_or_none(kinds.LEASE, self.name, self.namespace)
            if lease is None:
                self.kube.create(kinds.LEASE, self._lease(None), self.namespace, fenced=False)
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            seen = (holder, str(spec.get("renewTime")))
            if seen != self._observed:
                self._observed, self._observed_at = seen, self._clock()
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            expired = self._clock() - self._observed_at > duration
            if holder and holder != self.identity and not expired:
                return False
            self.kube.replace(kinds.LEASE, self._lease(lease), fenced=False)
            return True
        except ApiError as e:
            if e.status != 409:
                log.warning("leader election: %s", e)
            return False

    def _lease(self, current: Obj | None) -> Obj:
        now = micro_now()
        spec = dict((current or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if current is not None else 0
            )
        spec.update(
            holderIdentity=self.identity,
            renewTime=now,
            leaseDurationSeconds=int(self.lease_duration),
        )
        meta = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    def _release(self) -> None:
        """Give the Lease up so a standby takes over at once, not after it expires.
        The fence closes first: no write of ours may land after the release."""
        self._leading = False
        self.metrics.leader_status.set(0, name=self.name)
        try:
            lease = self.kube.get(kinds.LEASE, self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_now())
            self.kube.replace(kinds.LEASE, lease, fenced=False)
            log.info("released Lease %s/%s", self.namespace, self.name)
        except ApiError as e:
            log.warning("could not release the Lease: %s", e)
