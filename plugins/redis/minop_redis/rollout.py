"""Status of a Redis from its StatefulSet and pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import minop
from minop import kinds
from minop import workloads as wl
from minop.kube import Obj

REVISION = "controller-revision-hash"


def ordinal(pod: Obj) -> int:
    return int(pod["metadata"]["name"].rsplit("-", 1)[1])


def synced(sts: Obj | None, template_hash: str) -> bool:
    """The StatefulSet controller has seen the template we last applied."""
    if sts is None:
        return False
    annotations = sts["spec"]["template"]["metadata"].get("annotations") or {}
    observed = (sts.get("status") or {}).get("observedGeneration")
    return annotations.get("minop.dev/config-hash") == template_hash and observed == sts[
        "metadata"
    ].get("generation")


def everyone_updated(ctx: minop.Context, sts: Obj | None, template_hash: str) -> bool:
    """Every pod runs the current template's revision and is ready."""
    if not synced(sts, template_hash):
        return False
    assert sts is not None
    want = int(sts["spec"].get("replicas", 0))
    revision = (sts.get("status") or {}).get("updateRevision")
    pods = [p for p in ctx.children(kinds.POD) if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == want and all(
        p["metadata"]["labels"].get(REVISION) == revision and wl.pod_ready(p) for p in pods
    )


def status(
    ctx: minop.Context, spec: Mapping[str, Any], sts: Obj | None, template_hash: str
) -> dict[str, Any]:
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("updateStrategy") or {}
    # OnDelete updates nothing by itself: like a fully held partition
    partition = (
        replicas if strategy.get("type") == "OnDelete" else int(strategy.get("partition", 0))
    )
    st = (sts or {}).get("status") or {}
    update, current = st.get("updateRevision"), st.get("currentRevision")
    ready, names = wl.report_pods(ctx, replicas)
    pods = [p for p in ctx.children(kinds.POD) if not p["metadata"].get("deletionTimestamp")]
    if ready >= replicas:
        behind = sorted(
            p["metadata"]["name"]
            for p in pods
            if ordinal(p) >= partition and p["metadata"]["labels"].get(REVISION) != update
        )
        if not synced(sts, template_hash) or behind:
            msg = f"updating {', '.join(behind) or 'the StatefulSet'} to revision {update}"
            ctx.condition("Ready", False, "RolloutInProgress", msg)
            ctx.condition("Progressing", True, "RollingOut", msg)
        elif update != current and partition > 0:
            held = f"pods below ordinal {partition} stay on {current} (partition held)"
            ctx.condition("Progressing", False, "PartitionHeld", held)
    out: dict[str, Any] = {
        "readyReplicas": ready,
        "podNames": names,
        "selector": wl.selector_string(ctx.selector),
        "primary": f"{ctx.name}-0" if replicas > 0 else None,
    }
    if update:
        out["updateRevision"] = update
    if current:
        out["currentRevision"] = current
    return out
