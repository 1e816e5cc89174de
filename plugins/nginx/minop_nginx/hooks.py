"""NGINX hooks: check the configuration, then reconcile ConfigMap, Deployment, Service, PDB."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import minop
from minop import kinds
from minop import workloads as wl
from minop.apply import content_hash
from minop_nginx import children, config
from minop_nginx.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND


def _referenced(body: Mapping[str, Any], field: str, key: str) -> list[str]:
    ref = (body.get("spec") or {}).get(field) or {}
    return [ref[key]] if ref.get(key) else []


@minop.hookimpl
def minop_resources() -> list[minop.Resource]:
    return [
        minop.Resource(
            kind=KIND,
            crd=DEFINITION,
            children=(kinds.DEPLOYMENT, kinds.SERVICE, kinds.CONFIGMAP, kinds.PDB),
            observes=(kinds.POD,),
            related=(
                minop.Related(kinds.CONFIGMAP, lambda b: _referenced(b, "configMapRef", "name")),
                minop.Related(kinds.SECRET, lambda b: _referenced(b, "tls", "secretName")),
            ),
            images={"nginx": os.environ.get("NGINX_IMAGE") or DEFAULT_IMAGE},
            examples=(EXAMPLE,),
        )
    ]


def _inputs_hash(ctx: minop.Context, files: Mapping[str, str]) -> str:
    """Hash of everything the pods read: our files, the user's ConfigMap, the TLS Secret."""
    spec = ctx.spec
    parts: dict[str, Any] = {"files": dict(files)}
    for field, kind, key in (
        ("configMapRef", kinds.CONFIGMAP, "name"),
        ("tls", kinds.SECRET, "secretName"),
    ):
        name = (spec.get(field) or {}).get(key)
        if name:
            found = ctx.related_hash(kind, name)
            if found is None:
                raise minop.PermanentError(
                    f"spec.{field}.{key}: {kind.kind} {name!r} not found in {ctx.namespace}"
                )
            parts[field] = found
    return content_hash(parts)


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    files = config.files(spec)
    if "server.conf" in files:
        try:
            config.check(files["nginx.conf"], files["server.conf"], bool(spec.get("tls")))
        except config.InvalidConfig as e:
            # the running pods keep the last good configuration
            raise minop.PermanentError(f"spec.config: nginx -t failed: {e}") from None
    digest = _inputs_hash(ctx, files)
    image = spec.get("image") or os.environ.get("NGINX_IMAGE") or DEFAULT_IMAGE
    ctx.apply(children.configmap(ctx.name, files))
    ctx.apply(children.deployment(ctx.name, spec, image, ctx.labels, ctx.selector, digest))
    ctx.apply(children.service(ctx.name, spec, ctx.selector))
    replicas = int(spec.get("replicas", 1))
    wl.sync_pdb(ctx, replicas)
    ready, names = wl.report_pods(ctx, replicas)
    return {
        "availableReplicas": ready,
        "podNames": names,
        "selector": wl.selector_string(ctx.selector),
    }


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


@minop.hookimpl
def minop_update(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)
