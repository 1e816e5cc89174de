"""Plugin isolation: a broken plugin is reported and skipped, never fatal."""

import threading

import pytest

import minop
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.settings import Settings

KIND = minop.Kind("test.minop.dev", "v1", "Good", "goods")


class Good:
    @minop.hookimpl
    def minop_resources(self):
        return [minop.Resource(kind=KIND)]


class BadStartup:
    @minop.hookimpl
    def minop_startup(self, settings):
        raise RuntimeError("no config")

    @minop.hookimpl
    def minop_resources(self):
        return [minop.Resource(kind=minop.Kind("test.minop.dev", "v1", "Bad", "bads"))]


class BadResources:
    @minop.hookimpl
    def minop_resources(self):
        return ["not a resource"]


def test_failing_startup_or_resources_disables_only_that_plugin():
    pm = PluginManager()
    pm.register(Good(), "good")
    pm.register(BadStartup(), "bad-startup")
    pm.register(BadResources(), "bad-resources")
    pm.startup(Settings())
    assert [(n, r.kind.kind) for n, r in pm.resources()] == [("good", "Good")]
    assert "startup failed" in pm.plugins["bad-startup"].error
    assert "not Resource" in pm.plugins["bad-resources"].error


def test_two_plugins_claiming_one_kind_is_refused():
    pm = PluginManager()
    pm.register(Good(), "a")
    pm.register(Good(), "b")
    with pytest.raises(ValueError, match="claimed by plugins 'a' and 'b'"):
        pm.startup(Settings())


def test_allow_list_names_plugins_that_are_not_installed():
    pm = PluginManager(allow=["surely-not-installed"])
    pm.load_entry_points()
    assert "not installed" in pm.plugins["surely-not-installed"].error


def test_hooks_are_called_on_their_own_plugin_only_and_a_hang_times_out():
    from minop import invoke

    calls = []
    stop = threading.Event()

    class A:
        @minop.hookimpl
        def minop_update(self, ctx):
            calls.append("a")

    class Hangs:
        @minop.hookimpl
        def minop_update(self, ctx):
            stop.wait(5)

    pm = PluginManager()
    pm.register(A(), "a")
    pm.register(Hangs(), "hangs")
    m = Metrics()
    out = invoke.invoke(pm, "a", "minop_update", ctx=None, timeout=1, metrics=m)
    assert out.kind == invoke.OK and calls == ["a"]
    out = invoke.invoke(pm, "hangs", "minop_update", ctx=None, timeout=0.1, metrics=m)
    assert out.kind == invoke.TIMEOUT and out.running.is_alive()
    assert calls == ["a"]
    assert m.hook_calls.value(plugin="hangs", hook="minop_update", result="timeout") == 1
    stop.set()


def test_hook_threads_are_kept_between_calls_but_never_one_whose_call_still_runs():
    from minop import invoke

    seen: list[threading.Thread] = []
    release = threading.Event()

    class P:
        @minop.hookimpl
        def minop_update(self, ctx):
            seen.append(threading.current_thread())
            if ctx == "slow":
                release.wait(5)

    pm = PluginManager()
    pm.register(P(), "p")
    m = Metrics()
    for _ in range(20):
        assert invoke.invoke(pm, "p", "minop_update", ctx=None, timeout=1, metrics=m).kind == "ok"
    # kept, not one per call (a hook thread of another test ending meanwhile may serve)
    assert len(set(seen)) <= 2
    slow = invoke.invoke(pm, "p", "minop_update", ctx="slow", timeout=0.05, metrics=m)
    assert slow.kind == invoke.TIMEOUT and slow.running is not None
    other = invoke.invoke(pm, "p", "minop_update", ctx=None, timeout=1, metrics=m)
    assert other.kind == "ok" and seen[-1] != seen[-2]  # the slow call's thread is busy
    release.set()
    slow.running.join(1)
    assert not slow.running.is_alive()
