"""The real runtime (manager, informers, store, cache, controllers, queue, reconciler,
timers) over a ``FakeApi``, stepped by a test: a fake clock, worker passes, watch
deliveries and timer ticks run only when the test says so, on the test's thread.

Used by the model-based test (test_runtime_model.py). Only the seams are replaced:
each controller's queue hands out one key per step, and queue, timers and retry
schedule read the fake clock; everything they decide is the real code's.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Hashable
from typing import Any
from unittest import mock

import minop
from minop import kinds
from minop.controller import Controller
from minop.events import Recorder
from minop.informer import Informer
from minop.kit.fakeapi import FakeApi
from minop.kube import Obj
from minop.manager import Manager
from minop.objects import Key
from minop.plugin.manager import PluginManager
from minop.queue import WorkQueue
from minop.settings import Settings

WIDGETS = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")
CM = kinds.CONFIGMAP
NS = "ns"
HOOK_TIMEOUT = 0.2  # real seconds: a "slow" hook blocks until the test releases it
TIMER = minop.Timer(interval=60.0)


def validate(kind: minop.Kind, obj: Obj) -> str | None:
    """The CRD's schema, as the API server checks it: status.size is an integer."""
    size = (obj.get("status") or {}).get("size")
    if kind == WIDGETS and size is not None and not isinstance(size, int):
        return f"status.size: Invalid value: {size!r}: must be of type integer"
    return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Plugin:
    """Widgets with one ConfigMap child each; ``script`` holds the outcomes of the next
    create/update/finalize calls (default "ok"); records what the invariants need."""

    def __init__(self) -> None:
        self.script: deque[str] = deque()  # outcomes of the next create/update hooks
        self.timer_script: deque[str] = deque()  # of the next timer hooks
        self.active: set[tuple[int, str]] = set()  # (replica, uid) a hook runs on now
        self.deleted: Counter[str] = Counter()  # minop_delete calls per uid
        self.handled: dict[str, int] = {}  # uid -> newest generation a hook succeeded on
        self.last: dict[str, tuple[int, str]] = {}  # uid -> (generation, outcome) of create/update
        self.violations: list[str] = []
        self.release = threading.Event()  # lets "slow" hooks finish
        self.lock = threading.Lock()

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=WIDGETS, children=(CM,), timers=(TIMER,),
                               hook_timeout=HOOK_TIMEOUT, max_tries=10)]  # fmt: skip

    def _run(self, hook: str, ctx: minop.Context) -> dict[str, Any] | None:
        uid, gen = str(ctx.meta["uid"]), int(ctx.meta.get("generation") or 0)
        me = (id(ctx.runtime), uid)  # a deposed replica's hook may still run: another process
        with self.lock:
            if me in self.active:
                self.violations.append(
                    f"{hook} on {ctx.name} ({uid}) while another hook runs on it"
                )
            if hook != "minop_timer" and gen < self.handled.get(uid, 0):
                self.violations.append(
                    f"{hook} on {ctx.name} got generation {gen}, older than handled "
                    f"{self.handled[uid]}"
                )
            self.active.add(me)
            script = self.timer_script if hook == "minop_timer" else self.script
            outcome = script.popleft() if script else "ok"
        try:
            return self._act(hook, ctx, outcome)
        finally:
            with self.lock:
                self.active.discard(me)
                if hook in ("minop_create", "minop_update"):
                    self.last[uid] = (gen, outcome)
                    if outcome == "ok" and ctx.spec.get("statusOk", True):
                        self.handled[uid] = max(gen, self.handled.get(uid, 0))

    def _act(self, hook: str, ctx: minop.Context, outcome: str) -> dict[str, Any] | None:
        if outcome == "slow":
            self.release.wait(30)
        if outcome == "temporary":
            raise minop.TemporaryError("scripted", delay=1)
        if outcome == "permanent":
            raise minop.PermanentError("scripted")
        if outcome == "crash":
            raise RuntimeError("scripted crash")
        if hook == "minop_timer":
            return {"ticks": int(ctx.status.get("ticks") or 0) + 1}
        if hook == "minop_finalize":
            return None
        size = int(ctx.spec.get("size", 0))
        child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{ctx.name}-cm"}}
        ctx.apply({**child, "data": {"size": str(size)}})
        if outcome == "not-a-dict":
            return ["not", "a", "dict"]  # type: ignore[return-value]
        return {"size": size if ctx.spec.get("statusOk", True) else "three"}

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> dict[str, Any] | None:
        return self._run("minop_create", ctx)

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> dict[str, Any] | None:
        return self._run("minop_update", ctx)

    @minop.hookimpl
    def minop_finalize(self, ctx: minop.Context) -> None:
        self._run("minop_finalize", ctx)

    @minop.hookimpl
    def minop_timer(self, ctx: minop.Context) -> dict[str, Any] | None:
        return self._run("minop_timer", ctx)

    @minop.hookimpl
    def minop_delete(self, ctx: minop.Context) -> None:
        with self.lock:
            self.deleted[str(ctx.meta["uid"])] += 1


class StepQueue:
    """A controller's real queue, handing its worker one due key per ``step``."""

    def __init__(self, queue: WorkQueue, taken: Callable[[Hashable], None]) -> None:
        self.q = queue
        self.taken = taken  # told of each key handed out, before its pass
        self.armed = False
        self.took: tuple[Hashable, set[str]] | None = None
        self.idle = threading.Condition()

    def get(self, timeout: float | None = None) -> tuple[Hashable, set[str]] | None:
        if not self.armed:
            return None
        self.armed = False
        self.took = self.q.get(timeout=0)
        if self.took is not None:
            self.taken(self.took[0])
        return self.took

    def done(self, key: Hashable) -> None:
        self.q.done(key)
        with self.idle:
            self.idle.notify_all()

    def next_due(self) -> float | None:
        with self.q._cond:
            return min((e.due for e in self.q._pending.values()), default=None)

    def busy(self) -> bool:
        with self.q._cond:
            return bool(self.q._processing)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.q, name)


class Replica:
    """One operator process: a Manager whose informers and workers the test steps.
    ``leading`` is its write fence, as leader election sets it."""

    def __init__(self, api: FakeApi, plugin: Plugin, clock: Clock, name: str, leading: bool):
        self.api, self.clock, self.name, self.leading = api, clock, name, leading
        kube = api.kube(agent=name)
        kube.fence = lambda: self.leading
        pm = PluginManager()
        pm.register(plugin, "p")
        settings = Settings(workers=1, health_addr="0", metrics_addr="0")
        self.m = Manager(settings, pm, kube, clock=clock)
        self.cursor: dict[minop.Kind, int] = {}  # watch_log position delivered so far
        self.stirred: set[Hashable] = set()  # keys an event queued since their last pass
        self.passed: dict[Hashable, float] = {}  # fake time of each key's last pass
        self.hasty: list[str] = []  # passes sooner than the backoff floor, with no event

        def synced(m: Manager) -> None:
            for c in m.controllers.values():
                self._step_controller(c)
            for informer in m.cache.informers():
                self._resume_after_lists(informer)
                informer.relist()

        noop = lambda self: None  # noqa: E731
        with (
            mock.patch.object(Informer, "start", noop),
            mock.patch.object(Recorder, "start", noop),  # Events are sent at once
            mock.patch.object(Manager, "_wait_synced", synced),
        ):
            self.m.start()
        self.controller = self.m.controllers[WIDGETS]
        self.floor = self.controller.reconciler.retries.api_backoff.base
        enqueue, fire = self.controller.enqueue, self.controller.timers._fire

        def stir(key: Key, cause: str, delay: float = 0.0) -> None:
            self.stirred.add(key)
            enqueue(key, cause, delay)

        def timer_due(key: Key) -> None:
            self.stirred.add(key)
            fire(key)

        # events (watch, resync) and due timers reach the controller through these; a
        # pass's own requeue does not
        self.controller.enqueue = stir  # type: ignore[method-assign]
        self.controller.timers._fire = timer_due
        if leading:
            self.takeover()

    def _resume_after_lists(self, informer: Informer) -> None:
        """The watch resumes after each of the informer's lists (a 410's, a takeover's)."""
        relist = informer._relist

        def listed() -> None:
            self.cursor[informer.kind] = len(self.api.watch_log[informer.kind])
            relist()

        informer._relist = listed  # type: ignore[method-assign]

    def _step_controller(self, c: Controller) -> None:
        c.queue = StepQueue(c.queue, self._taken)  # type: ignore[assignment]

    def _taken(self, key: Hashable) -> None:
        """A key's pass starts: sooner than the backoff floor after its last one only
        when an event (or a timer) queued it since."""
        now, last = self.clock(), self.passed.get(key)
        # (the floor less a rounding error: the fake clock is a float sum of steps)
        if last is not None and key not in self.stirred and now - last < self.floor - 1e-9:
            self.hasty.append(f"{key} again after {now - last:.4f}s with no new event")
        self.stirred.discard(key)
        self.passed[key] = now

    @property
    def queue(self) -> StepQueue:
        return self.controller.queue  # type: ignore[return-value]

    def informer(self, kind: minop.Kind) -> Informer:
        return next(i for i in self.m.cache.informers() if i.kind == kind)

    # -- steps --------------------------------------------------------------------------

    def relist(self, kind: minop.Kind) -> None:
        """A 410 Gone: the informer lists again; the watch resumes after the list."""
        self.informer(kind).relist()

    def pending(self, kind: minop.Kind) -> int:
        return len(self.api.watch_log[kind]) - self.cursor.get(kind, 0)

    def deliver(self, kind: minop.Kind, again: bool = False) -> bool:
        """The watch delivers its next event (``again``: the last one a second time)."""
        at = self.cursor.get(kind, 0)
        if again:
            at -= 1
        if at < 0 or at >= len(self.api.watch_log[kind]):
            return False
        etype, obj = self.api.watch_log[kind][at]
        informer = self.informer(kind)
        if informer.label_selector and etype != "DELETED":
            labels = obj["metadata"].get("labels") or {}
            k, _, v = informer.label_selector.partition("=")
            if labels.get(k) != v:
                self.cursor[kind] = at + 1
                return True
        informer._apply({"type": etype, "object": json.loads(json.dumps(obj))})
        self.cursor[kind] = at + 1
        return True

    def work(self) -> bool:
        """One worker pass over a due key, if any (and timers that came due)."""
        self.controller.timers.fire_due()
        self.queue.armed = True
        self.queue.took = None
        self.controller._work()
        return self.queue.took is not None

    def next_due(self) -> float | None:
        """Fake time of the next queued key or timer."""
        timer = self.controller.timers.fire_due()
        due = [t for t in (self.queue.next_due(), timer and self.clock() + timer) if t]
        return min(due, default=None)

    def wait_held(self) -> None:
        """Timed-out hooks were released: wait until their keys are free again."""
        with self.queue.idle:
            ok = self.queue.idle.wait_for(lambda: not self.queue.busy(), timeout=10)
        assert ok, "a released hook did not free its key"

    def takeover(self) -> None:
        """Elected: the fence opens and the manager takes over and starts its
        controllers (whose workers are this test's steps)."""
        self.leading = True
        with mock.patch.object(Controller, "start", lambda self: None):
            self.m.take_over()

    def stop(self) -> None:
        """The process ends (its resync thread with it)."""
        self.leading = False
        self.m.stopping.set()
