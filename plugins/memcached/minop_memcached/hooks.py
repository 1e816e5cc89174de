"""Memcached hooks: reconcile the Deployment (or StatefulSet), Service,
PodDisruptionBudget and NetworkPolicy.

No finalizer: every child has an owner reference, so the garbage collector
removes them with the Memcached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import minop
from minop import content_hash, kinds
from minop.kit import monitoring, netpol
from minop.kit import workloads as wl
from minop_memcached import children
from minop_memcached.crd import (
    DEFAULT_EXPORTER_IMAGE,
    DEFAULT_IMAGE,
    DEFAULT_METRICS_PORT,
    DEFINITION,
    EXAMPLE,
    KIND,
)

IMAGE_ENV = "MEMCACHED_IMAGE"
EXPORTER_IMAGE_ENV = "MEMCACHED_EXPORTER_IMAGE"


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(
                kinds.DEPLOYMENT,
                kinds.STATEFULSET,
                kinds.SERVICE,
                kinds.PDB,
                netpol.NETWORK_POLICY,
            ),
            observes=(kinds.POD,),
            related=(minop.Related(kinds.SECRET, _secrets),),
            images={
                "memcached": wl.operand_image({}, IMAGE_ENV, DEFAULT_IMAGE),
                "memcached-exporter": _exporter_image(),
            },
            examples=(EXAMPLE,),
            extra_rules=(monitoring.SERVICE_MONITOR_RULE,),
        )
    ]


def _exporter_image() -> str:
    return wl.operand_image({}, EXPORTER_IMAGE_ENV, DEFAULT_EXPORTER_IMAGE)


def _secrets(body: Mapping[str, Any]) -> list[str]:
    ref = (body.get("spec") or {}).get("sasl") or {}
    return [ref["secretName"]] if ref.get("secretName") else []


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    size = int(spec.get("size", 1))
    inst = wl.Instance.of(ctx, wl.operand_image(spec, IMAGE_ENV, DEFAULT_IMAGE))
    digest = ""
    for name in _secrets(ctx.body):
        found = ctx.related_hash(kinds.SECRET, name)
        if found is None:  # related: creating it re-runs this hook
            raise minop.PermanentError(
                f"spec.sasl.secretName: Secret {name!r} not found in {ctx.namespace}"
            )
        digest = content_hash({"sasl": found})
    workload = children.workload(inst, digest, _exporter_image())
    kind = kinds.STATEFULSET if workload["kind"] == "StatefulSet" else kinds.DEPLOYMENT
    ctx.apply(workload)
    # switching stableNames: the other kind's pods go (the new ones start empty anyway)
    ctx.delete(kinds.DEPLOYMENT if kind == kinds.STATEFULSET else kinds.STATEFULSET, ctx.name)
    ctx.apply(children.service(inst))
    monitoring.sync(ctx, inst, DEFAULT_METRICS_PORT)
    netpol.sync(ctx, inst, children.network_policy(inst))
    wl.sync_pdb(ctx, size)
    ready, names = wl.report_deployment(ctx, size, kind)
    return {
        "nodes": names,
        "replicas": len(names),
        "readyReplicas": ready,
        "servers": children.servers(inst),
        "selector": wl.selector_string(ctx.selector),
    }


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


minop_update = minop_create  # level-triggered: the same desired state for every cause
