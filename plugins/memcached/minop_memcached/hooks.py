"""Memcached hooks: reconcile the Deployment, Service and PodDisruptionBudget."""

from __future__ import annotations

import os
from typing import Any

import minop
from minop import kinds
from minop import workloads as wl
from minop_memcached import children
from minop_memcached.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(kinds.DEPLOYMENT, kinds.SERVICE, kinds.PDB),
            observes=(kinds.POD,),
            images={"memcached": _default_image()},
            examples=(EXAMPLE,),
        )
    ]


def _default_image() -> str:
    return os.environ.get("MEMCACHED_IMAGE") or DEFAULT_IMAGE


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    size = int(spec.get("size", 1))
    image = spec.get("image") or _default_image()
    ctx.apply(children.deployment(ctx.name, spec, image, ctx.labels, ctx.selector))
    ctx.apply(children.service(ctx.name, spec, ctx.selector))
    wl.sync_pdb(ctx, size)
    ready, names = wl.report_pods(ctx, size)
    return {"nodes": names, "readyReplicas": ready, "selector": wl.selector_string(ctx.selector)}


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


@minop.hookimpl
def minop_update(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)
