"""The pod template's pieces every workload plugin needs: scheduling pass-through, pod
metadata, the ``restricted`` Pod Security Standard, spreading, probes, resources, and a
stopping pod's drain and stop signal. ``minop.kit.workloads`` builds its Deployments
from them and re-exports them: plugins import them from there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from minop.kit import crd
from minop.kit.quantity import canonical_quantity, quantity_value

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
    """CRD properties for pod scheduling and metadata pass-through, and whom the pods
    run as (``pod_security``)."""
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
        "podSecurityContext": _identity_schema(),
    }


IDENTITY_FIELDS = ("runAsUser", "runAsGroup", "fsGroup")


def _identity_schema() -> crd.Schema:
    return crd.obj(
        "Whom the pods run as. By default the image's user and group, set in the pod's "
        "restricted securityContext. Platforms that assign them, such as OpenShift's "
        "restricted-v2 SCC (a UID and fsGroup from the namespace's range), refuse other "
        "values: set assignedByPlatform, or the values the platform gives.",
        {
            "runAsUser": crd.integer("UID of the containers' processes (never 0).", minimum=1),
            "runAsGroup": crd.integer("Primary GID of the containers' processes.", minimum=0),
            "fsGroup": crd.integer(
                "GID that owns the pods' volumes, a supplementary group of every process.",
                minimum=0,
            ),
            "assignedByPlatform": crd.boolean(
                "Set none of runAsUser, runAsGroup and fsGroup: an admission controller "
                "(OpenShift's SCC) assigns them. Without one the kubelet runs the image's "
                "user, which must then be numeric and not root (runAsNonRoot)."
            ),
        },
        rules=[
            crd.Rule(
                "!has(self.assignedByPlatform) || !self.assignedByPlatform || "
                "!(has(self.runAsUser) || has(self.runAsGroup) || has(self.fsGroup))",
                "assignedByPlatform leaves runAsUser, runAsGroup and fsGroup to the "
                "platform: set none of them",
                field=".assignedByPlatform",
            )
        ],
    )


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


def pod_security(spec: Mapping[str, Any], uid: int, fs_group: int | None = None) -> dict[str, Any]:
    """``restricted_pod_security`` as the spec's ``podSecurityContext`` adjusts it: the
    user's UID/GIDs instead of the image's, or none (``assignedByPlatform``)."""
    out = restricted_pod_security(uid, fs_group)
    given = spec.get("podSecurityContext") or {}
    for field in IDENTITY_FIELDS:
        if given.get("assignedByPlatform"):
            out.pop(field, None)
        elif field in given:
            out[field] = given[field]
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
