"""Timers: their own schedule, apart from update retries and the default conditions."""

import threading

import minop
from minop.controller import TimerSchedule
from minop.objects import Key

from .widget import KIND, Env

KEY = Key(KIND, "ns", "x")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_interval_is_a_minimum_even_when_a_timer_rides_an_earlier_queue_entry():
    """Defect 5: a timer cause merged into an earlier entry fired at once."""
    clock, fired = Clock(), []
    timers = TimerSchedule((minop.Timer(interval=30),), fired.append, clock)
    timers.watch(KEY)
    assert timers.due(KEY) == []  # a pass for another cause right away: no timer
    clock.now += 29.9
    assert timers.due(KEY) == []
    clock.now += 0.2
    assert timers.due(KEY) == ["timer"]
    assert timers.due(KEY) == []  # handed out once, re-armed a full interval later
    clock.now += 30
    assert timers.due(KEY) == ["timer"]


def test_a_timer_is_rearmed_when_handed_out_so_a_held_pass_does_not_lose_it():
    clock, fired = Clock(), []
    timers = TimerSchedule((minop.Timer(interval=5, initial_delay=1),), fired.append, clock)
    timers.watch(KEY)
    clock.now += 1
    assert timers.due(KEY) == ["timer"]  # that pass then holds (hook timed out)...
    clock.now += 5
    assert timers.due(KEY) == ["timer"]  # ...and the timer still comes due
    timers.drop(KEY)
    clock.now += 5
    assert timers.due(KEY) == []


class Flaky:
    def __init__(self):
        self.updates = 0
        self.ticks = 0

    @minop.hookimpl
    def minop_create(self, ctx):
        return None

    @minop.hookimpl
    def minop_update(self, ctx):
        self.updates += 1
        raise minop.TemporaryError("backend down")

    @minop.hookimpl
    def minop_timer(self, ctx):
        self.ticks += 1
        return {"ticks": self.ticks}


def ready(env):
    return next(c for c in env.status("x")["conditions"] if c["type"] == "Ready")


def test_a_successful_timer_neither_resets_update_retries_nor_claims_ready():
    """Defect 5: before, every timer success reset the failure count (retries never ran
    out) and wrote Ready=True while minop_update kept failing."""
    p = Flaky()
    env = Env(p, minop.Resource(kind=KIND, max_tries=3, timers=(minop.Timer(interval=60),)))
    env.create("x", {"size": 1})
    env.process("x")
    for _ in range(5):
        env.due = []
        env.retry("x", "child")  # update fails
        env.due = ["timer"]
        env.process("x", "timer")  # the timer succeeds in between
        assert ready(env)["status"] == "False"
    assert p.updates == 3  # gave up after max_tries, timers notwithstanding
    assert p.ticks == 5 and env.status("x")["ticks"] == 5
    degraded = next(c for c in env.status("x")["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "RetriesExhausted"


def test_a_timed_out_timer_hook_holds_its_key():
    """Defect 5: a timed-out timer got no hold, so two hooks could run on one key."""
    release = threading.Event()

    class Slow:
        @minop.hookimpl
        def minop_create(self, ctx):
            return None

        @minop.hookimpl
        def minop_timer(self, ctx):
            release.wait(5)

    resource = minop.Resource(kind=KIND, hook_timeout=0.2, timers=(minop.Timer(interval=1),))
    env = Env(Slow(), resource)
    env.create("x", {"size": 1})
    env.process("x")
    env.due = ["timer"]
    result = env.process("x", "timer")
    assert result.hold is not None and result.hold.is_alive()
    release.set()
    result.hold.join(2)
