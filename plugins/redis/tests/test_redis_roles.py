"""The role labels the <name> Service selects: which pod patches the operator makes."""

from __future__ import annotations

from typing import Any

from minop_redis.children import ROLE_LABEL
from minop_redis.roles import label_changes


def pod(name: str, role: str | None = None, going: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {ROLE_LABEL: role} if role else {}}
    if going:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return {"metadata": meta}


def test_unknown_primary_changes_no_label() -> None:
    assert label_changes([pod("r-0", "master"), pod("r-1", "replica")], None) == []


def test_demotion_comes_before_promotion() -> None:
    pods = [pod("r-0", "master"), pod("r-1", "replica"), pod("r-2")]
    assert label_changes(pods, "r-1") == [("r-0", "replica"), ("r-2", "replica"), ("r-1", "master")]


def test_a_primary_going_away_loses_the_label_before_anyone_is_promoted() -> None:
    """Its pod is handing over or dying: new clients are refused (and retry) instead
    of waiting on it, even while the Sentinels still name it."""
    pods = [pod("r-0", "master", going=True), pod("r-1", "replica")]
    assert label_changes(pods, None) == [("r-0", "replica")]
    assert label_changes(pods, "r-0") == [("r-0", "replica")]
    assert label_changes(pods, "r-1") == [("r-0", "replica"), ("r-1", "master")]
