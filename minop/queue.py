"""A de-duplicating work queue with delayed adds.

Keys are hashable (minop uses group/kind/namespace/name). A key is never
handed to two workers at once: adds while it is being processed are kept and
re-queued when the worker calls ``done``. Each entry carries the set of causes
that queued it (e.g. ``watch``, ``child``, ``timer:refresh``), merged on de-dup.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from minop.metrics import Metrics

# Urgent keys served in a row while other due work waits, before one of the others:
# edits go first, but a sustained stream of them cannot starve child, timer and retry work.
URGENT_SHARE = 4


@dataclass
class _Entry:
    due: float
    causes: set[str] = field(default_factory=set)
    added: float = 0.0
    tier: int = 1  # 0: urgent (see WorkQueue.urgent), 1: the rest


class WorkQueue:
    def __init__(
        self,
        name: str = "minop",
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        urgent: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.metrics = metrics or Metrics()
        self._clock = clock
        # Due keys with one of these causes go first (e.g. a user's edit before the
        # hundredth pod event of a scale-up), up to URGENT_SHARE in a row while others
        # wait; among equals, earliest due first.
        self.urgent = urgent
        self._streak = 0  # urgent keys served in a row while others waited
        self._pending: dict[Hashable, _Entry] = {}
        self._heaps: tuple[list[tuple[float, int, Hashable]], ...] = ([], [])
        self._seq = itertools.count()
        self._processing: dict[Hashable, float] = {}  # key -> start time
        self._dirty: dict[Hashable, _Entry] = {}  # added while processing
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._dirty)

    def add(self, key: Hashable, cause: str = "watch", delay: float = 0.0) -> None:
        now = self._clock()
        due = now + max(0.0, delay)
        with self._cond:
            if self._closed:
                return
            self.metrics.queue_adds.inc(name=self.name)
            if delay > 0 and cause == "retry":
                self.metrics.queue_retries.inc(name=self.name)
            target = self._dirty if key in self._processing else self._pending
            entry = target.get(key)
            if entry is None:
                entry = target[key] = _Entry(due, {cause}, now, self._tier({cause}))
            else:
                entry.causes.add(cause)
                tier = self._tier(entry.causes)
                if due >= entry.due and tier == entry.tier:
                    self._depth()
                    return
                entry.due, entry.tier = min(due, entry.due), tier
            if target is self._pending:
                self._push(key, entry)
            self._depth()

    def _tier(self, causes: set[str]) -> int:
        return 0 if causes & self.urgent else 1

    def _push(self, key: Hashable, entry: _Entry) -> None:
        heapq.heappush(self._heaps[entry.tier], (entry.due, next(self._seq), key))
        self._cond.notify()

    def get(self, timeout: float | None = None) -> tuple[Hashable, set[str]] | None:
        """The next due key and its causes, or None on timeout or shutdown."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                tops = []
                for tier, heap in enumerate(self._heaps):
                    while heap:
                        due, _, key = heap[0]
                        entry = self._pending.get(key)
                        if entry is not None and entry.due == due and entry.tier == tier:
                            break
                        heapq.heappop(heap)  # stale heap record
                    if heap:
                        tops.append(heap[0][0])
                ready = [h for h in self._heaps if h and h[0][0] <= now]
                if ready:
                    both = len(ready) == 2
                    take = ready[1] if both and self._streak >= URGENT_SHARE else ready[0]
                    self._streak = self._streak + 1 if both and take is ready[0] else 0
                    due, _, key = heapq.heappop(take)
                    entry = self._pending.pop(key)
                    self._processing[key] = now
                    # from when it was due: an intended delay (backoff, timer) is no wait
                    waited = now - max(entry.added, entry.due)
                    self.metrics.queue_duration.observe(waited, name=self.name)
                    self._depth()
                    return key, entry.causes
                wait = min(tops) - now if tops else None
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def done(self, key: Hashable) -> None:
        """The worker finished ``key``; anything added meanwhile becomes due."""
        with self._cond:
            start = self._processing.pop(key, None)
            if start is not None:
                self.metrics.work_duration.observe(self._clock() - start, name=self.name)
            entry = self._dirty.pop(key, None)
            if entry is not None:
                self._pending[key] = entry
                self._push(key, entry)
            self._depth()
            self._cond.notify_all()  # wait_idle

    def wait_idle(self, which: Callable[[Hashable], bool], timeout: float) -> bool:
        """Wait until no key ``which`` selects is being processed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(which(k) for k in self._processing):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _depth(self) -> None:
        self.metrics.queue_depth.set(len(self._pending) + len(self._dirty), name=self.name)
        now = self._clock()
        running = [now - s for s in self._processing.values()]
        self.metrics.unfinished_work.set(sum(running), name=self.name)
        self.metrics.longest_running.set(max(running, default=0.0), name=self.name)
