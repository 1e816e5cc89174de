"""The verdict on a hook's outcome: finite retries, what users read in the conditions."""

from __future__ import annotations

import pytest

import minop
from minop import verdict
from minop.conditions import Condition
from minop.outcome import ERROR, INVALID, PERMANENT, TEMPORARY


def conds(v: verdict.Verdict) -> dict[str, tuple[bool, str]]:
    return {c.type: (c.status, c.reason) for c in v.conditions}


def test_success_keeps_the_hooks_conditions_and_fills_in_the_rest() -> None:
    mine = Condition("Ready", False, "Waiting", "pods starting")
    out = {c.type: (c.status, c.reason) for c in verdict.success([mine])}
    assert out == {
        "Ready": (False, "Waiting"),
        "Progressing": (False, "Reconciled"),
        "Degraded": (False, "Reconciled"),
    }


def test_a_temporary_error_is_progressing_and_retried_when_it_asks() -> None:
    error = minop.TemporaryError("db warming up", delay=7)
    v = verdict.failure(TEMPORARY, error, tries=2, max_tries=5, backoff=1.0)
    assert v.delay == 7.0 and v.reason == "TemporaryError"
    assert conds(v) == {
        "Progressing": (True, "Retrying"),
        "Degraded": (False, "Retrying"),
        "Ready": (False, "Retrying"),
    }
    assert "try 2/5, next in 7s" in v.conditions[0].message


def test_an_error_backs_off_and_gives_up_after_max_tries() -> None:
    error = RuntimeError("boom")
    v = verdict.failure(ERROR, error, tries=1, max_tries=3, backoff=2.0)
    assert v.delay == 2.0 and conds(v)["Degraded"] == (True, "HookError")
    v = verdict.failure(ERROR, error, tries=3, max_tries=3, backoff=4.0)
    assert v.delay is None and v.reason == "RetriesExhausted"
    assert v.reason in verdict.STICKY  # stays given up until the spec changes
    assert v.message == "HookError: boom (gave up after 3 tries)"


def test_a_permanent_error_schedules_no_retry() -> None:
    error = minop.PermanentError("spec.port: must be > 0")
    v = verdict.failure(PERMANENT, error, tries=1, max_tries=3, backoff=1.0)
    assert v.delay is None and conds(v)["Degraded"] == (True, "PermanentError")


@pytest.mark.parametrize("kind", [PERMANENT, ERROR])
def test_finalize_is_retried_whatever_it_raised_past_max_tries(kind) -> None:
    error = RuntimeError("bucket not empty")
    v = verdict.failure(kind, error, tries=5, max_tries=3, backoff=300.0, endless=True)
    assert v.delay == 300.0 and conds(v)["Degraded"][0] is True
    assert "next in 300s" in v.message


def test_a_refused_status_is_a_hook_error_with_its_own_reason() -> None:
    error = RuntimeError("status.replicas: must be integer")
    v = verdict.failure(INVALID, error, tries=1, max_tries=3, backoff=1.0)
    assert v.delay == 1.0 and conds(v)["Degraded"] == (True, "InvalidStatus")
