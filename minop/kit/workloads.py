"""Pieces every workload plugin needs: the Deployment (or StatefulSet) of an instance,
PDBs, pod readiness and rollout status, the operand image; the pod template's pieces
(``minop.kit.podtemplate``: pod security, scheduling pass-through, probes, drain) and
quantities (``minop.kit.quantity``), re-exported. Shared here so plugins never copy
them from one another."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from minop import Kind, Obj, kinds
from minop.context import Context

# re-exported: plugins import the pod template's pieces and quantities from here
from minop.kit.podtemplate import SCHEDULING_FIELDS as SCHEDULING_FIELDS
from minop.kit.podtemplate import canonical_resources as canonical_resources
from minop.kit.podtemplate import cpu_count as cpu_count
from minop.kit.podtemplate import drain_schema as drain_schema
from minop.kit.podtemplate import pod_metadata as pod_metadata
from minop.kit.podtemplate import pod_security as pod_security
from minop.kit.podtemplate import pre_stop as pre_stop
from minop.kit.podtemplate import probe_port as probe_port
from minop.kit.podtemplate import restricted_container_security as restricted_container_security
from minop.kit.podtemplate import scheduling as scheduling
from minop.kit.podtemplate import scheduling_schema as scheduling_schema
from minop.kit.podtemplate import spread_across_nodes as spread_across_nodes
from minop.kit.podtemplate import stop_signal as stop_signal
from minop.kit.quantity import canonical_quantity as canonical_quantity
from minop.kit.quantity import quantity as quantity
from minop.kit.quantity import quantity_value as quantity_value


@dataclass(frozen=True)
class Instance:
    """One custom resource as its child builders need it, taken from a hook's context
    (``of``): the builders stay pure functions of it, testable without a cluster."""

    name: str
    namespace: str
    spec: Mapping[str, Any]
    labels: Mapping[str, str]  # minop's labels of the children and pods
    selector: Mapping[str, str]  # those that select the pods
    image: str  # the operand image (``operand_image``)

    @classmethod
    def of(cls, ctx: Context, image: str) -> Self:
        return cls(ctx.name, ctx.namespace, ctx.spec, ctx.labels, ctx.selector, image)


def deployment(
    inst: Instance,
    replicas: int,
    uid: int,
    container: dict[str, Any],
    volumes: list[dict[str, Any]] | None = None,
    *,
    pod_annotations: Mapping[str, str] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    max_unavailable: int | None = None,
    spread: bool = False,
    termination_grace_seconds: int | None = None,
    sidecars: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Deployment named like ``inst`` of one restricted container, with the spec's
    scheduling, pod labels and annotations (``pod_metadata``) and ``resources``
    (canonical quantities: converged objects cost no write).

    ``init_containers`` get the same ``resources`` (the pod's request stays that of
    the container). ``max_unavailable=0`` rolls out by starting each new pod before
    an old one stops: a new pod that never becomes ready leaves the old ones serving.
    ``spread``: ``spread_across_nodes`` unless the spec sets ``affinity`` or
    ``topologySpreadConstraints`` itself. ``termination_grace_seconds``: how long the
    kubelet waits for a ``pre_stop`` hook and the stop before it kills the pod.
    ``sidecars``: more containers after the first (e.g. ``minop.kit.monitoring``'s
    exporter), each with its own ``resources``.
    """
    spec, selector = inst.spec, inst.selector
    if spec.get("resources"):
        resources = canonical_resources(spec["resources"])
        container = {**container, "resources": resources}
        init_containers = [{**c, "resources": resources} for c in init_containers or []]
    pod: dict[str, Any] = {
        "securityContext": pod_security(spec, uid),
        "automountServiceAccountToken": False,
    }
    if termination_grace_seconds is not None:
        pod["terminationGracePeriodSeconds"] = termination_grace_seconds
    if init_containers:
        pod["initContainers"] = init_containers
    pod["containers"] = [container, *(sidecars or [])]
    if volumes:
        pod["volumes"] = volumes
    if spread and not (spec.get("affinity") or spec.get("topologySpreadConstraints")):
        pod["topologySpreadConstraints"] = spread_across_nodes(selector)
    out: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": inst.name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": pod_metadata(spec, inst.labels, pod_annotations or {}),
                "spec": {**pod, **scheduling(spec)},
            },
        },
    }
    if max_unavailable is not None:
        out["spec"]["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": 1},
        }
    return out


def statefulset(deployment: Mapping[str, Any], service_name: str) -> dict[str, Any]:
    """The pods of ``deployment`` (``deployment``'s output) as a StatefulSet: stable
    names ``<name>-<ordinal>``, each with a DNS name ``<pod>.<service_name>.<namespace>.svc``
    under the headless Service ``service_name``, kept across restarts and rollouts.
    Pods start and stop together (Parallel: no ordering to wait for) and roll one at
    a time from the highest ordinal."""
    spec = deployment["spec"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": dict(deployment["metadata"]),
        "spec": {
            "replicas": spec["replicas"],
            "serviceName": service_name,
            "podManagementPolicy": "Parallel",
            "selector": spec["selector"],
            "template": spec["template"],
        },
    }


def pdb(name: str, selector: Mapping[str, str], max_unavailable: int = 1) -> dict[str, Any]:
    """A PodDisruptionBudget letting voluntary evictions take one pod at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": dict(selector)}},
    }


def sync_pdb(ctx: Context, replicas: int, max_unavailable: int = 1, enabled: bool = True) -> None:
    """A PDB while there is more than one pod; none for one (it would block every drain)."""
    name = ctx.name
    if replicas > 1 and enabled:
        ctx.apply(pdb(name, ctx.selector, max_unavailable))
    else:
        ctx.delete(kinds.PDB, name)


def init_failure(pod: Obj, container: str) -> str | None:
    """The termination message (or exit code) of init container ``container`` of
    ``pod`` when its last run failed, also while the kubelet backs off or tries again;
    None while a first run waits or runs, or after one succeeded. With
    ``terminationMessagePolicy: FallbackToLogsOnError`` the message is the tail of its
    output."""
    for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if st.get("name") != container:
            continue
        # waiting (CrashLoopBackOff) or running again after a run: that run's outcome
        ended = (st.get("state") or {}).get("terminated") or (st.get("lastState") or {}).get(
            "terminated"
        )
        if ended and ended.get("exitCode", 0) != 0:
            return str(ended.get("message") or f"exited {ended['exitCode']}").strip()
    return None


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


def rollout_pending(deployment: Obj | None, desired: int) -> str | None:
    """Why a Deployment has not finished rolling out ``desired`` pods (None once it has).

    The checks of ``kubectl rollout status``: the controller saw the latest
    template, every pod is updated and available, and no old pod is left.
    """
    if deployment is None:
        return "Deployment not created yet"
    status = deployment.get("status") or {}
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return "Deployment controller has not seen the latest spec yet"
    updated = int(status.get("updatedReplicas") or 0)
    if updated < desired:
        return f"{updated}/{desired} pods updated"
    old = int(status.get("replicas") or 0) - updated
    if old > 0:
        return f"{old} old pods terminating"
    available = int(status.get("availableReplicas") or 0)
    if available < updated:
        return f"{available}/{desired} updated pods available"
    return None


def report_deployment(
    ctx: Context, desired: int, kind: Kind = kinds.DEPLOYMENT
) -> tuple[int, list[str]]:
    """``report_pods``, and Ready only once the Deployment (or ``kind``: a StatefulSet,
    whose status has the same counts) named like the object has rolled out:
    ``kubectl wait --for=condition=Ready`` after a change waits for the roll.

    Needs ``kind`` among the children and ``kinds.POD`` observed.
    """
    ready, names = report_pods(ctx, desired)
    if ready >= desired:
        child = ctx.child(kind, ctx.name)
        pending = rollout_pending(child, desired) if child else f"{kind.kind} not created yet"
        if pending:
            ctx.condition("Ready", False, "RollingOut", pending)
            ctx.condition("Progressing", True, "RollingOut", pending)
    return ready, names


def operand_image(spec: Mapping[str, Any], env: str, default: str) -> str:
    """The operand image: the CR's ``image``, else the operator's ``env`` variable (how a
    disconnected install points at its mirror), else the plugin's pinned default."""
    return str(spec.get("image") or os.environ.get(env) or default)
