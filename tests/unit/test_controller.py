"""The controller's workers: what a pass's outcome does to its key, timers and liveness.

Real worker threads over ``minop.kit.testing.FakeReconciler``; every wait is on an event the pass
itself sets, never a sleep.
"""

import threading
import time
from collections.abc import Iterator

import pytest

import minop
from minop.apierrors import WritesFenced
from minop.controller import Controller

from .widget import KIND, Env

WAIT = 5.0  # seconds an expected event may take at most; passing runs take milliseconds


class Plugin:
    def __init__(self):
        self.updates: list[str] = []
        self.updated = threading.Semaphore(0)
        self.update_error: Exception | None = None
        self.timer_errors: dict[str, Exception] = {}
        self.timer_ran = {"a": threading.Event(), "b": threading.Event()}
        self.release = threading.Event()
        self.blocking = False  # minop_update waits for release

    @minop.hookimpl
    def minop_create(self, ctx):
        return None

    @minop.hookimpl
    def minop_update(self, ctx):
        self.updates.append(ctx.cause)
        self.updated.release()
        if self.blocking:
            self.release.wait(WAIT)
        if self.update_error is not None:
            raise self.update_error
        return {"updates": len(self.updates)}  # a status write each time

    @minop.hookimpl
    def minop_timer(self, ctx):
        self.timer_ran[ctx.timer].set()
        if ctx.timer == "a":
            self.release.wait(WAIT)  # past the hook timeout: the key is held
        if ctx.timer in self.timer_errors:
            raise self.timer_errors[ctx.timer]


@pytest.fixture
def running() -> Iterator[list[Controller]]:
    started: list[Controller] = []
    yield started
    for c in started:
        c.stop(time.monotonic() + WAIT)


def start(env: Env, started: list[Controller]) -> Controller:
    c = Controller(env.rt, env.plugins, env.binding, workers=1)
    c.start()
    started.append(c)
    return c


def test_a_crashed_pass_is_retried_with_its_trigger(running):
    """Issue 22: the crash path requeued with cause ``retry``, and a retry without a
    trigger is a pass that does nothing: the child's change was lost."""
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    crashes = [RuntimeError("a bug in our own client")]

    def crash_once():
        if crashes:
            raise crashes.pop()

    env.api.before_write = lambda path: crash_once()  # the status write after the update
    c = start(env, running)
    c.enqueue(env.key("x"), "child")
    assert p.updated.acquire(timeout=WAIT) and p.updated.acquire(timeout=WAIT)
    assert p.updates == ["child", "child"]


def test_a_fenced_timer_keeps_the_pending_update_retry():
    """Issue 22: the timer's result replaced the update's retry: the failed child update
    waited for the 10 h resync although its status said "next in 30s"."""
    p = Plugin()
    p.update_error = minop.TemporaryError("backend down", delay=30)
    p.timer_errors["b"] = WritesFenced("leadership in doubt")
    resource = minop.Resource(kind=KIND, timers=(minop.Timer(60, name="b"),))
    env = Env(p, resource)
    env.create("x", {"size": 1})
    env.process("x")
    env.due = ["b"]
    result = env.process("x", "child")
    assert result.causes == {"child"} and result.requeue_after == 2.0  # the fence's, sooner
    env.due = []
    p.update_error = None
    env.retry("x", *result.causes)
    assert p.updates == ["child", "child"]


def test_a_held_timer_does_not_cost_the_other_due_timers_their_tick(running):
    """Issue 22: when one due timer timed out (holding the key), the others, already
    re-armed, were skipped for a whole interval."""
    p = Plugin()
    timers = (minop.Timer(3600, 0.001, name="a"), minop.Timer(3600, 0.001, name="b"))
    env = Env(p, minop.Resource(kind=KIND, hook_timeout=0.2, timers=timers))
    env.create("x", {"size": 1})
    timed_out = threading.Event()
    create = env.rt.kube.create

    def event(kind, body, *args, **kw):
        if body.get("reason") == "TimerFailed":
            timed_out.set()
        return create(kind, body, *args, **kw)

    env.rt.kube.create = event  # type: ignore[method-assign]
    c = start(env, running)
    c.enqueue(env.key("x"), "watch")
    assert timed_out.wait(WAIT)  # a's hook outlived its timeout: the key is held
    assert not p.timer_ran["b"].is_set()
    p.release.set()
    assert p.timer_ran["b"].wait(WAIT)


def test_a_worker_in_a_slow_write_is_not_stuck_but_a_hung_one_is(running):
    """Issue 22: a blackhole outage (hook timeout 60 s, then a status write retried
    5 x 30 s) outlasted the 180 s limit from the start of the pass. A step is stuck only
    past its own bound: a request's is the client's longest (5 tries of 30 s and the
    Retry-After waits between them here)."""
    p = Plugin()
    env = Env(p, retries=5, timeout=30.0)
    env.create("x", {"size": 1})
    env.process("x")
    writing, release = threading.Event(), threading.Event()
    env.api.before_write = lambda path: (writing.set(), release.wait(WAIT))
    c = start(env, running)
    c.enqueue(env.key("x"), "child")
    bound = env.rt.kube.longest_request
    assert bound > 180  # retrying through an outage: past the old limit
    try:
        assert writing.wait(WAIT)
        now = time.monotonic()
        # the write began at most 10 s ago (a loaded machine): its bound, grace 60 s
        assert c.stuck(now + bound + 50) == 0
        assert c.stuck(now + bound + 61) == 1  # a write that never returns
    finally:
        release.set()
    assert p.updated.acquire(timeout=WAIT)


def test_a_worker_in_a_hook_is_stuck_only_past_the_hook_timeout(running):
    p = Plugin()
    env = Env(p, minop.Resource(kind=KIND, hook_timeout=30))
    env.create("x", {"size": 1})
    env.process("x")
    p.blocking = True
    c = start(env, running)
    c.enqueue(env.key("x"), "child")
    try:
        assert p.updated.acquire(timeout=WAIT)  # in the hook now
        now = time.monotonic()
        assert c.stuck(now + 80) == 0  # hook timeout 30 s, grace 60 s
        assert c.stuck(now + 91) == 1
    finally:
        p.release.set()
