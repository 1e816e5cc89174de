"""What a hook hands back or leaves behind is its own failure, never API trouble.

Issue 22: a status the API server refuses, or a result that is no JSON object, spun
every 5 ms (the API backoff, reset by the success just before); an object recreated
under the same name inherited the old one's tries; a hook mutating ``ctx.diff``
changed the cache; a ``PermanentError`` from ``minop_finalize`` blocked deletion.
"""

import datetime as dt
import json

import minop
from minop.status import FINALIZER, LAST_HANDLED_FIELD

from .widget import KIND, NS, Env

REFUSAL = (
    'Widget.test.minop.dev "x" is invalid: status.replicas: Invalid value: "string": '
    "status.replicas in body must be of type integer"
)


def refuse_non_integer_replicas(env: Env) -> None:
    """The CRD says ``status.replicas`` is an integer: the API server answers 422."""

    def validate(kind, obj):
        replicas = (obj.get("status") or {}).get("replicas")
        return REFUSAL if isinstance(replicas, str) else None

    env.api.validate = validate


def status_patches(env: Env) -> list[dict]:
    return [body["status"] for body in env.writes("patch/status")]


class Returns:
    def __init__(self, result):
        self.result = result
        self.calls = []

    @minop.hookimpl
    def minop_create(self, ctx):
        self.calls.append("create")
        return self.result

    @minop.hookimpl
    def minop_update(self, ctx):
        self.calls.append(ctx.cause)
        return self.result


def cond(env: Env, ctype: str) -> dict:
    return next(c for c in env.status("x")["conditions"] if c["type"] == ctype)


def test_a_status_the_api_server_refuses_is_the_hooks_failure_with_its_backoff():
    p = Returns({"replicas": "three"})
    env = Env(p, minop.Resource(kind=KIND, max_tries=3))
    refuse_non_integer_replicas(env)
    env.create("x", {"size": 1})
    first = env.process("x")
    assert first.requeue_after is not None and first.requeue_after >= 1.0  # never 5 ms
    degraded = cond(env, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidStatus"
    assert "status.replicas" in degraded["message"] and "type integer" in degraded["message"]
    assert LAST_HANDLED_FIELD not in env.status("x")  # not handled: tried again
    assert "replicas" not in env.status("x")
    env.deliver("x")
    assert env.process("x", "watch").requeue_after == first.requeue_after  # the echo waits
    assert p.calls == ["create"]
    delays = [env.retry("x", "retry").requeue_after for _ in range(3)]
    assert delays[0] == 2 * first.requeue_after and delays[-1] is None
    assert p.calls == ["create"] * 3  # max_tries, then it waits for a new spec
    assert cond(env, "Degraded")["reason"] == "RetriesExhausted"
    assert len([s for s in status_patches(env) if "replicas" in s]) == 3
    env.change("x", {"size": 2})
    p.result = {"replicas": 3}
    env.process("x")
    assert env.status("x")["replicas"] == 3 and cond(env, "Ready")["status"] == "True"


def test_a_result_that_is_not_json_is_the_hooks_failure_and_keeps_its_trigger():
    p = Returns(None)
    env = Env(p)
    env.create("x", {"size": 1})
    env.process("x")
    p.result = {"checked": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    result = env.process("x", "child")
    assert result.causes == {"child"} and result.requeue_after is not None
    assert result.requeue_after >= 1.0
    degraded = cond(env, "Degraded")
    assert degraded["reason"] == "InvalidStatus" and "'checked'" in degraded["message"]
    assert "datetime" in degraded["message"]
    p.result = {"checked": "2026-01-01"}
    env.retry("x", *result.causes)
    assert p.calls == ["create", "child", "child"]
    assert env.status("x")["checked"] == "2026-01-01"


def test_a_result_that_is_not_a_dict_is_the_hooks_failure():
    p = Returns(["not", "a", "dict"])
    env = Env(p)
    env.create("x", {"size": 1})
    result = env.process("x")
    assert result.requeue_after is not None and result.requeue_after >= 1.0
    assert "returned list" in cond(env, "Degraded")["message"]


class FailsOnce:
    def __init__(self):
        self.retries = []

    @minop.hookimpl
    def minop_create(self, ctx):
        self.retries.append(ctx.retry)
        if len(self.retries) == 1:
            raise RuntimeError("boom")


def test_an_object_recreated_under_the_same_name_starts_with_no_failures():
    p = FailsOnce()
    env = Env(p, minop.Resource(kind=KIND, max_tries=2))
    old = env.create("x", {"size": 1})
    assert env.process("x").requeue_after is not None  # failed: retry in 1 s
    # deleted and recreated (same spec, another uid) before the worker ran again
    env.reconciler.deleted(env.key("x"), old)
    env.remove("x")
    env.create("x", {"size": 1})
    assert env.process("x").requeue_after is None  # created at once, no inherited wait
    assert p.retries == [0, 0]
    assert cond(env, "Ready")["status"] == "True"


def test_a_hook_mutating_its_diff_changes_neither_the_cache_nor_the_handled_spec():
    class Mutating:
        @minop.hookimpl
        def minop_create(self, ctx):
            return None

        @minop.hookimpl
        def minop_update(self, ctx):
            for change in ctx.diff:
                change.new.append(99)
                change.old.append(98)
            ctx.new["spec"]["ports"].append(97)
            ctx.old["spec"]["ports"].append(96)

    env = Env(Mutating())
    env.create("x", {"ports": [1]})
    env.process("x")
    env.change("x", {"ports": [1, 2]})
    env.process("x")
    handled = json.loads(env.status("x")[LAST_HANDLED_FIELD])
    assert handled == {"spec": {"ports": [1, 2]}}
    assert env.cache.get(KIND, NS, "x")["spec"] == {"ports": [1, 2]}


def test_a_permanent_error_from_finalize_is_retried_until_it_goes():
    """The object cannot go without our finalizer, so finalize never gives up."""

    class Finalizer:
        def __init__(self):
            self.calls = 0

        @minop.hookimpl
        def minop_create(self, ctx):
            return None

        @minop.hookimpl
        def minop_finalize(self, ctx):
            self.calls += 1
            if self.calls < 4:
                raise minop.PermanentError("bucket not empty")

    p = Finalizer()
    env = Env(p, minop.Resource(kind=KIND, max_tries=2))
    env.create("x", {"size": 1})
    env.set_metadata("x", finalizers=[FINALIZER], deletionTimestamp="2026-01-01T00:00:00Z")
    delays = [env.retry("x", "finalize").requeue_after for _ in range(3)]
    assert all(d is not None and 1.0 <= d <= 300 for d in delays)
    assert cond(env, "Degraded")["reason"] == "PermanentError"
    warnings = [b for b in env.writes("event") if b.get("type") == "Warning"]
    assert len(warnings) == 3 and "bucket not empty" in warnings[0]["message"]
    env.retry("x", "finalize")
    assert p.calls == 4 and env.api.get(KIND, NS, "x") is None


def test_a_retry_keeps_every_trigger_of_its_pass():
    """A given-up object is tried again only for a referenced object's change: a retry
    of that pass kept only its first trigger (``child``) and was skipped."""

    class GivesUp(Returns):
        def __init__(self):
            super().__init__(None)
            self.fail = True

        @minop.hookimpl
        def minop_update(self, ctx):
            self.calls.append(ctx.cause)
            if self.fail:
                raise RuntimeError("no backend")
            return {"backend": "found"}

    p = GivesUp()
    env = Env(p, minop.Resource(kind=KIND, max_tries=1))
    env.create("x", {"size": 1})
    env.process("x")
    env.process("x", "child")
    assert cond(env, "Degraded")["reason"] == "RetriesExhausted"
    p.fail = False
    env.api.faults.append(503)  # the status write after the fixed hook
    result = env.process("x", "child", "related")  # the referenced Secret was fixed
    assert result.causes == {"child", "related"}
    env.retry("x", *result.causes)
    assert p.calls == ["create", "child", "child", "child"]
    assert env.status("x")["backend"] == "found" and cond(env, "Ready")["status"] == "True"
