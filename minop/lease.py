"""What leader election and shard membership share: a coordination.k8s.io/v1 Lease
renewed on a thread of its own, and the timings that keep its write fence safe.

Expiry is judged by this process's own clock from when it last saw a Lease change,
so clock skew between replicas does not matter.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings.py imports this module: no client at import time
    from minop.kube import Kube
    from minop.metrics import Metrics
    from minop.objects import Obj


def micro_now() -> str:
    """A Lease's MicroTime for now."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": dict(metadata),
        "spec": dict(spec),
    }


@dataclass(frozen=True)
class LeaseTiming:
    """How long a Lease lasts, how soon its holder must have renewed it, and how often
    it tries. A holder retries its renewal within the deadline and stops writing before
    the Lease can expire for the others, so each must be shorter than the one before."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.renew_deadline < self.lease_duration:
            raise ValueError(
                f"renew-deadline: must be shorter than lease-duration "
                f"({self.renew_deadline:g} >= {self.lease_duration:g})"
            )
        if not self.retry_period < self.renew_deadline:
            raise ValueError(
                f"retry-period: must be shorter than renew-deadline "
                f"({self.retry_period:g} >= {self.renew_deadline:g})"
            )

    def client(self, kube: Kube) -> Kube:
        """``kube`` failing fast: a renewal blocked past the renew deadline could not
        notice in time that its holder has to stop writing."""
        return kube.with_timeouts(timeout=min(5.0, self.renew_deadline / 2), retries=1)

    def expired(self, spec: Mapping[str, Any], seen_at: float, now: float) -> bool:
        """A Lease with ``spec``, last seen changing at ``seen_at``, has expired by ``now``."""
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return now - seen_at > duration


# controller-runtime's defaults
DEFAULT_TIMING = LeaseTiming()


class LeaseLoop(ABC):
    """A Lease renewed every retry period on a thread of its own until ``tick`` says it
    was lost or ``stop`` is called."""

    def __init__(
        self,
        kube: Kube,
        timing: LeaseTiming,
        metrics: Metrics | None,
        clock: Callable[[], float],
        thread_name: str,
    ) -> None:
        self.kube = timing.client(kube)
        self.timing = timing
        self.metrics = metrics or kube.metrics
        self._clock = clock
        # monotonic time of our last successful renewal, counted from before its request:
        # the server may have written the Lease at any moment of a slow one
        self._renewed = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @abstractmethod
    def tick(self) -> bool:
        """One round; False once the Lease is lost (the loop ends)."""

    @abstractmethod
    def _waiting(self) -> None:
        """Logs what the loop is about to hold."""

    def _run(self) -> None:
        self._waiting()
        while not self._stop.is_set() and self.tick():
            self._stop.wait(self.timing.retry_period)

    def _within_deadline(self) -> bool:
        return self._clock() - self._renewed < self.timing.renew_deadline

    def fresh(self) -> bool:
        """Our Lease is surely unexpired for the others, and we are not stopping (a
        renewal still in flight cannot reopen the fence)."""
        return not self._stop.is_set() and self._within_deadline()

    def _end(self) -> None:
        """Stop the loop and let its round end (unless called from the loop itself)."""
        self._stop.set()
        if self._thread.ident is not None and threading.current_thread() is not self._thread:
            self._thread.join(self.timing.retry_period + 5)
