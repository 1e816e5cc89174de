"""Calling one plugin's implementations of a hook, each in a thread with a timeout.

A Python thread cannot be killed, so a hook that outlives its timeout keeps
running; the caller gets the running call back and holds the object's key until
it ends, so no second worker ever acts on that object meanwhile.

The threads are kept between calls: starting one per call was a visible share of
a burst's CPU (py-spy). A thread whose call timed out rejoins the idle ones when
that call ends.
"""

from __future__ import annotations

import contextvars
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from minop.context import Context
from minop.metrics import Metrics
from minop.outcome import OK, TIMEOUT, Ending, classify
from minop.plugin.manager import PluginManager

IDLE_THREADS = 64  # kept at most; a busier moment starts more, which then end


class Call:
    """One hook call on a kept thread; ``join`` and ``is_alive`` as a Thread's."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        # the caller's context variables (the bucket sharding fences writes by)
        self._context = contextvars.copy_context()
        self.value: Any = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        try:
            self.value = self._context.run(self.fn)
        except BaseException as e:  # reported to the caller, whatever it is
            self.error = e

    def finish(self) -> None:
        self._done.set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class _Runner(threading.Thread):
    """Runs calls one after another; between them it waits among the idle."""

    idle: ClassVar[list[_Runner]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="hook", daemon=True)
        self.calls: queue.SimpleQueue[tuple[str, Call]] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            self.name, call = self.calls.get()
            call.run()
            self.name = "hook"
            # idle before the caller wakes, so its next call finds this thread again
            with self.lock:
                keep = len(self.idle) < IDLE_THREADS
                if keep:
                    self.idle.append(self)
            call.finish()
            del call  # an idle thread holds no hook's context
            if not keep:
                return

    @classmethod
    def start_call(cls, name: str, fn: Callable[[], Any]) -> Call:
        call = Call(fn)
        with cls.lock:
            runner = cls.idle.pop() if cls.idle else None
        if runner is None:
            runner = cls()
            runner.start()
        runner.calls.put((name, call))
        return call


def call_with_timeout(name: str, fn: Callable[[], Any], timeout: float) -> Call:
    """Run ``fn`` on a kept thread and wait at most ``timeout``: the call is still
    alive (``is_alive``) when it ran out of time."""
    call = _Runner.start_call(name, fn)
    call.join(timeout)
    return call


class Outcome(NamedTuple):
    """How the calls ended, what the implementations returned until then."""

    kind: Ending
    results: list[Any]
    error: BaseException | None = None
    running: Call | None = None  # a timed-out hook still running


def invoke(
    plugins: PluginManager,
    plugin: str,
    hook: str,
    ctx: Context,
    timeout: float,
    metrics: Metrics,
    starting: Callable[[float], None] = lambda seconds: None,
) -> Outcome:
    """Each implementation in turn; ``starting`` hears before each call how long it may
    take at most (a worker's liveness)."""
    results: list[Any] = []
    for impl in plugins.impls(hook, plugin):
        starting(timeout)
        start = time.monotonic()
        run = functools.partial(PluginManager.call_impl, impl, ctx=ctx)
        call = call_with_timeout(f"hook-{plugin}-{hook}", run, timeout)
        metrics.hook_duration.observe(time.monotonic() - start, plugin=plugin, hook=hook)
        if call.is_alive():
            metrics.hook_calls.inc(plugin=plugin, hook=hook, result=TIMEOUT)
            err = TimeoutError(f"{hook} of plugin {plugin} still running after {timeout:g}s")
            return Outcome(TIMEOUT, results, err, call)
        if call.error is not None:
            kind = classify(call.error)
            metrics.hook_calls.inc(plugin=plugin, hook=hook, result=kind)
            return Outcome(kind, results, call.error)
        metrics.hook_calls.inc(plugin=plugin, hook=hook, result="success")
        results.append(call.value)
    return Outcome(OK, results)
