"""Leader election through a coordination.k8s.io/v1 Lease.

Only the leader reconciles; standbys keep their caches warm. A Python thread
cannot be stopped, so a leader that misses its renew deadline stops writing at
once (the client's write fence) and then exits, as controller-runtime does: a
hook still in flight can never write after another replica may lead. Expiry is
judged by this process's own clock from when it last saw the Lease change, so
clock skew between replicas does not matter.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

from minop import kinds
from minop.apierrors import ApiError
from minop.kube import Kube
from minop.lease import DEFAULT_TIMING, LeaseLoop, LeaseTiming, lease_body, micro_now
from minop.metrics import Metrics
from minop.objects import Obj

log = logging.getLogger("minop.leader")


def identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector(LeaseLoop):
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        on_started: Callable[[], None],
        on_lost: Callable[[], None],
        timing: LeaseTiming = DEFAULT_TIMING,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(kube, timing, metrics, clock, "leader-election")
        self.namespace, self.name = namespace, name
        self.identity = identity()
        self.on_started, self.on_lost = on_started, on_lost
        self._leading = False
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self.metrics.leader_status.set(0, name=name)

    # -- public ------------------------------------------------------------------------

    def may_write(self) -> bool:
        """The client's write fence: true only while our lease is surely ours (and
        never again once stopping: a renewal still in flight cannot reopen it)."""
        return self._leading and self.fresh()

    @property
    def leading(self) -> bool:
        return self._leading

    def stop(self, release: bool = True) -> None:
        self._end()  # on_lost may call this from the loop itself
        if release and self._leading:
            self._release()

    # -- loop ----------------------------------------------------------------------------

    def _waiting(self) -> None:
        log.info(
            "waiting to lead through Lease %s/%s as %s", self.namespace, self.name, self.identity
        )

    def tick(self) -> bool:
        """One attempt to acquire or renew; False once leadership is lost."""
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
        elif self._leading and not self._within_deadline():
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
            expired = self.timing.expired(spec, self._observed_at, self._clock())
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
            leaseDurationSeconds=int(self.timing.lease_duration),
        )
        meta = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return lease_body(meta, spec)

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
