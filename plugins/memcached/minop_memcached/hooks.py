"""Memcached hooks: reconcile the Deployment, Service and PodDisruptionBudget.

No finalizer: every child has an owner reference, so the garbage collector
removes them with the Memcached.
"""

from __future__ import annotations

from typing import Any

import minop
from minop import kinds
from minop.kit import workloads as wl
from minop_memcached import children
from minop_memcached.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND

IMAGE_ENV = "MEMCACHED_IMAGE"


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(kinds.DEPLOYMENT, kinds.SERVICE, kinds.PDB),
            observes=(kinds.POD,),
            images={"memcached": wl.operand_image({}, IMAGE_ENV, DEFAULT_IMAGE)},
            examples=(EXAMPLE,),
        )
    ]


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    size = int(spec.get("size", 1))
    inst = wl.Instance.of(ctx, wl.operand_image(spec, IMAGE_ENV, DEFAULT_IMAGE))
    ctx.apply(children.deployment(inst))
    ctx.apply(children.service(inst))
    wl.sync_pdb(ctx, size)
    ready, names = wl.report_deployment(ctx, size)
    return {
        "nodes": names,
        "replicas": len(names),
        "readyReplicas": ready,
        "selector": wl.selector_string(ctx.selector),
    }


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


minop_update = minop_create  # level-triggered: the same desired state for every cause
