"""A controller per resource: its own work queue, worker pool and timer schedule.

As in controller-runtime, one slow plugin cannot starve another: each resource
has ``workers`` threads of its own (a process-wide cap, when set, bounds them
all together). A key is never handed to two workers at once, and a hook that
outlived its timeout keeps its key busy until its thread ends. Timers live in
their own schedule: a due timer queues its key like any cause and is re-armed
``interval`` after it ran, so the interval is a minimum, never a maximum.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from minop.keys import Key
from minop.queue import WorkQueue
from minop.reconcile import Reconciler, Result
from minop.resource import Timer

log = logging.getLogger("minop.controller")


class TimerSchedule:
    """Due times per (key, timer); ``due`` hands out the ones that are due and re-arms them."""

    def __init__(
        self,
        timers: tuple[Timer, ...],
        fire: Callable[[Key], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timers = {t.name: t for t in timers}
        self._clock = clock
        self._fire = fire  # queues a key whose timer came due
        self._due: dict[tuple[Key, str], float] = {}
        self._heap: list[tuple[float, int, Key, str]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False

    def watch(self, key: Key) -> None:
        """Arm every timer of a key seen for the first time."""
        if not self.timers:
            return
        now = self._clock()
        with self._cond:
            for t in self.timers.values():
                if (key, t.name) not in self._due:
                    self._arm(key, t.name, now + (t.initial_delay or t.interval))

    def due(self, key: Key) -> list[str]:
        now = self._clock()
        out = []
        with self._cond:
            for name, t in self.timers.items():
                at = self._due.get((key, name))
                if at is not None and at <= now:
                    out.append(name)
                    self._arm(key, name, now + t.interval)
        return out

    def drop(self, key: Key) -> None:
        with self._cond:
            for name in self.timers:
                self._due.pop((key, name), None)

    def _arm(self, key: Key, name: str, at: float) -> None:
        self._due[(key, name)] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, key, name))
        self._cond.notify()

    def run(self) -> None:
        with self._cond:
            while not self._closed:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    at, _, key, name = heapq.heappop(self._heap)
                    if self._due.get((key, name)) == at:  # else re-armed or dropped since
                        self._fire(key)
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Controller:
    def __init__(
        self,
        reconciler: Reconciler,
        workers: int,
        cap: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.name = reconciler.controller
        self.metrics = reconciler.rt.metrics
        # an event on the object itself (a user's edit) before its children's events
        self.queue = WorkQueue(self.name, self.metrics, urgent=frozenset({"watch"}))
        self.timers = TimerSchedule(reconciler.b.resource.timers, self._timer_due)
        reconciler.due_timers = self.timers.due
        self.workers = workers
        self._cap = cap
        self._threads: list[threading.Thread] = []
        self._busy: dict[str, float] = {}  # worker -> start of its current pass

    # -- input --------------------------------------------------------------------------

    def enqueue(self, key: Key, cause: str, delay: float = 0.0) -> None:
        self.timers.watch(key)
        self.queue.add(key, cause, delay)

    def _timer_due(self, key: Key) -> None:
        self.queue.add(key, "timer")

    # -- workers -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        self.metrics.max_concurrent.set(self.workers, controller=self.name)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"{self.name}-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        threading.Thread(target=self.timers.run, name=f"{self.name}-timers", daemon=True).start()

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def stuck(self, now: float, limit: float) -> int:
        """How many workers are stuck (busy over ``limit`` s) when all of them are."""
        busy = list(self._busy.values())
        if self._threads and len(busy) == len(self._threads) and all(now - s > limit for s in busy):
            return len(busy)
        return 0

    def stop(self, deadline: float) -> bool:
        """No new work; True when every worker finished by ``deadline`` (monotonic)."""
        self.queue.shutdown()
        self.timers.close()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            key, causes = item
            assert isinstance(key, Key)
            me = threading.current_thread().name
            self._busy[me] = time.monotonic()
            self.metrics.active_workers.inc(controller=self.name)
            result: Result | None = None
            guard: AbstractContextManager[object] = self._cap or nullcontext()
            try:
                with guard:
                    result = self.reconciler.process(key, causes)
            except Exception:
                log.exception("%s: reconcile crashed; retrying", key)
                result = Result(self.reconciler.failures.api_backoff.next(key), "retry")
            finally:
                self._busy.pop(me, None)
                self.metrics.active_workers.dec(controller=self.name)
            if self.reconciler.rt.cache.get(key.kind, key.namespace, key.name) is None:
                self.timers.drop(key)
            if result.hold is not None:
                threading.Thread(target=self._release, args=(key, result), daemon=True).start()
                continue
            if result.requeue_after is not None:
                self.queue.add(key, result.cause, result.requeue_after)
            self.queue.done(key)

    def _release(self, key: Key, result: Result) -> None:
        assert result.hold is not None
        result.hold.join()
        self.queue.add(key, result.cause, result.requeue_after or 0.0)
        self.queue.done(key)
