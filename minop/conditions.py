"""Status conditions (Ready / Progressing / Degraded) as ``kubectl wait`` reads them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

READY, PROGRESSING, DEGRADED = "Ready", "Progressing", "Degraded"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""

    def __post_init__(self) -> None:
        if not self.reason or not self.reason[0].isupper() or not self.reason.isalnum():
            raise ValueError(
                f"condition {self.type}: reason must be CamelCase, got {self.reason!r}"
            )


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    current: list[Mapping[str, Any]] | None,
    updates: list[Condition],
    generation: int | None,
    stamp: str | None = None,
) -> list[dict[str, Any]]:
    """Apply ``updates`` to ``current``; lastTransitionTime moves only when status flips."""
    by_type = {c["type"]: dict(c) for c in current or []}
    stamp = stamp or now()
    for u in updates:
        status = "True" if u.status else "False"
        old = by_type.get(u.type)
        new: dict[str, Any] = {
            "type": u.type,
            "status": status,
            "reason": u.reason,
            "message": u.message[:1024],
            "lastTransitionTime": stamp,
        }
        if generation is not None:
            new["observedGeneration"] = generation
        if old is not None and old.get("status") == status:
            new["lastTransitionTime"] = old.get("lastTransitionTime", stamp)
        by_type[u.type] = new
    order = {READY: 0, PROGRESSING: 1, DEGRADED: 2}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 3), c["type"]))


def find(status: Mapping[str, Any] | None, ctype: str) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == ctype:
            return c
    return None
