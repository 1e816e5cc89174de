"""Pieces every workload plugin needs: pod security, scheduling pass-through, PDBs,
pod readiness, quantities (``minop.kit.quantity``'s, re-exported). Shared here so
plugins never copy them from one another."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from minop import Kind, Obj, kinds
from minop.context import Context
from minop.kit import crd
from minop.kit.quantity import canonical_quantity as canonical_quantity  # re-exported
from minop.kit.quantity import quantity as quantity
from minop.kit.quantity import quantity_value as quantity_value

# Spec fields passed through to the pod template unchanged.
SCHEDULING_FIELDS = (
    "affinity",
    "topologySpreadConstraints",
    "tolerations",
    "nodeSelector",
    "priorityClassName",
    "imagePullSecrets",
)


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


def spread_across_nodes(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """A soft topology spread of the pods over nodes: the scheduler prefers a node
    without one (losing a node loses one pod, not all), yet schedules when it cannot.
    Per revision (``pod-template-hash``), so a rollout spreads the new pods too."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]


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
        "securityContext": restricted_pod_security(uid),
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
    ``pod`` when its last run failed; None while it runs, waits for a first run, or
    after it succeeded. With ``terminationMessagePolicy: FallbackToLogsOnError`` the
    message is the tail of its output."""
    for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if st.get("name") != container:
            continue
        state = st.get("state") or {}
        # waiting (e.g. CrashLoopBackOff) after a run: that run's outcome
        ended = state.get("terminated") or (
            (st.get("lastState") or {}).get("terminated") if "waiting" in state else None
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


# The shell behind ``stop_signal``: the first wait returns the program's own exit code;
# one interrupted by the trap is followed by another until the program is gone.
_FORWARD = (
    'trap \'kill -{sig} "$pid"\' TERM; "$@" & pid=$!; wait "$pid"; rc=$?; '
    'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done; exit "$rc"'
)


def stop_signal(signal: str, argv: Sequence[str]) -> list[str]:
    """A container command running ``argv`` behind a shell that turns the kubelet's stop
    signal (SIGTERM, sent after the preStop hook) into ``signal`` (``"QUIT"``, ``"USR1"``)
    and exits with the program's code. Kubernetes ignores an image's STOPSIGNAL and its
    ``lifecycle.stopSignal`` is still alpha (off); a preStop hook that sends the signal
    itself is killed with the container when the program exits, a FailedPreStopHook
    Warning on every stop. The image needs ``/bin/sh``."""
    return ["/bin/sh", "-c", _FORWARD.format(sig=signal), argv[0], *argv]


def pre_stop(drain_seconds: int) -> dict[str, Any]:
    """A container ``lifecycle`` that keeps a stopping pod serving for ``drain_seconds``
    (while Services, load balancers and ingresses drop it from their endpoints, which
    the API server tells them only once the pod is terminating): the kubelet's own
    sleep, so the image needs no shell. The kubelet sends the stop signal after it (see
    ``stop_signal`` for a program that wants another); size the pod's
    ``terminationGracePeriodSeconds`` for both. ``{}`` for no drain."""
    return {"preStop": {"sleep": {"seconds": drain_seconds}}} if drain_seconds else {}


def drain_schema(default: int = 10) -> crd.Schema:
    """The CRD field for ``pre_stop``'s drain."""
    return crd.integer(
        "Seconds a stopping pod keeps serving before it stops (a preStop hook), so that "
        "Services, load balancers and ingresses stop sending it new connections first; the "
        f"default {default} covers endpoint propagation in most clusters, 0 stops at once.",
        minimum=0,
        maximum=300,
        default=default,
    )


def cpu_count(spec: Mapping[str, Any]) -> int | None:
    """Whole CPUs of the container's CPU limit (else request), rounded up: what a
    program sizing itself on the node's CPUs should use instead. None without either."""
    resources = spec.get("resources") or {}
    for kind in ("limits", "requests"):
        cpu = (resources.get(kind) or {}).get("cpu")
        if cpu is not None:
            return max(1, quantity_value(cpu))
    return None


def probe_port(port: int) -> dict[str, Any]:
    """A TCP readiness/liveness probe on ``port``."""
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def canonical_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """A container's ``resources`` with every quantity in canonical form."""
    return {
        k: {r: canonical_quantity(v) for r, v in v.items()} if k in ("limits", "requests") else v
        for k, v in resources.items()
    }
