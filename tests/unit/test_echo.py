"""The echo of our own write (the watch event whose resourceVersion is the response we
recorded) re-runs no hook: the pass that wrote it already saw it (issue 28). Counted as a
user sees it, in the hook and reconcile metrics of the real runtime over a FakeApi."""

from __future__ import annotations

from minop.kit.fakeapi import FakeApi

from .model_runtime import CM, NS, WIDGETS, Clock, Plugin, Replica


def hook_calls(r: Replica) -> float:
    calls = r.m.metrics.hook_calls
    hooks = ("minop_create", "minop_update")
    return sum(calls.value(plugin="p", hook=h, result="success") for h in hooks)


def settle(r: Replica) -> None:
    """Every watch event delivered and every key queued within a second (a child's event
    waits out the batching window) worked off; timers and resyncs stay ahead."""
    while True:
        delivered = any([r.deliver(WIDGETS), r.deliver(CM)])
        if delivered or r.work():
            continue
        due = r.queue.next_due()
        if due is None or due > r.clock() + 1:
            return
        r.clock.now = max(r.clock.now, due)


def test_the_echo_of_our_own_writes_runs_no_hook_but_a_change_to_a_child_does() -> None:
    api = FakeApi([WIDGETS, CM])
    r = Replica(api, Plugin(), Clock(), "r0", leading=True)
    try:
        body = {"apiVersion": WIDGETS.api_version, "kind": WIDGETS.kind,
                "metadata": {"name": "a", "namespace": NS}, "spec": {"size": 1}}  # fmt: skip
        api.put(WIDGETS, body)
        settle(r)
        # created: the ConfigMap child applied, the status written; both echoes delivered
        assert api.get(CM, NS, "a-cm") is not None
        assert api.get(WIDGETS, NS, "a")["status"]["size"] == 1
        assert hook_calls(r) == 1
        # someone else deletes the child: that event is no echo, the hook runs again
        api.remove(CM, NS, "a-cm")
        settle(r)
        assert hook_calls(r) == 2
        assert api.get(CM, NS, "a-cm") is not None
    finally:
        r.stop()
