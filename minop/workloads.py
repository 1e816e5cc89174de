"""Pieces every workload plugin needs: pod security, scheduling pass-through, PDBs,
pod readiness. Shared here so plugins never copy them from one another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop import crd, kinds
from minop.context import Context
from minop.kube import Obj

# Spec fields passed through to the pod template unchanged.
SCHEDULING_FIELDS = (
    "affinity",
    "topologySpreadConstraints",
    "tolerations",
    "nodeSelector",
    "priorityClassName",
    "imagePullSecrets",
)


def scheduling_schema() -> dict[str, crd.Schema]:
    """CRD properties for pod scheduling and metadata pass-through."""
    return {
        "affinity": crd.free_form("Pod affinity and anti-affinity (core/v1 Affinity)."),
        "topologySpreadConstraints": crd.array(
            "How pods spread across topology domains (core/v1 TopologySpreadConstraint).",
            crd.free_form("One topology spread constraint."),
        ),
        "tolerations": crd.array(
            "Taints the pods tolerate (core/v1 Toleration).",
            crd.free_form("One toleration."),
        ),
        "nodeSelector": crd.string_map("Node labels the pods must run on."),
        "priorityClassName": crd.string("PriorityClass of the pods."),
        "imagePullSecrets": crd.array(
            "Secrets for pulling the image from a private registry.",
            crd.obj(
                "A reference to a Secret.",
                {"name": crd.string("Name of the Secret.")},
                required=["name"],
            ),
        ),
        "podAnnotations": crd.string_map("Extra annotations on the pods."),
        "podLabels": crd.string_map("Extra labels on the pods (minop's own labels win)."),
    }


def scheduling(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Pod spec fields taken from the CR spec as they are."""
    return {f: spec[f] for f in SCHEDULING_FIELDS if spec.get(f)}


def pod_metadata(
    spec: Mapping[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str] = {}
) -> dict[str, Any]:
    """Pod template metadata: the user's labels/annotations, minop's labels on top."""
    meta: dict[str, Any] = {"labels": {**(spec.get("podLabels") or {}), **labels}}
    merged = {**(spec.get("podAnnotations") or {}), **annotations}
    if merged:
        meta["annotations"] = merged
    return meta


def restricted_pod_security(uid: int, fs_group: int | None = None) -> dict[str, Any]:
    """Pod-level securityContext that passes the ``restricted`` Pod Security Standard."""
    out: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        out["fsGroup"] = fs_group
    return out


def restricted_container_security(read_only_root: bool = True) -> dict[str, Any]:
    """Container-level securityContext for the ``restricted`` Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
    }


def pdb(name: str, selector: Mapping[str, str], max_unavailable: int = 1) -> dict[str, Any]:
    """A PodDisruptionBudget letting voluntary evictions take one pod at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": dict(selector)}},
    }


def sync_pdb(ctx: Context, replicas: int) -> None:
    """A PDB while there is more than one pod; none for one (it would block every drain)."""
    name = ctx.name
    if replicas > 1:
        ctx.apply(pdb(name, ctx.selector))
    else:
        ctx.delete(kinds.PDB, name)


def selector_string(labels: Mapping[str, str]) -> str:
    """``status.selector`` for the /scale subresource (what HPA and kubectl read)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod_ready(pod: Obj) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def pod_names(pods: list[Obj], ready_only: bool = False) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp") and (pod_ready(p) or not ready_only)
    )


def report_pods(ctx: Context, desired: int) -> tuple[int, list[str]]:
    """Ready count and names of the object's pods; sets Ready/Progressing while short.

    Needs ``kinds.POD`` in ``Resource.observes`` and the selector labels on the pods.
    """
    pods = [p for p in ctx.children(kinds.POD) if not p["metadata"].get("deletionTimestamp")]
    ready = sum(1 for p in pods if pod_ready(p))
    if ready < desired:
        msg = f"{ready}/{desired} pods ready"
        ctx.condition("Ready", False, "PodsNotReady", msg)
        ctx.condition("Progressing", True, "PodsStarting", msg)
    return ready, pod_names(pods)


def probe_port(port: int) -> dict[str, Any]:
    """A TCP readiness/liveness probe on ``port``."""
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
