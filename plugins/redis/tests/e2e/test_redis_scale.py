"""Redis scaling: 3 -> 5 adds r-3 then r-4; 5 -> 2 removes r-4, r-3, r-2 in that order;
the removed pods' PVCs are kept (whenScaled: Retain) or deleted (Delete)."""

from __future__ import annotations

from typing import Any

import pytest
from test_redis import (
    added_since,
    apply_redis,
    deleted_index,
    get,
    live_pods,
    names_ready_before_added,
    operator,
    patch_redis,
    pod_watch,
    pvcs,
    redis_crd,  # noqa: F401 (the fixture)
    uids,
    wait_ready,
)

from minop.kit.testing import wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")
# seconds for pods and claims to come or go: on kind each added pod is a provisioned
# volume and a started Redis, one after the other (OrderedReady), on a busy node
PODS = 240


@pytest.mark.parametrize("when_scaled", ["Retain", "Delete"])
def test_scale_up_and_down_in_order_with_pvc_retention(namespace, kubectl, watch, when_scaled):
    ns = namespace
    with operator(ns):
        # the order is OrderedReady's (the default is Parallel: all at once)
        r = apply_redis(
            kubectl,
            ns,
            "r",
            replicas=3,
            podManagementPolicy="OrderedReady",
            pvcRetention={"whenScaled": when_scaled},
        )
        assert r.returncode == 0, r.stderr
        wait_ready(kubectl, ns, "r")
        before = set(uids(kubectl, ns).values())
        pods = pod_watch(watch, ns)

        # through the /scale subresource, as `kubectl scale` and an HPA do
        kubectl("scale", "redis/r", "-n", ns, "--replicas=5")
        wait_for(lambda: sorted(live_pods(kubectl, ns)) == [f"r-{i}" for i in range(5)], PODS, "5")
        wait_ready(kubectl, ns, "r")
        assert added_since(pods, before) == ["r-3", "r-4"]
        names_ready_before_added(pods, 2, 4)
        wait_for(lambda: len(pvcs(kubectl, ns)) == 5, PODS, "5 PVCs Bound")
        wait_status_replicas(kubectl, ns, 5)
        assert get(kubectl, ns, "redis/r")["status"]["podNames"] == [f"r-{i}" for i in range(5)]

        uid = uids(kubectl, ns)
        assert patch_redis(kubectl, ns, "r", {"replicas": 2}).returncode == 0
        wait_for(lambda: sorted(live_pods(kubectl, ns)) == ["r-0", "r-1"], PODS, "2 pods")
        wait_for(lambda: len(pods.names("DELETED")) == 3, 30, "3 pods DELETED")
        assert pods.names("DELETED") == ["r-4", "r-3", "r-2"]
        # OrderedReady: each pod is gone before the next one starts terminating
        for gone, nxt in (("r-4", "r-3"), ("r-3", "r-2")):
            finished = pods.first_index(
                lambda t, o, g=gone: t == "DELETED" and o["metadata"]["name"] == g
            )
            started = deleted_index(pods, nxt, uid[nxt])
            assert finished is not None and started is not None and finished < started
        wait_ready(kubectl, ns, "r")
        wait_status_replicas(kubectl, ns, 2)
        assert get(kubectl, ns, "redis/r")["status"]["podNames"] == ["r-0", "r-1"]

        if when_scaled == "Retain":
            # nothing owns the scaled-down claims (with Delete the StatefulSet controller
            # makes their pods their owners), so nothing will delete them later
            assert pvcs(kubectl, ns) == [f"data-r-{i}" for i in range(5)]
            for i in range(2, 5):
                pvc = get(kubectl, ns, f"pvc/data-r-{i}")
                assert not pvc["metadata"].get("ownerReferences"), pvc["metadata"]
        else:
            kept = ["data-r-0", "data-r-1"]
            wait_for(lambda: pvcs(kubectl, ns, bound=False) == kept, PODS, "scaled PVCs deleted")

        # scaling back up reuses the retained claims (same PVC, same volume)
        if when_scaled == "Retain":
            volume = get(kubectl, ns, "pvc/data-r-2")["spec"]["volumeName"]
            assert patch_redis(kubectl, ns, "r", {"replicas": 3}).returncode == 0
            wait_ready(kubectl, ns, "r")
            assert get(kubectl, ns, "pvc/data-r-2")["spec"]["volumeName"] == volume


def wait_status_replicas(kubectl: Any, ns: str, n: int) -> None:
    """The status counts ``n`` pods. Ready can be True already (it was before the scale):
    the pass that follows the last pod's event writes the count a moment later (child
    events join a short batching window), so wait on the watch for it, not on Ready."""
    kubectl("wait", f"--for=jsonpath={{.status.replicas}}={n}", "redis/r", "-n", ns,
            "--timeout=60s", timeout=90)  # fmt: skip
