"""What a hook's outcome means for its object: the conditions to write and whether to retry.

Pure decisions over an ``Ending``, no I/O and no state: the reconciler writes the
status and advances the backoff, ``report`` records the Event, logs and counts. Retries
are finite: a hook error or timeout is retried with backoff up to the resource's
``max_tries`` and then stops as ``RetriesExhausted`` until the spec changes; a
``PermanentError`` stops at once; a ``TemporaryError`` is retried when it asks (its
``delay``) and shows as Progressing, not Degraded, because it is expected to heal. A
status the hook returned but the API server refused counts as a hook error. Finalizers
are the exception: the object cannot go without ours, so finalize is retried for as long
as it takes, at the capped backoff past the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minop.conditions import DEGRADED, PROGRESSING, READY, Condition
from minop.outcome import INVALID, PERMANENT, TEMPORARY, TIMEOUT, Ending

# Degraded reasons that stop retries until the spec (generation) changes.
STICKY = {"RetriesExhausted", "PermanentError"}

_REASONS = {
    TEMPORARY: "TemporaryError",
    PERMANENT: "PermanentError",
    TIMEOUT: "HookTimeout",
    INVALID: "InvalidStatus",
}


@dataclass(frozen=True)
class Verdict:
    reason: str  # of the Warning Event and of Degraded/Ready
    message: str
    conditions: list[Condition]
    delay: float | None  # retry in this many seconds (a backoff step); None: no retry


def success(given: Sequence[Condition]) -> list[Condition]:
    """The hook's own conditions, completed with the defaults of a clean reconcile."""
    types = {c.type for c in given}
    defaults = (
        Condition(READY, True, "Reconciled", "reconciled successfully"),
        Condition(PROGRESSING, False, "Reconciled", ""),
        Condition(DEGRADED, False, "Reconciled", ""),
    )
    return [*given, *(c for c in defaults if c.type not in types)]


def failure(
    ending: Ending,
    error: BaseException | None,
    tries: int,
    max_tries: int,
    backoff: float,
    *,
    endless: bool = False,
) -> Verdict:
    """The verdict on try number ``tries`` that failed; ``backoff`` is the hook
    backoff's next delay, ``endless`` for finalize, retried whatever happens. A
    verdict with a ``delay`` uses up that backoff step (the caller advances it),
    even when a TemporaryError names its own delay."""
    message = str(error) or type(error).__name__
    reason = _REASONS.get(ending, "HookError")
    delay: float | None = None
    if ending == PERMANENT:
        if endless:
            delay = backoff
            message = f"{message} (retrying, next in {delay:g}s)"
        conds = [Condition(DEGRADED, True, reason, message)]
    elif tries >= max_tries:
        if endless:
            delay = backoff
            message = f"{reason}: {message} ({tries} tries, still retrying, next in {delay:g}s)"
        else:
            message = f"{reason}: {message} (gave up after {tries} tries)"
        reason = "RetriesExhausted"
        conds = [Condition(DEGRADED, True, reason, message)]
    else:
        wanted = getattr(error, "delay", None) if ending == TEMPORARY else None
        delay = float(wanted) if wanted is not None else backoff
        note = f"{message} (try {tries}/{max_tries}, next in {delay:g}s)"
        if ending == TEMPORARY:
            conds = [
                Condition(PROGRESSING, True, "Retrying", note),
                Condition(DEGRADED, False, "Retrying", ""),
            ]
        else:
            conds = [Condition(DEGRADED, True, reason, note)]
    ready_reason = reason if reason != "TemporaryError" else "Retrying"
    conds.append(Condition(READY, False, ready_reason, message))
    return Verdict(reason, message, conds, delay)
