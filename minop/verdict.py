"""What a hook's outcome means for its object: the conditions to write and whether to retry.

Pure decisions, no I/O: the dispatcher writes the status, records the Event, logs and
counts. Retries are finite: a hook error or timeout is retried with backoff up to the
resource's ``max_tries`` and then stops as ``RetriesExhausted`` until the spec changes; a
``PermanentError`` stops at once; a ``TemporaryError`` is retried when it asks (its
``delay``) and shows as Progressing, not Degraded, because it is expected to heal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from minop import invoke as inv
from minop.conditions import DEGRADED, PROGRESSING, READY, Condition

# Degraded reasons that stop retries until the spec (generation) changes.
STICKY = {"RetriesExhausted", "PermanentError"}

_REASONS = {
    inv.TEMPORARY: "TemporaryError",
    inv.PERMANENT: "PermanentError",
    inv.TIMEOUT: "HookTimeout",
}


@dataclass(frozen=True)
class Verdict:
    reason: str  # of the Warning Event and of Degraded/Ready
    message: str
    conditions: list[Condition]
    delay: float | None  # retry in this many seconds; None: no retry from here


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
    out: inv.Outcome, tries: int, max_tries: int, final: bool, backoff: Callable[[], float]
) -> Verdict:
    """The verdict on try number ``tries`` that failed; ``final`` is False for timers,
    whose next tick is the retry. ``backoff`` is called only when a retry is scheduled."""
    err = out.error
    message = str(err) or type(err).__name__
    reason = _REASONS.get(out.kind, "HookError")
    delay: float | None = None
    if not final or out.kind == inv.PERMANENT:
        conds = [Condition(DEGRADED, True, reason, message)]
    elif tries >= max_tries:
        message = f"{reason}: {message} (gave up after {tries} tries)"
        reason = "RetriesExhausted"
        conds = [Condition(DEGRADED, True, reason, message)]
    else:
        wanted = getattr(err, "delay", None) if out.kind == inv.TEMPORARY else None
        backed_off = backoff()  # advances the backoff even when the hook names its delay
        delay = float(wanted) if wanted is not None else backed_off
        note = f"{message} (try {tries}/{max_tries}, next in {delay:g}s)"
        if out.kind == inv.TEMPORARY:
            conds = [
                Condition(PROGRESSING, True, "Retrying", note),
                Condition(DEGRADED, False, "Retrying", ""),
            ]
        else:
            conds = [Condition(DEGRADED, True, reason, note)]
    ready_reason = reason if reason != "TemporaryError" else "Retrying"
    conds.append(Condition(READY, False, ready_reason, message))
    return Verdict(reason, message, conds, delay)
