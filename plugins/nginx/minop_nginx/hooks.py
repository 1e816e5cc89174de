"""NGINX hooks: check the configuration, then reconcile ConfigMap, Deployment, Service, PDB.

No finalizer: every child has an owner reference, so the garbage collector
removes them with the NginxServer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import minop
from minop import content_hash, kinds
from minop.kit import workloads as wl
from minop_nginx import children, config
from minop_nginx.crd import DEFAULT_IMAGE, DEFINITION, EXAMPLE, KIND

IMAGE_ENV = "NGINX_IMAGE"
# Objects the pods read that the user owns: (spec field, key, kind).
REFERENCES = (("configMapRef", "name", kinds.CONFIGMAP), ("tls", "secretName", kinds.SECRET))


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
            related=tuple(
                minop.Related(kind, functools.partial(_referenced, field=field, key=key))
                for field, key, kind in REFERENCES
            ),
            images={"nginx": wl.operand_image({}, IMAGE_ENV, DEFAULT_IMAGE)},
            examples=(EXAMPLE,),
        )
    ]


def _inputs_hash(ctx: minop.Context, data: Mapping[str, str]) -> str:
    """Hash of everything the pods read: our files, the user's ConfigMap, the TLS Secret."""
    parts: dict[str, Any] = {"files": dict(data)}
    for field, key, kind in REFERENCES:
        for name in _referenced(ctx.body, field, key):
            found = ctx.related_hash(kind, name)
            if found is None:
                # related: creating it re-runs this hook, so no retries are needed
                raise minop.PermanentError(
                    f"spec.{field}.{key}: {kind.kind} {name!r} not found in {ctx.namespace}"
                )
            parts[field] = found
    return content_hash(parts)


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    ref = _referenced(ctx.body, "configMapRef", "name")
    if ref == [children.configmap_name(ctx.name)]:
        raise minop.PermanentError(
            f"spec.configMapRef.name: {ref[0]!r} is the ConfigMap the operator writes; rename yours"
        )
    data = config.files(spec)
    image = wl.operand_image(spec, IMAGE_ENV, DEFAULT_IMAGE)
    digest = _inputs_hash(ctx, data)
    deployment = children.deployment(ctx.name, spec, image, ctx.labels, ctx.selector, digest)
    if not ref:  # a configMapRef's data never reaches the operator: nothing to check
        try:
            config.check(deployment["spec"]["template"]["spec"], data)
        except config.InvalidConfig as e:
            # nothing is applied: the running pods keep the last good configuration
            field = "spec.config" if spec.get("config") else "generated configuration"
            raise minop.PermanentError(f"{field}: nginx -t failed: {e}") from None
    ctx.apply(children.configmap(ctx.name, data))
    ctx.apply(deployment)
    ctx.apply(children.service(ctx.name, spec, ctx.selector))
    replicas = int(spec.get("replicas", 1))
    wl.sync_pdb(ctx, replicas)
    ready, names = wl.report_deployment(ctx, replicas)
    return {
        "availableReplicas": ready,
        "replicas": len(names),
        "podNames": names,
        "selector": wl.selector_string(ctx.selector),
    }


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


minop_update = minop_create  # level-triggered: the same desired state for every cause
