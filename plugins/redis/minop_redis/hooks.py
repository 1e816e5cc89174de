"""Redis hooks: auth, configuration, Services, StatefulSet, volume expansion, status."""

from __future__ import annotations

import os
from typing import Any

import minop
from minop import kinds
from minop import workloads as wl
from minop.apply import content_hash
from minop_redis import auth, children, rollout
from minop_redis.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND


def _password_secret(body: Any) -> list[str]:
    ref = (body.get("spec") or {}).get("passwordSecretRef") or {}
    return [ref["name"]] if ref.get("name") else []


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(kinds.STATEFULSET, kinds.SERVICE, kinds.CONFIGMAP, kinds.SECRET, kinds.PDB),
            observes=(kinds.POD, kinds.PVC),
            related=(minop.Related(kinds.SECRET, _password_secret),),
            images={"redis": os.environ.get("REDIS_IMAGE") or DEFAULT_IMAGE},
            examples=(EXAMPLE,),
            extra_rules=(
                # growing storage.size expands the existing claims
                {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["patch"]},
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get"],
                },
            ),
        )
    ]


def _auth(ctx: minop.Context, sts: Any, template_hash: str | None) -> auth.Auth | None:
    ref = ctx.spec.get("passwordSecretRef")
    if not ref:
        ctx.delete(kinds.SECRET, f"{ctx.name}-auth")
        return None
    target = auth.wanted_password(ctx, ref)
    state = auth.current(ctx, ctx.name)
    rolled = template_hash is not None and rollout.everyone_updated(ctx, sts, template_hash)
    new = auth.step(state, target, rolled)
    if new != state:
        phase = "both passwords accepted" if new.rotating else "password rotated"
        ctx.event("Normal", "PasswordRotation", phase)
    ctx.apply(children.auth_secret(ctx.name, new.masterauth, new.accept))
    return new


def _claim_size(ctx: minop.Context, sts: Any) -> str:
    """The template's size never changes (immutable); growth goes to the PVCs."""
    want = str((ctx.spec.get("storage") or {}).get("size", "1Gi"))
    if sts is None:
        return want
    template = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    have = str(template["resources"]["requests"]["storage"])
    for pvc in ctx.children(kinds.PVC):
        current = str(pvc["spec"]["resources"]["requests"]["storage"])
        if wl.quantity(want) > wl.quantity(current):
            _expand(ctx, pvc, want)
    return have


def _expand(ctx: minop.Context, pvc: Any, size: str) -> None:
    sc_name = pvc["spec"].get("storageClassName")
    sc = ctx.api.get_or_none(kinds.STORAGECLASS, sc_name) if sc_name else None
    if not sc or not sc.get("allowVolumeExpansion"):
        raise minop.PermanentError(
            f"spec.storage.size: StorageClass {sc_name!r} does not allow volume expansion"
        )
    name = pvc["metadata"]["name"]
    ctx.api.patch(
        kinds.PVC, name, {"spec": {"resources": {"requests": {"storage": size}}}}, ctx.namespace
    )
    ctx.event("Normal", "VolumeExpansion", f"{name}: requested {size}")


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec, name = ctx.spec, ctx.name
    sts = ctx.child(kinds.STATEFULSET, name)
    applied_hash = (
        (sts or {})
        .get("spec", {})
        .get("template", {})
        .get("metadata", {})
        .get("annotations", {})
        .get(children.CONFIG_HASH)
    )
    state = _auth(ctx, sts, applied_hash)
    cm = ctx.apply(children.configmap(name, spec))
    digest = content_hash(
        {"config": cm.get("data"), "auth": [state.masterauth, state.accept] if state else None}
    )
    image = spec.get("image") or os.environ.get("REDIS_IMAGE") or DEFAULT_IMAGE
    ctx.apply(children.headless_service(name, ctx.selector))
    ctx.apply(children.client_service(name, ctx.selector))
    sts = ctx.apply(
        children.statefulset(
            name,
            ctx.namespace,
            spec,
            image,
            ctx.labels,
            ctx.selector,
            claim_size=_claim_size(ctx, sts),
            config_hash=digest,
            with_auth=state is not None,
        )
    )
    wl.sync_pdb(ctx, int(spec.get("replicas", 1)))
    if state is not None and state.rotating:
        ctx.condition(
            "Progressing",
            True,
            "PasswordRotation",
            "every pod accepts both passwords; the old one goes once all run it",
        )
    return rollout.status(ctx, spec, sts, digest)


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


@minop.hookimpl
def minop_update(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)
