"""With failover (spec.sentinel), what a reconcile reads from and tells the pods: who
is primary (roles.py), the role labels, the Sentinels' upkeep, and a rollout's
order (rollout.py). Without, pod 0 is the primary and only the labels follow."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

import minop
from minop import ApiError, Obj, kinds
from minop_redis import auth, children, roles, rollout
from minop_redis.children import Instance


@dataclass(frozen=True)
class View:
    """What the pods said this tick (password None: the internal Secret is not there yet)."""

    password: bytes | None
    primary: str | None = None
    members: list[roles.Member] = field(default_factory=list)


_internal: dict[tuple[str, str, str], bytes] = {}  # (ns, name, Secret version) -> password


def _internal_password(ctx: minop.Context, inst: Instance) -> bytes | None:
    """The internal (replication/Sentinel) password, read once per Secret version."""
    cached = ctx.child(kinds.SECRET, inst.auth_secret)
    if cached is None:
        return None
    key = (inst.namespace, inst.auth_secret, str(cached["metadata"].get("resourceVersion")))
    if key not in _internal:
        state = auth.parse(ctx.api.get_or_none(kinds.SECRET, inst.auth_secret, ctx.namespace))
        if state is None:
            return None
        _internal.clear()  # one entry per object would do; old versions are useless
        _internal[key] = state.replication
    return _internal[key]


def observe(
    ctx: minop.Context, inst: Instance, pods: list[Obj], context: ssl.SSLContext | None
) -> View:
    """Ask every pod's Sentinel and Redis (``context``: TLS, spec.tls)."""
    password = _internal_password(ctx, inst)
    if password is None:
        return View(None)
    primary, members = roles.observe(inst, pods, password, tls=context)
    return View(password, primary, members)


def handover_target(
    ctx: minop.Context, inst: Instance, sts: Obj | None, template_hash: str, pods: list[Obj],
    view: View,
) -> str | None:  # fmt: skip
    """The pod the primary hands over to before the rollout may replace it (pod 0),
    while the StatefulSet's partition is held for that (also while pod 0 is not
    yet a linked replica, up to HOLD_S); None: roll as usual."""
    due = rollout.primary_due_early(inst, sts, template_hash, pods, view.primary)
    target = f"{inst.name}-0"
    state = rollout.hold(inst, template_hash, due)
    if state == "expired":
        ctx.event(
            "Warning",
            "HandOverFirstFailed",
            f"{view.primary} did not hand over to {target} within {rollout.HOLD_S:.0f}s: the "
            "rollout goes on, the primary hands over when its pod is replaced",
        )
    return target if state == "held" else None


def label(ctx: minop.Context, changes: list[tuple[str, str]]) -> None:
    """Set the role labels, in order (demotions first)."""
    for name, role in changes:
        try:
            ctx.api.patch(
                kinds.POD,
                name,
                {"metadata": {"labels": {children.ROLE_LABEL: role}}},
                ctx.namespace,
            )
        except ApiError as e:
            if e.status != 404:  # a pod that just went away needs no label
                raise


def sync_roles(
    ctx: minop.Context,
    inst: Instance,
    pods: list[Obj],
    context: ssl.SSLContext | None,
    view: View,
    target: str | None,
) -> dict[str, Any]:
    """Label the Sentinels' primary for the <name> Service, keep the Sentinels and the
    replicas' priorities right, hand over to ``target`` if set; status.primary/members."""
    password, primary, members = view.password, view.primary, view.members
    if password is None:
        return {"primary": None, "members": []}
    label(ctx, roles.label_changes(pods, primary))
    reset = roles.forget_departed(inst, pods, password, tls=context)
    if reset:
        ctx.event(
            "Normal",
            "SentinelReset",
            f"{reset}'s Sentinel counted Sentinels that are gone: reset, it rediscovers the rest",
        )
    for pod in roles.align_quorum(inst, pods, password, tls=context):
        ctx.event("Normal", "SentinelQuorum", f"{pod}'s Sentinel now needs {inst.quorum} to agree")
    # only pod 0 promotable while it can take over at once; else none would be
    ready = target is not None and rollout.ready_target(inst, pods, members) == target
    wanted = rollout.priorities(pods, primary, target if ready else None)
    rollout.set_priorities(inst, pods, members, wanted, password, tls=context)
    if ready and target and primary:
        failed = rollout.hand_over(inst, pods, primary, target, password, tls=context)
        if failed is None:
            ctx.event(
                "Normal",
                "HandedOverFirst",
                f"{primary} handed over to {target} before the rollout replaces it: "
                f"{target} is replaced last",
            )
            primary = target
        else:
            ctx.logger.info("hand-over to %s before the rollout: %s", target, failed)
    before = ctx.status.get("primary")
    if primary is None:  # nothing readable now: report the labelled pod, if any
        primary = next(
            (
                p["metadata"]["name"]
                for p in pods
                if (p["metadata"].get("labels") or {}).get(children.ROLE_LABEL) == "master"
            ),
            None,
        )
    elif before and before != primary:
        ctx.event(
            "Normal", "PrimaryChanged", f"the Sentinels failed over from {before} to {primary}"
        )
    return roles.status(primary, members)
