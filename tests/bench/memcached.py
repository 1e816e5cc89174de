"""The Memcached logic the Kopf and floor contenders share with the minop plugin.

The children come from the plugin's own pure builders (``minop_memcached.children``),
so all three contenders create identical Deployments and headless Services; only
the labels differ (each contender marks its own children). Status: the
Deployment's ready pods and a Ready condition once it has rolled out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from minop_memcached import children
from minop_memcached.crd import DEFAULT_IMAGE

from minop.kit.workloads import Instance, operand_image, rollout_pending

Obj = dict[str, Any]
NAME, INSTANCE, MANAGED_BY = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
)


def labels(name: str, manager: str) -> dict[str, str]:
    return {NAME: "memcached", INSTANCE: name, MANAGED_BY: manager}


def owner_of(child: Mapping[str, Any]) -> str | None:
    """The Memcached a child belongs to (from its instance label)."""
    return ((child.get("metadata") or {}).get("labels") or {}).get(INSTANCE)


def deployment(cr: Mapping[str, Any], manager: str) -> Obj:
    name, spec = cr["metadata"]["name"], cr.get("spec") or {}
    lab = labels(name, manager)
    image = operand_image(spec, "MEMCACHED_IMAGE", DEFAULT_IMAGE)
    dep = children.workload(Instance(name, "", spec, lab, lab, image))
    dep["metadata"]["labels"] = lab
    return dep


def service(cr: Mapping[str, Any], manager: str) -> Obj:
    name, spec = cr["metadata"]["name"], cr.get("spec") or {}
    lab = labels(name, manager)
    svc = children.service(Instance(name, "", spec, lab, lab, ""))
    svc["metadata"]["labels"] = lab
    return svc


def owner_reference(cr: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": cr["apiVersion"],
        "kind": cr["kind"],
        "name": cr["metadata"]["name"],
        "uid": cr["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment_drift(want: Mapping[str, Any], live: Mapping[str, Any]) -> Obj | None:
    """The spec patch that brings ``live`` to ``want`` (None when it matches)."""
    w, lv = want["spec"], live.get("spec") or {}
    wc, lc = w["template"]["spec"]["containers"][0], lv["template"]["spec"]["containers"][0]
    if w["replicas"] == lv.get("replicas") and wc["command"] == lc.get("command"):
        return None
    return {"spec": {"replicas": w["replicas"], "template": w["template"]}}


def ready_key(status: Mapping[str, Any] | None) -> tuple[int, bool]:
    """What a status patch changes: ready pods and the Ready condition (absent = 0, False)."""
    status = status or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return int(status.get("readyReplicas") or 0), ready


def status_from(dep: Mapping[str, Any]) -> Obj:
    """The Memcached status a Deployment implies."""
    desired = int((dep.get("spec") or {}).get("replicas") or 0)
    ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
    pending = rollout_pending(dict(dep), desired)
    if pending is None and ready < desired:
        pending = f"{ready}/{desired} pods ready"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cond = {
        "type": "Ready",
        "status": "False" if pending else "True",
        "reason": "RollingOut" if pending else "AllPodsReady",
        "message": pending or f"{ready}/{desired} pods ready",
        "lastTransitionTime": now,
    }
    return {
        "readyReplicas": ready,
        "replicas": int((dep.get("status") or {}).get("replicas") or 0),
        "conditions": [cond],
    }
