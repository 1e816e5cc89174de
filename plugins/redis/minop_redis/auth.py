"""Password rotation without an outage, in two rolls.

Rolling updates replace the highest ordinal first, so replicas would present
a new password to a primary that only knows the old one. Instead:
phase 1 makes every pod accept both passwords while replicas still present the
old one; once every pod runs that revision, phase 2 drops the old password and
replicas present the new one (the primary, rolled last, still accepts both
until it rolls). With a held partition or OnDelete, phase 2 waits for the
user's rollout. Neither value is ever logged.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, NamedTuple

import minop
from minop import kinds
from minop.kube import NotFound

FORBIDDEN = set(" \t\r\n\"'\\")


class Auth(NamedTuple):
    masterauth: str  # what replicas present to the primary (and probes use)
    accept: list[str]  # every password the default user accepts

    @property
    def rotating(self) -> bool:
        return len(self.accept) > 1


def wanted_password(ctx: minop.Context, ref: Mapping[str, Any]) -> str:
    """The password the user asks for, read from their Secret (not cached)."""
    name, key = ref["name"], ref.get("key", "password")
    try:
        secret = ctx.api.get(kinds.SECRET, name, ctx.namespace)
    except NotFound:
        raise minop.PermanentError(
            f"spec.passwordSecretRef.name: Secret {name!r} not found"
        ) from None
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        raise minop.PermanentError(
            f"spec.passwordSecretRef.key: Secret {name!r} has no key {key!r}"
        )
    value = base64.b64decode(raw).decode()
    if not value or FORBIDDEN & set(value):
        raise minop.PermanentError(
            f"spec.passwordSecretRef: the password in Secret {name!r} must be non-empty and "
            "contain no whitespace, quotes or backslashes"
        )
    return value


def current(ctx: minop.Context, name: str) -> Auth | None:
    """The state recorded in the operator's own Secret (read directly, never cached)."""
    try:
        secret = ctx.api.get(kinds.SECRET, f"{name}-auth", ctx.namespace)
    except NotFound:
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    if "masterauth" not in data:
        return None
    return Auth(data["masterauth"], [p for p in data.get("accept", "").splitlines() if p])


def step(state: Auth | None, target: str, rolled: bool) -> Auth:
    """The next state towards ``target``; ``rolled``: every pod runs ``state``'s revision."""
    if state is None:
        return Auth(target, [target])
    if not state.rotating:
        if state.masterauth == target:
            return state
        return Auth(state.masterauth, [state.masterauth, target])  # phase 1
    if target not in state.accept:  # changed again mid-rotation: restart phase 1
        return Auth(state.masterauth, [state.masterauth, target])
    if rolled:
        return Auth(target, [target])  # phase 2
    return state
