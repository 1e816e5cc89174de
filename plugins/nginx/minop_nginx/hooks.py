"""NGINX hooks: check the configuration, then reconcile ConfigMap, Deployment, Service, PDB,
and report a configuration the pods' own nginx rejects.

No finalizer: every child has an owner reference, so the garbage collector
removes them with the NginxServer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import minop
from minop import content_hash, kinds
from minop.kit import monitoring
from minop.kit import workloads as wl
from minop_nginx import children, config, paths
from minop_nginx.crd import (
    DEFAULT_EXPORTER_IMAGE,
    DEFAULT_IMAGE,
    DEFAULT_METRICS_PORT,
    DEFINITION,
    EXAMPLE,
    KIND,
)

IMAGE_ENV = "NGINX_IMAGE"
EXPORTER_IMAGE_ENV = "NGINX_EXPORTER_IMAGE"
# Objects the pods read that the user owns: (spec field path, key, kind); a list
# field (certificates, extraVolumes) names one per item.
REFERENCES = (
    ("configMapRef", "name", kinds.CONFIGMAP),
    ("tls", "secretName", kinds.SECRET),
    ("content.configMapRef", "name", kinds.CONFIGMAP),
    ("certificates", "secretName", kinds.SECRET),
    ("extraVolumes.configMap", "name", kinds.CONFIGMAP),
    ("extraVolumes.secret", "secretName", kinds.SECRET),
)


def _referenced(body: Mapping[str, Any], field: str, key: str) -> list[str]:
    refs: list[Any] = [body.get("spec") or {}]
    for part in field.split("."):
        found = [r.get(part) for r in refs if isinstance(r, Mapping)]
        refs = [x for f in found for x in (f if isinstance(f, list) else [f]) if x]
    return [r[key] for r in refs if r.get(key)]


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
            images={
                "nginx": wl.operand_image({}, IMAGE_ENV, DEFAULT_IMAGE),
                "nginx-exporter": _exporter_image(),
            },
            examples=(EXAMPLE,),
            extra_rules=(monitoring.SERVICE_MONITOR_RULE,),
        )
    ]


def _exporter_image() -> str:
    return wl.operand_image({}, EXPORTER_IMAGE_ENV, DEFAULT_EXPORTER_IMAGE)


def _inputs_hash(ctx: minop.Context, data: Mapping[str, str], image: str) -> str:
    """Hash of everything the pods read: our files, the user's ConfigMaps, the TLS
    Secret; and the image, whose nginx judges them."""
    parts: dict[str, Any] = {"files": dict(data), "image": image}
    for field, key, kind in REFERENCES:
        for name in _referenced(ctx.body, field, key):
            found = ctx.related_hash(kind, name)
            if found is None:
                # related: creating it re-runs this hook, so no retries are needed
                raise minop.PermanentError(
                    f"spec.{field}.{key}: {kind.kind} {name!r} not found in {ctx.namespace}"
                )
            parts[f"{field}/{name}"] = found
    return content_hash(parts)


def reconcile(ctx: minop.Context) -> dict[str, Any]:
    spec = ctx.spec
    data = config.files(spec)
    image = wl.operand_image(spec, IMAGE_ENV, DEFAULT_IMAGE)
    digest = _inputs_hash(ctx, data, image)
    inst = wl.Instance.of(ctx, image)
    deployment = children.deployment(inst, data, digest, _exporter_image())
    field = (
        "spec.config"
        if spec.get("config")
        else "spec.configMapRef"
        if spec.get("configMapRef")
        else "generated configuration"
    )
    # nothing is applied on a refusal: the running pods keep the last good configuration
    pod = deployment["spec"]["template"]["spec"]
    try:
        paths.check(data, pod["containers"][0]["volumeMounts"])
    except paths.ForbiddenPath as e:
        where = field if e.file == "server.conf" else "spec.mainSnippet/eventsSnippet"
        raise minop.PermanentError(f"{where}: {e}") from None
    if not spec.get("configMapRef"):  # its data never reaches the operator: the pods judge it
        try:
            config.check(pod, data)
        except config.InvalidConfig as e:
            raise minop.PermanentError(f"{field}: nginx -t failed: {e}") from None
    configmap = children.configmap(ctx.name, data)
    ctx.apply(configmap)
    ctx.apply(deployment)
    ctx.apply(children.service(inst))
    monitoring.sync(ctx, inst, DEFAULT_METRICS_PORT)
    replicas = int(spec.get("replicas", 1))
    wl.sync_pdb(ctx, replicas)
    ready, names = wl.report_deployment(ctx, replicas)
    pods = ctx.children(kinds.POD)
    _prune_configmaps(ctx, configmap["metadata"]["name"], pods)
    rejected = _rejected(pods, digest)
    if rejected:
        # maxUnavailable 0: the old pods keep serving while the new one fails its check
        msg = f"{field}: nginx -t failed in pod {rejected[0]} ({image}): {rejected[1]}"
        ctx.condition("Ready", False, "ConfigRejected", msg)
        ctx.condition("Progressing", False, "ConfigRejected", msg)  # stuck until the spec changes
        ctx.condition("Degraded", True, "ConfigRejected", msg)
        known = [c.get("message") for c in ctx.status.get("conditions") or []]
        if msg not in known:  # once, not on every restart of the failing check
            ctx.event("Warning", "ConfigRejected", msg)
    return {
        "availableReplicas": ready,
        "replicas": len(names),
        "podNames": names,
        "selector": wl.selector_string(ctx.selector),
    }


def _rejected(pods: list[minop.Obj], digest: str) -> tuple[str, str] | None:
    """(pod, nginx's message) of a pod of the current configuration whose own
    `nginx -t` failed."""
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if (pod["metadata"].get("annotations") or {}).get(children.CONFIG_HASH) != digest:
            continue
        failed = wl.init_failure(pod, children.CHECK)
        if failed is not None:
            return pod["metadata"]["name"], config.first_error(failed) or failed
    return None


def _prune_configmaps(ctx: minop.Context, current: str, pods: list[minop.Obj]) -> None:
    """Delete our earlier ConfigMaps once no pod mounts them any more."""
    mounted = {
        v["configMap"]["name"]
        for p in pods
        for v in p.get("spec", {}).get("volumes") or []
        if v.get("configMap")
    }
    for cm in ctx.children(kinds.CONFIGMAP):
        name = cm["metadata"]["name"]
        if name.startswith(ctx.name + "-config") and name != current and name not in mounted:
            ctx.delete(kinds.CONFIGMAP, name)


@minop.hookimpl
def minop_create(ctx: minop.Context) -> dict[str, Any]:
    return reconcile(ctx)


minop_update = minop_create  # level-triggered: the same desired state for every cause
