"""A de-duplicating work queue with delayed adds and per-key backoff.

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


@dataclass
class _Entry:
    due: float
    causes: set[str] = field(default_factory=set)
    added: float = 0.0


class Backoff:
    """Per-key exponential backoff: ``base`` x 2^n, capped, reset on success."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap = base, cap
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def next(self, key: Hashable) -> float:
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        return min(self.cap, self.base * 2**n)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def reset(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)


class WorkQueue:
    def __init__(
        self,
        name: str = "minop",
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.metrics = metrics or Metrics()
        self._clock = clock
        self._pending: dict[Hashable, _Entry] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
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
                target[key] = _Entry(due, {cause}, now)
            else:
                entry.causes.add(cause)
                if due >= entry.due:
                    self._depth()
                    return
                entry.due = due
            if target is self._pending:
                heapq.heappush(self._heap, (due, next(self._seq), key))
                self._cond.notify()
            self._depth()

    def get(self, timeout: float | None = None) -> tuple[Hashable, set[str]] | None:
        """The next due key and its causes, or None on timeout or shutdown."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                while self._heap:
                    due, _, key = self._heap[0]
                    entry = self._pending.get(key)
                    if entry is None or entry.due != due:
                        heapq.heappop(self._heap)  # stale heap record
                        continue
                    if due > now:
                        break
                    heapq.heappop(self._heap)
                    del self._pending[key]
                    self._processing[key] = now
                    # from when it was due: an intended delay (backoff, timer) is no wait
                    waited = now - max(entry.added, entry.due)
                    self.metrics.queue_duration.observe(waited, name=self.name)
                    self._depth()
                    return key, entry.causes
                wait = self._heap[0][0] - now if self._heap else None
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
                heapq.heappush(self._heap, (entry.due, next(self._seq), key))
                self._cond.notify()
            self._depth()

    def processing(self) -> dict[Hashable, float]:
        """Keys being worked on, with the monotonic time their work started."""
        with self._cond:
            return dict(self._processing)

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
