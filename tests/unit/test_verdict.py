"""The verdict on a hook's outcome: finite retries, what users read in the conditions."""

from __future__ import annotations

import pytest

import minop
from minop import invoke as inv
from minop import verdict
from minop.conditions import Condition


def conds(v: verdict.Verdict) -> dict[str, tuple[bool, str]]:
    return {c.type: (c.status, c.reason) for c in v.conditions}


def never() -> float:
    raise AssertionError("no retry may be scheduled")


def test_success_keeps_the_hooks_conditions_and_fills_in_the_rest() -> None:
    mine = Condition("Ready", False, "Waiting", "pods starting")
    out = {c.type: (c.status, c.reason) for c in verdict.success([mine])}
    assert out == {
        "Ready": (False, "Waiting"),
        "Progressing": (False, "Reconciled"),
        "Degraded": (False, "Reconciled"),
    }


def test_a_temporary_error_is_progressing_and_retried_when_it_asks() -> None:
    out = inv.Outcome(inv.TEMPORARY, [], minop.TemporaryError("db warming up", delay=7))
    v = verdict.failure(out, tries=2, max_tries=5, final=True, backoff=lambda: 1.0)
    assert v.delay == 7.0 and v.reason == "TemporaryError"
    assert conds(v) == {
        "Progressing": (True, "Retrying"),
        "Degraded": (False, "Retrying"),
        "Ready": (False, "Retrying"),
    }
    assert "try 2/5, next in 7s" in v.conditions[0].message


def test_an_error_backs_off_and_gives_up_after_max_tries() -> None:
    out = inv.Outcome(inv.ERROR, [], RuntimeError("boom"))
    v = verdict.failure(out, tries=1, max_tries=3, final=True, backoff=lambda: 2.0)
    assert v.delay == 2.0 and conds(v)["Degraded"] == (True, "HookError")
    v = verdict.failure(out, tries=3, max_tries=3, final=True, backoff=never)
    assert v.delay is None and v.reason == "RetriesExhausted"
    assert v.reason in verdict.STICKY  # stays given up until the spec changes
    assert v.message == "HookError: boom (gave up after 3 tries)"


@pytest.mark.parametrize("final", [True, False])
def test_permanent_errors_and_failed_timers_schedule_no_retry(final: bool) -> None:
    out = inv.Outcome(inv.PERMANENT, [], minop.PermanentError("spec.port: must be > 0"))
    v = verdict.failure(out, tries=1, max_tries=3, final=final, backoff=never)
    assert v.delay is None and conds(v)["Degraded"] == (True, "PermanentError")
    timer = inv.Outcome(inv.TIMEOUT, [], TimeoutError("hook timed out"))
    v = verdict.failure(timer, tries=1, max_tries=3, final=False, backoff=never)
    assert v.delay is None and conds(v)["Ready"] == (False, "HookTimeout")
