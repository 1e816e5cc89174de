"""A controller per resource: its own work queue, worker pool and timer schedule.

As in controller-runtime, one slow plugin cannot starve another: each resource
has ``workers`` threads of its own (a process-wide cap, when set, bounds them
all together). A key is never handed to two workers at once, and a hook that
outlived its timeout keeps its key busy until its thread ends. Timers live in
their own schedule: a due timer queues its key like any cause and is re-armed
``interval`` after it ran, so the interval is a minimum, never a maximum.

Liveness: a pass is a chain of bounded steps (a hook call: the hook timeout; one API
request of ours: the client's own bound over all its retries), and a worker reports each
step as it starts. A worker is stuck only when its current step has run past its bound
(and ``GRACE``): a long retry or backoff is no hang, a request or lock that never
returns is.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from minop.hookrun import Binding, Result, retry_causes
from minop.objects import Key, Obj
from minop.plugin.manager import PluginManager
from minop.queue import WorkQueue
from minop.reconcile import Reconciler
from minop.resource import Timer
from minop.runtime import Runtime

log = logging.getLogger("minop.controller")

GRACE = 60.0  # seconds a step may overrun its bound (scheduling, GC) before it is a hang


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

    def again(self, key: Key, names: tuple[str, ...], delay: float) -> None:
        """Timers handed out (and re-armed) that their pass could not run: due again in
        ``delay`` s, not a whole interval later."""
        at = self._clock() + delay
        with self._cond:
            for name in names:
                if (key, name) in self._due:  # not dropped meanwhile
                    self._arm(key, name, at)

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
                self._cond.wait(self.fire_due())

    def fire_due(self) -> float | None:
        """Queue the keys whose timers are due; seconds until the next one (None: none).
        ``run``'s loop, and a test's step when it drives the clock."""
        with self._cond:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                at, _, key, name = heapq.heappop(self._heap)
                if self._due.get((key, name)) == at:  # else re-armed or dropped since
                    self._fire(key)
            return self._heap[0][0] - now if self._heap else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Controller:
    """One resource's queue, timer schedule, reconciler and workers, built together."""

    def __init__(
        self,
        runtime: Runtime,
        plugins: PluginManager,
        binding: Binding,
        workers: int,
        cap: threading.BoundedSemaphore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.binding = binding
        self.name = binding.resource.kind.kind.lower()
        self.metrics = runtime.metrics
        self.cache = runtime.cache
        # an event on the object itself (a user's edit) before its children's events
        self.queue = WorkQueue(self.name, self.metrics, clock, urgent=frozenset({"watch"}))
        self.timers = TimerSchedule(binding.resource.timers, self._timer_due, clock)
        self.reconciler = Reconciler(
            runtime, plugins, binding, self.timers.due, progress=self._progress, clock=clock
        )
        self.workers = workers
        self._cap = cap
        self._threads: list[threading.Thread] = []
        self._busy: dict[str, float] = {}  # worker -> when its current step must be over
        # sharding (minop.sharding): whether this replica works on a key now, and the
        # scope its pass runs in (writes fenced by the key's bucket)
        self.admit: Callable[[Key, Obj | None], bool] = lambda key, obj: True
        self.scope: Callable[[Key], AbstractContextManager[object]] = lambda key: nullcontext()

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

    def stuck(self, now: float) -> int:
        """How many workers are stuck (a step past its bound) when all of them are."""
        deadlines = list(self._busy.values())
        if (
            self._threads
            and len(deadlines) == len(self._threads)
            and all(now > d + GRACE for d in deadlines)
        ):
            return len(deadlines)
        return 0

    def stop(self, deadline: float) -> bool:
        """No new work; True when every worker finished by ``deadline`` (monotonic)."""
        self.queue.shutdown()
        self.timers.close()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            key, causes = item
            assert isinstance(key, Key)
            if not self.admit(key, None):  # its bucket moved to another replica
                self.queue.done(key)
                continue
            result = self._pass(key, causes)
            if self.cache.get(key.kind, key.namespace, key.name) is None:
                self.timers.drop(key)
            if result.hold is not None:
                threading.Thread(target=self._release, args=(key, result), daemon=True).start()
                continue
            self.timers.again(key, result.unrun, result.requeue_after or 0.0)
            self._requeue(key, result, result.requeue_after)
            self.queue.done(key)

    def _pass(self, key: Key, causes: set[str]) -> Result:
        me = threading.current_thread().name
        with self._cap or nullcontext(), self.scope(key):  # the cap's wait is no step of ours
            self._busy[me] = time.monotonic()
            self.metrics.active_workers.inc(controller=self.name)
            try:
                return self.reconciler.process(key, causes)
            except Exception:
                log.exception("%s: reconcile crashed; retrying", key)
                delay = self.reconciler.retries.api_delay(key, None)
                return Result(delay, retry_causes(causes))
            finally:
                self._busy.pop(me, None)
                self.metrics.active_workers.dec(controller=self.name)

    def _progress(self, seconds: float) -> None:
        self._busy[threading.current_thread().name] = time.monotonic() + seconds

    def _requeue(self, key: Key, result: Result, delay: float | None) -> None:
        if delay is not None:
            for cause in result.causes:
                self.queue.add(key, cause, delay)

    def _release(self, key: Key, result: Result) -> None:
        assert result.hold is not None
        result.hold.join()
        self.timers.again(key, result.unrun, 0.0)  # skipped for the hold: due right after it
        # events that came meanwhile wait in the queue's dirty set; only a failure's own
        # backoff (counted from now) queues the key again
        self._requeue(key, result, result.requeue_after)
        self.queue.done(key)
