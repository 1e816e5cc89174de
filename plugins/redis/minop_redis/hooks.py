"""Redis hooks: passwords, TLS, config, Services, StatefulSet, volume expansion, status."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import minop
from minop import ApiError, Obj, kinds
from minop.kit import monitoring, netpol
from minop.kit import workloads as wl
from minop_redis import (
    auth,
    children,
    failover,
    metrics,
    password,
    roles,
    rollout,
    services,
    status,
    tls,
)
from minop_redis import config as cfg
from minop_redis.children import AUTH_HASH, Instance
from minop_redis.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND

UNKNOWN = "unknown"  # the user's Secret is not (yet) in the cache
ROLES_INTERVAL = 2.0  # seconds between reads of the Sentinels (failover enabled only)


def _user_secrets(body: Mapping[str, Any]) -> list[str]:
    """The user's Secrets the pods depend on: the password's and the TLS one."""
    spec = body.get("spec") or {}
    ref = spec.get("passwordSecretRef") or {}
    names = [ref["name"]] if ref.get("name") else []
    cert = tls.settings(spec)
    return names + ([cert["secretName"]] if cert else [])


def default_image() -> str:
    return os.environ.get("REDIS_IMAGE") or DEFAULT_IMAGE


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(
                kinds.STATEFULSET,
                kinds.SERVICE,
                kinds.CONFIGMAP,
                kinds.SECRET,
                kinds.PDB,
                netpol.NETWORK_POLICY,
            ),
            observes=(kinds.POD, kinds.PVC),
            related=(minop.Related(kinds.SECRET, _user_secrets),),
            images={"redis": default_image(), "redis-exporter": metrics.exporter_image()},
            # with failover, who is primary can change without any Kubernetes event
            timers=(minop.Timer(ROLES_INTERVAL, name="roles"),),
            examples=(EXAMPLE,),
            extra_rules=(
                # growing storage.size expands the existing claims
                {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["patch"]},
                # with failover, the role label the <name> Service selects
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get"],
                },
                monitoring.SERVICE_MONITOR_RULE,
                monitoring.PROMETHEUS_RULE_RULE,
            ),
        )
    ]


# -- passwords --------------------------------------------------------------------------


def sync_auth(
    ctx: minop.Context, inst: Instance, sts: Obj | None, pods: list[Obj]
) -> tuple[str | None, int, str | None]:
    """Keep <name>-auth in step with the user's Secret and the rollout.

    Returns the digest for the pod template (None: nothing to configure pods
    with yet), how many previous passwords pods still accept, and a problem.
    In the steady state nothing is read: the cached annotations suffice.
    """
    cached = ctx.child(kinds.SECRET, inst.auth_secret)
    where = password.source(ctx.spec, inst.name, cached)
    source = auth.NO_PASSWORD
    if where is not None and where.generated:
        source = password.ensure_generated(ctx, where)
    elif where is not None:
        source = ctx.related_hash(kinds.SECRET, where.name) or UNKNOWN
    known = auth.summary(cached, ctx.child_hash(kinds.SECRET, inst.auth_secret))
    rotation = str((ctx.spec.get("auth") or {}).get("rotateInternalPassword", ""))
    # Nothing to decide when the user's Secret is unchanged, unless a rotation may
    # move on (every pod runs its revision) or one is asked for.
    if (
        known is not None
        and known.source == source != UNKNOWN
        and known.rotation == rotation
        and not (known.in_flight and status.everyone_on(sts, pods, AUTH_HASH, known.digest))
    ):
        return known.digest, known.previous, None
    state = auth.parse(ctx.api.get_or_none(kinds.SECRET, inst.auth_secret, ctx.namespace))
    wanted, problem = password.read(ctx, where) if where else (None, None)
    if problem is not None:
        if state is None:
            return None, 0, problem
        wanted, source = state.password, state.source  # keep serving as configured
    rolled = state is not None and status.everyone_on(sts, pods, AUTH_HASH, state.digest())
    new = auth.step(state, wanted, source, rolled, rotation=rotation)
    ctx.apply(auth.secret(inst.auth_secret, new))
    _announce(ctx, state, new)
    return new.digest(), len(new.previous), problem


def _announce(ctx: minop.Context, old: auth.State | None, new: auth.State) -> None:
    """Events and logs about a rotation; never a password."""
    if old is None:
        return
    for reason, msg in auth.internal_events(old, new):
        ctx.event("Normal", reason, msg)
        ctx.logger.info("internal password rotation: %s", msg)
    if new.password != old.password and new.previous:
        msg = (
            f"pods accept the new password and {len(new.previous)} previous one(s) until "
            "every pod runs the new revision"
        )
        ctx.event("Normal", "PasswordRotationStarted", msg)
        ctx.logger.info("password rotation started: %s", msg)
    elif new.password != old.password:
        ctx.event("Normal", "PasswordChanged", "pods roll to the new password setting")
    elif old.previous and not new.previous:
        msg = "every pod accepts the new password: dropping the previous one (one more roll)"
        ctx.event("Normal", "PasswordRotationFinishing", msg)
        ctx.logger.info("password rotation: %s", msg)


# -- volumes ----------------------------------------------------------------------------


def claim_template(inst: Instance, sts: Obj | None) -> tuple[str, str | None]:
    """Size and class of the claim template: the spec's at creation, then the live
    StatefulSet's (volumeClaimTemplates are immutable; growth goes to the PVCs)."""
    storage = inst.spec.get("storage") or {}
    if sts is None:
        return str(storage.get("size", "1Gi")), storage.get("storageClassName")
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    return str(claim["resources"]["requests"]["storage"]), claim.get("storageClassName")


def _expandable(ctx: minop.Context, storage_class: str) -> bool:
    """Whether the class allows volume expansion; True when it cannot be read (a
    namespaced Role cannot grant StorageClasses): the API server then decides."""
    if not storage_class:
        return False
    try:
        obj = ctx.api.get_or_none(kinds.STORAGECLASS, storage_class)
    except ApiError as e:
        if e.status != 403:
            raise
        return True
    return bool(obj and obj.get("allowVolumeExpansion"))


def expand_claims(ctx: minop.Context, inst: Instance) -> list[str]:
    """Grow every PVC below storage.size; returns problems (e.g. class cannot expand)."""
    want = wl.canonical_quantity((inst.spec.get("storage") or {}).get("size", "1Gi"))
    problems: list[str] = []
    expandable: dict[str, bool] = {}
    for pvc in ctx.children(kinds.PVC):
        name = pvc["metadata"]["name"]
        have = pvc["spec"]["resources"]["requests"]["storage"]
        if not name.startswith(f"data-{inst.name}-") or wl.quantity(have) >= wl.quantity(want):
            continue
        if (pvc.get("status") or {}).get("phase") != "Bound":
            continue  # only bound claims can grow; this one is retried when it binds
        sc = pvc["spec"].get("storageClassName") or ""
        if sc not in expandable:
            expandable[sc] = _expandable(ctx, sc)
        if not expandable[sc]:
            problems.append(f"{name}: StorageClass {sc!r} does not allow volume expansion")
            continue
        try:
            ctx.api.patch(
                kinds.PVC,
                name,
                {"spec": {"resources": {"requests": {"storage": want}}}},
                inst.namespace,
            )
        except ApiError as e:
            if e.retryable:
                raise
            problems.append(f"{name}: expansion refused: {e.message}")
            continue
        ctx.event("Normal", "ExpandingVolume", f"{name}: {have} -> {want}")
    return problems


def spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """What the CRD cannot check cheaply (CEL over the resources map costs too much)."""
    limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    wanted = spec.get("maxMemory")
    if wanted is None or limit is None or wl.quantity(wanted) <= wl.quantity(limit):
        return []
    return [
        f"spec.maxMemory ({wanted}) exceeds spec.resources.limits.memory ({limit}): "
        "Redis would be killed for lack of memory before it evicts anything"
    ]


# -- reconcile --------------------------------------------------------------------------


def _instance(ctx: minop.Context) -> Instance:
    return Instance.of(ctx, wl.operand_image(ctx.spec, "REDIS_IMAGE", DEFAULT_IMAGE))


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    inst = _instance(ctx)
    # first: while the TLS Secret is missing nothing changes (running pods keep theirs)
    cert = tls.material(ctx)
    sts = ctx.child(kinds.STATEFULSET, inst.name)
    pods = ctx.children(kinds.POD)
    config = cfg.configmap(inst)
    ctx.apply(config)
    ctx.apply(services.headless_service(inst))
    ctx.apply(services.client_service(inst))
    ctx.apply(services.replicas_service(inst))
    if inst.sentinel:
        ctx.apply(services.sentinel_service(inst))
    netpol.sync(ctx, inst, services.network_policy(inst))
    monitoring.sync(ctx, inst, metrics.DEFAULT_METRICS_PORT, metrics.alerts)
    digest, previous, problem = sync_auth(ctx, inst, sts, pods)
    out: dict[str, Any] = {"selector": wl.selector_string(inst.selector)}
    if digest is None:  # no password to configure the pods with yet: wait for the Secret
        assert problem is not None
        ctx.condition("Ready", False, "PasswordSecretMissing", problem)
        ctx.condition("Degraded", True, "PasswordSecretMissing", problem)
        return out
    size, storage_class = claim_template(inst, sts)
    desired = children.statefulset(
        inst,
        config_hash=cfg.config_hash(config["data"]),
        auth_hash=digest,
        claim_size=size,
        storage_class=storage_class,
        tls_hash=cert.hash if cert else None,
        # immutable: as created (the default depends on spec.sentinel)
        policy=sts["spec"].get("podManagementPolicy") if sts else None,
        exporter_image=metrics.exporter_image(),
    )
    template_hash = rollout.mark(desired)
    context = tls.client_context(cert, tls.client_auth(spec)) if cert and inst.sentinel else None
    view = failover.observe(ctx, inst, pods, context) if inst.sentinel else None
    target = None
    if view is not None:
        target = failover.handover_target(ctx, inst, sts, template_hash, pods, view)
    if target is not None:
        rollout.hold_partition(desired)
    sts = ctx.apply(desired)
    budget = spec.get("podDisruptionBudget") or {}
    wl.sync_pdb(ctx, inst.replicas, budget.get("maxUnavailable", 1), budget.get("enabled", True))
    problems = ([problem] if problem else []) + spec_problems(spec) + expand_claims(ctx, inst)
    r = status.rollout(inst.name, spec, sts, pods)
    ctx.condition("Ready", r.ready, r.reason, r.message)
    if view is not None and target is not None:
        msg = f"{view.primary} hands over to {target} first: the rollout replaces it last"
        ctx.condition("Progressing", True, "HandingOverFirst", msg)
    else:
        ctx.condition("Progressing", r.progressing, r.reason, r.message)
    if problems:
        ctx.condition("Degraded", True, "ConfigurationProblem", "; ".join(problems))
    out.update(r.fields)
    if view is not None:
        out.update(failover.sync_roles(ctx, inst, pods, context, view, target))
    else:  # pod 0 is the primary; the labels feed the <name>-replicas Service
        failover.label(ctx, roles.label_changes(pods, f"{inst.name}-0" if inst.replicas else None))
    out["passwordRotation"] = _rotation(inst, previous, r) if previous else None
    where = password.source(spec, inst.name, ctx.child(kinds.SECRET, inst.auth_secret))
    out["passwordSecretRef"] = password.status(where)
    return out


def _rotation(inst: Instance, previous: int, r: status.Rollout) -> str:
    msg = f"pods accept the new password and {previous} previous one(s)"
    if r.outdated:
        waiting = ", ".join(f"{inst.name}-{i}" for i in r.outdated)
        return f"{msg}; the previous one is dropped once {waiting} run the new revision"
    return f"{msg}; the previous one is dropped once every pod is ready on the new revision"


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


minop_update = minop_create  # level-triggered: the same desired state for every cause


@minop.hookimpl
def minop_timer(ctx: minop.Context) -> dict[str, Any] | None:
    """With failover, the whole reconcile: roles, labels and status follow the
    Sentinels even when no Kubernetes object changes. Without, nothing to do."""
    if not _instance(ctx).sentinel:
        return None
    try:
        return reconcile(ctx)
    except minop.PermanentError:
        # the update reported it (Degraded) and runs again when the TLS Secret is fixed;
        # a TimerFailed Event every 2 s would say nothing new
        return None
