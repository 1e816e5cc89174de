"""Rollout status of a Redis from its StatefulSet and pods (pure functions).

``Ready`` means every pod exists and is ready, and every pod the update
strategy is meant to update runs ``updateRevision``. Pods below a held
partition, and pods waiting for a delete under OnDelete, are a normal, Ready
state: ``kubectl wait --for=condition=Ready`` must not hang on a canary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from minop import Obj
from minop.kit import crd
from minop.kit import workloads as wl

# What the hooks below report, as the CRD declares it.
STATUS = crd.obj(
    "Observed state, from the StatefulSet and its pods.",
    {
        "replicas": crd.integer("Pods the StatefulSet has created (for the scale subresource)."),
        "readyReplicas": crd.integer("Pods ready to serve."),
        "updatedReplicas": crd.integer("Pods on updateRevision."),
        "currentRevision": crd.string("StatefulSet revision the pods below the partition run."),
        "updateRevision": crd.string("StatefulSet revision pods are being updated to."),
        "primary": crd.string("Name of the primary pod (the client Service points at it)."),
        "members": crd.array(
            "With failover: every pod's role and replication state, as the operator last "
            "read them from the pods.",
            crd.obj(
                "One pod.",
                {
                    "name": crd.string("Pod name."),
                    "role": crd.string("master, replica, or unknown (not answering)."),
                    "lagBytes": crd.integer(
                        "Replication offset behind the primary, in bytes (replicas)."
                    ),
                    "linkUp": crd.boolean("The replica's link to its primary is up."),
                },
            ),
        ),
        "podNames": crd.array("Names of the pods, by ordinal.", crd.string("A pod name.")),
        "passwordSecretRef": crd.obj(
            "Where clients find the password: the Secret key of spec.passwordSecretRef or "
            "the generated <name>-password; absent without a password.",
            {"name": crd.string("The Secret's name."), "key": crd.string("Its key.")},
        ),
        "passwordRotation": crd.string(
            "Set while a password change is in progress: which passwords the pods accept and "
            "what the rotation waits for."
        ),
    },
)

REVISION = "controller-revision-hash"


def ordinal(pod: Mapping[str, Any]) -> int:
    tail = str(pod["metadata"]["name"]).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def revision(pod: Mapping[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION)


def _names(name: str, ordinals: Iterable[int]) -> str:
    return ", ".join(f"{name}-{i}" for i in sorted(ordinals))


def observed(sts: Obj | None) -> bool:
    """The StatefulSet controller has seen the latest spec (its status is current)."""
    if sts is None:
        return False
    st = sts.get("status") or {}
    return bool(st.get("observedGeneration") == sts["metadata"].get("generation"))


def everyone_on(sts: Obj | None, pods: list[Obj], annotation: str, value: str) -> bool:
    """Every pod, whatever the partition, runs the template whose ``annotation`` is
    ``value``, and is ready: nothing runs an older configuration any more."""
    if sts is None:
        return not any(not p["metadata"].get("deletionTimestamp") for p in pods)
    template = sts["spec"]["template"]["metadata"].get("annotations") or {}
    if template.get(annotation) != value or not observed(sts):
        return False
    want = int(sts["spec"].get("replicas", 0))
    update = (sts.get("status") or {}).get("updateRevision")
    live = {ordinal(p): p for p in pods if not p["metadata"].get("deletionTimestamp")}
    return set(live) == set(range(want)) and all(
        revision(p) == update and wl.pod_ready(p) for p in live.values()
    )


@dataclass(frozen=True)
class Rollout:
    ready: bool
    reason: str
    message: str
    progressing: bool
    fields: dict[str, Any] = field(default_factory=dict)
    outdated: tuple[int, ...] = ()  # ordinals not on updateRevision


def rollout(name: str, spec: Mapping[str, Any], sts: Obj | None, pods: list[Obj]) -> Rollout:
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("updateStrategy") or {}
    on_delete = strategy.get("type") == "OnDelete"
    partition = 0 if on_delete else int((strategy.get("rollingUpdate") or {}).get("partition", 0))
    st = (sts or {}).get("status") or {}
    live = {ordinal(p): p for p in pods if not p["metadata"].get("deletionTimestamp")}
    terminating = {ordinal(p) for p in pods if p["metadata"].get("deletionTimestamp")}
    update, current = st.get("updateRevision"), st.get("currentRevision")
    fields: dict[str, Any] = {
        "replicas": int(st.get("replicas", 0)),
        "readyReplicas": int(st.get("readyReplicas", 0)),
        "updatedReplicas": int(st.get("updatedReplicas", 0)),
        "currentRevision": current,
        "updateRevision": update,
        "primary": f"{name}-0" if replicas > 0 else None,
        "podNames": [f"{name}-{i}" for i in sorted(live)],
    }
    outdated = tuple(sorted(i for i, p in live.items() if i < replicas and revision(p) != update))

    def out(ready: bool, reason: str, message: str, progressing: bool) -> Rollout:
        return Rollout(ready, reason, message, progressing, fields, outdated)

    if sts is None:
        return out(False, "Creating", "creating the StatefulSet", True)
    if not observed(sts):
        gen = sts["metadata"].get("generation")
        return out(
            False, "RolloutInProgress", f"StatefulSet generation {gen} not observed yet", True
        )
    missing = [i for i in range(replicas) if i not in live]
    unready = [i for i in range(replicas) if i in live and not wl.pod_ready(live[i])]
    if missing or unready:
        ready = replicas - len(missing) - len(unready)
        msg = f"{ready}/{replicas} pods ready; waiting for {_names(name, missing + unready)}"
        return out(False, "PodsNotReady", msg, True)
    extra = {i for i in live if i >= replicas} | {i for i in terminating if i >= replicas}
    if extra:
        return out(False, "ScalingDown", f"removing {_names(name, extra)}", True)
    if outdated and update:
        if on_delete:
            msg = (
                f"{_names(name, outdated)} run {current}; delete them to update to {update} "
                "(updateStrategy OnDelete)"
            )
            return out(True, "UpdateWaitsForDelete", msg, False)
        due = [i for i in outdated if i >= partition]
        if due:
            msg = (
                f"updating {_names(name, due)} to revision {update} "
                f"({replicas - len(outdated)}/{replicas} updated)"
            )
            return out(False, "RolloutInProgress", msg, True)
        msg = (
            f"{_names(name, outdated)} stay on {current} (partition {partition}); "
            "lower the partition to finish the rollout"
        )
        return out(True, "PartitionHeld", msg, False)
    if update and current != update and not on_delete:
        # the StatefulSet controller records a finished RollingUpdate (currentRevision) only
        # after its last pod is ready; Ready waits for it so status never shows a stale revision
        msg = f"all pods ready on revision {update}; waiting for the StatefulSet to record it"
        return out(False, "RolloutInProgress", msg, True)
    return out(
        True, "AllPodsReady", f"{replicas}/{replicas} pods ready on revision {update}", False
    )
