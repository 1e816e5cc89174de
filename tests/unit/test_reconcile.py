"""Reconcile decisions, from the object alone: which hook runs, what is written, retries.

The interleavings that lost changes before the informer redesign (issue 13) are
forced here through ``minop.kit.testing.FakeReconciler``: its watch is delivered by hand.
"""

import json
import threading

import pytest

import minop
from minop.apierrors import ApiError
from minop.hookrun import Result
from minop.status import FINALIZER, LAST_HANDLED, LAST_HANDLED_FIELD

from .widget import KIND, Env


class Plugin:
    def __init__(self):
        self.calls = []
        self.fail_with = None
        self.during = None  # runs inside the hook: a user's edit while the hook works

    def _call(self, what, ctx):
        self.calls.append(what)
        if self.during:
            self.during()
        if self.fail_with:
            raise self.fail_with

    @minop.hookimpl
    def minop_create(self, ctx):
        self._call(("create", ctx.cause, ctx.meta.get("generation")), ctx)
        return {"phase": "made"}

    @minop.hookimpl
    def minop_update(self, ctx):
        self._call(("update", ctx.cause, [tuple(c.path) for c in ctx.diff]), ctx)
        return {"phase": "updated"}

    @minop.hookimpl
    def minop_delete(self, ctx):
        self.calls.append(("delete", ctx.meta["uid"]))


class FinalizingPlugin(Plugin):
    @minop.hookimpl
    def minop_finalize(self, ctx):
        self._call(("finalize",), ctx)


def cond(status, ctype):
    return next(c for c in status.get("conditions") or [] if c["type"] == ctype)


DELETED_AT = "2026-01-01T00:00:00Z"


def annotated(annotations):
    """Widget x at size 1 with ``annotations``, as minop 0.1 (or a user) left it."""
    meta = {"name": "x", "namespace": "ns", "annotations": annotations}
    return {
        "apiVersion": KIND.api_version,
        "kind": KIND.kind,
        "metadata": meta,
        "spec": {"size": 1},
    }


def test_create_records_spec_generation_and_conditions_in_one_status_write():
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    assert env.process("x") == Result()
    assert p.calls == [("create", "create", 1)]
    status = env.status("x")
    assert json.loads(status[LAST_HANDLED_FIELD]) == {"spec": {"size": 1}}
    assert status["phase"] == "made" and status["observedGeneration"] == 1
    assert cond(status, "Ready")["status"] == "True"
    assert len(env.writes("patch/status")) == 1 and not env.writes("patch/merge")
    assert FINALIZER not in env.live("x")["metadata"].get("finalizers", [])
    # the echo of our own write, and the same object again: nothing called, nothing written
    n = len(env.api.sent)
    env.process("x")
    env.deliver("x")
    env.process("x")
    assert len(p.calls) == 1 and len(env.api.sent) == n


def test_spec_edit_landing_while_minop_writes_status_is_never_lost():
    """Defect 1: the user edits spec (rv N) while minop patches status; the response
    (rv N+1) already carries the new spec. Neither the rv N event nor the echo may be
    judged 'nothing changed'."""
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    env.deliver("x")
    env.api.before_write = lambda path: (
        env.edit("x", {"size": 2}),
        setattr(env.api, "before_write", None),
    )
    env.process("x", "child")  # writes status: the response holds the user's size 2
    env.deliver("x")  # the watch: first the edit, then our write's echo
    env.process("x", "watch")
    assert p.calls[-1] == ("update", "spec", [("spec", "size")])
    assert json.loads(env.status("x")[LAST_HANDLED_FIELD]) == {"spec": {"size": 2}}
    assert env.status("x")["observedGeneration"] == 2


def test_observed_generation_is_the_generation_the_hook_was_given():
    """Defect 2: a spec edit during the hook must not be claimed as observed."""
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    p.during = lambda: env.edit("x", {"size": 5})  # generation 2 while the hook handles 1
    env.process("x")
    p.during = None
    status = env.status("x")
    assert status["observedGeneration"] == 1
    assert cond(status, "Ready")["observedGeneration"] == 1
    assert env.live("x")["metadata"]["generation"] == 2
    env.deliver("x")
    env.process("x")
    assert p.calls[-1] == ("update", "spec", [("spec", "size")])
    assert env.status("x")["observedGeneration"] == 2


def test_an_older_watch_event_never_hides_our_newer_write():
    """Defect 3: the create's status write (with the last-handled spec) is remembered;
    the watch then delivers the object as it was before it: create must not run again."""
    p = Plugin()
    env = Env(p)
    before = env.create("x", {"size": 1})
    env.process("x")
    env.deliver("x", before)  # an old event arrives late
    env.process("x")
    assert p.calls == [("create", "create", 1)]


def test_hooks_get_copies_so_a_mutating_hook_changes_nothing_cached():
    """Defect 4."""

    class Mutating(Plugin):
        @minop.hookimpl
        def minop_create(self, ctx):
            ctx.spec.setdefault("injected", True)
            ctx.meta["labels"] = {"oops": "1"}
            self.calls.append("create")

    p = Mutating()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    env.deliver("x")
    assert json.loads(env.status("x")[LAST_HANDLED_FIELD]) == {"spec": {"size": 1}}
    env.process("x")
    assert p.calls == ["create"]
    assert "labels" not in env.cache.get(KIND, "ns", "x")["metadata"]


def test_spec_change_calls_update_with_diff_and_status_only_change_does_not():
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    env.change("x", {"size": 2})
    env.process("x")
    assert p.calls[-1] == ("update", "spec", [("spec", "size")])
    live = env.live("x")
    live["status"]["extra"] = "edited"
    env.deliver("x", live)
    env.process("x")
    assert len(p.calls) == 2


def test_child_and_resync_causes_call_update_with_empty_diff():
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    env.process("x", "child")
    env.process("x", "resync")
    assert p.calls[1:] == [("update", "child", []), ("update", "resync", [])]


def test_hook_failure_never_records_the_spec_so_the_next_try_creates_again():
    p = Plugin()
    p.fail_with = RuntimeError("boom")
    env = Env(p)
    env.create("x", {"size": 1})
    result = env.process("x")
    assert result.requeue_after is not None
    status = env.status("x")
    assert LAST_HANDLED_FIELD not in status
    assert cond(status, "Degraded")["reason"] == "HookError"
    p.fail_with = None
    assert env.process("x", "watch").requeue_after == result.requeue_after  # the echo: wait
    assert len(p.calls) == 1
    env.retry("x", *result.causes)
    assert [c[0] for c in p.calls] == ["create", "create"]


def test_temporary_error_gives_up_after_max_tries_until_spec_changes():
    p = Plugin()
    p.fail_with = minop.TemporaryError("not yet")
    env = Env(p, minop.Resource(kind=KIND, max_tries=3))
    env.create("x", {"size": 1})
    for _ in range(5):
        env.retry("x", "retry")
    assert len(p.calls) == 3
    assert cond(env.status("x"), "Degraded")["reason"] == "RetriesExhausted"
    env.process("x", "child")
    assert len(p.calls) == 3  # sticky: children changing does not retry
    env.change("x", {"size": 2})
    p.fail_with = None
    env.process("x")
    assert len(p.calls) == 4


def test_permanent_error_is_called_once_and_not_requeued():
    p = Plugin()
    p.fail_with = minop.PermanentError("bad spec")
    env = Env(p)
    env.create("x", {"size": 1})
    assert env.process("x").requeue_after is None
    env.process("x", "resync")
    assert len(p.calls) == 1


def test_finalizer_added_before_create_in_one_pass_and_removed_after_finalize():
    p = FinalizingPlugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.set_metadata("x", finalizers=["other.io/keep"])
    first = env.process("x")
    # no requeue: the pass goes on from the patch's answer
    assert first.requeue_after is None and p.calls == [("create", "create", 1)]
    patch = env.writes("patch/json")[0]
    assert patch[0]["op"] == "test"  # guarded: another controller's finalizer is kept
    assert env.live("x")["metadata"]["finalizers"] == ["other.io/keep", FINALIZER]
    env.set_metadata("x", deletionTimestamp=DELETED_AT)
    env.process("x")
    assert p.calls[-1] == ("finalize",)
    assert env.live("x")["metadata"]["finalizers"] == ["other.io/keep"]


def test_finalize_retries_past_max_tries_with_degraded_and_a_warning():
    """Defect 10: the object cannot go without our finalizer, so never give up."""
    p = FinalizingPlugin()
    p.fail_with = RuntimeError("cloud API down")
    env = Env(p, minop.Resource(kind=KIND, max_tries=2))
    env.create("x", {"size": 1})
    env.set_metadata("x", finalizers=[FINALIZER], deletionTimestamp=DELETED_AT)
    delays = [env.retry("x", "finalize").requeue_after for _ in range(4)]
    assert all(d is not None and d > 0 for d in delays)
    assert len(p.calls) == 4
    assert cond(env.status("x"), "Degraded")["reason"] == "RetriesExhausted"
    assert any(b.get("type") == "Warning" for b in env.writes("event"))


def test_delete_hook_runs_once_from_the_tombstone_and_for_a_replaced_uid():
    p = Plugin()
    env = Env(p)
    obj = env.create("x", {"size": 1})
    env.process("x")
    # deleted and recreated under the same name before the worker ran (another uid)
    env.reconciler.deleted(env.key("x"), obj)
    env.remove("x")
    again = env.create("x", {"size": 3})
    env.process("x")
    env.process("x")
    assert p.calls[1:] == [("delete", obj["metadata"]["uid"]), ("create", "create", 1)]
    assert again["metadata"]["uid"] != obj["metadata"]["uid"]


def test_timeout_holds_the_key_until_the_hook_thread_ends():
    release = threading.Event()

    class Slow:
        @minop.hookimpl
        def minop_create(self, ctx):
            release.wait(5)

    env = Env(Slow(), minop.Resource(kind=KIND, hook_timeout=0.2))
    env.create("x", {"size": 1})
    result = env.process("x")
    assert result.hold is not None and result.hold.is_alive()
    assert cond(env.status("x"), "Degraded")["reason"] == "HookTimeout"
    release.set()
    result.hold.join(2)
    assert not result.hold.is_alive()


@pytest.mark.parametrize("bad", [None, "text"])
def test_mangled_last_handled_annotation_means_create_again(bad):
    p = Plugin()
    env = Env(p)
    env.api.put(KIND, annotated({LAST_HANDLED: bad} if bad else {}))
    env.deliver("x")
    env.process("x")
    assert [c[0] for c in p.calls] == ["create"]


def test_last_handled_annotation_of_minop_0_1_is_still_honoured():
    p = Plugin()
    env = Env(p)
    env.api.put(KIND, annotated({LAST_HANDLED: json.dumps({"spec": {"size": 1}})}))
    env.api.update(KIND, "ns", "x", lambda o: o.update(status={"observedGeneration": 1}))
    env.deliver("x")
    env.process("x")
    assert p.calls == []


def test_reverting_to_the_last_handled_spec_after_a_refused_change_reconciles():
    p = Plugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    env.change("x", {"size": 0})
    p.fail_with = minop.PermanentError("size 0")
    env.process("x")
    env.change("x", {"size": 1})  # back to the handled spec
    p.fail_with = None
    env.process("x")
    assert p.calls[-1] == ("update", "spec", [])
    status = env.status("x")
    assert cond(status, "Degraded")["status"] == "False"
    assert cond(status, "Ready")["status"] == "True"


def test_a_fenced_pass_is_requeued_not_dropped():
    """Defect 6: a briefly closed fence dropped the reconcile for good."""
    from minop.apierrors import WritesFenced

    p = Plugin()
    p.fail_with = WritesFenced("leadership in doubt")
    env = Env(p)
    env.create("x", {"size": 1})
    result = env.process("x")
    assert result.requeue_after is not None and result.requeue_after > 0
    p.fail_with = None
    env.retry("x", *result.causes)
    assert [c[0] for c in p.calls] == ["create", "create"]
    assert cond(env.status("x"), "Ready")["status"] == "True"


def test_api_error_in_a_hook_is_requeued_no_sooner_than_retry_after():
    """A hook's request still throttled after the client's own retries: the requeue waits
    for the server's Retry-After, not the (milliseconds) API backoff (found by the chaos
    throttling scenario)."""
    p = Plugin()
    p.fail_with = ApiError(429, "TooManyRequests", "slow down", retry_after=7.0)
    env = Env(p)
    env.create("x", {"size": 1})
    result = env.process("x")
    assert result.requeue_after is not None and result.requeue_after >= 7.0


def test_two_related_declarations_of_one_kind_are_both_tracked():
    sec = minop.Kind("", "v1", "Secret", "secrets")
    resource = minop.Resource(
        kind=KIND,
        related=(
            minop.Related(sec, lambda body: [body["spec"]["tls"]]),
            minop.Related(sec, lambda body: [body["spec"]["auth"]]),
        ),
    )
    env = Env(Plugin(), resource)
    env.create("x", {"tls": "cert", "auth": "pw"})
    env.process("x")
    assert env.cache.referrers(sec, "ns", "cert") == {env.key("x")}
    assert env.cache.referrers(sec, "ns", "pw") == {env.key("x")}


def test_finalize_runs_once_even_when_the_removal_response_is_not_newer_than_the_watch():
    """Found by the chaos suite: after a restart, a second pass on the cached object ran
    minop_finalize again and its removal answered 404 (retried as API trouble)."""
    p = FinalizingPlugin()
    env = Env(p)
    env.create("x", {"size": 1})
    env.set_metadata("x", finalizers=[FINALIZER], deletionTimestamp=DELETED_AT)
    cached = env.cache.get(KIND, "ns", "x")
    env.process("x")  # finalized; the API server deleted the object
    assert env.api.get(KIND, "ns", "x") is None
    env.deliver("x", cached)  # the watch still shows it, DELETED not delivered yet
    assert env.process("x") == Result()
    assert p.calls == [("finalize",)]
