"""`kubectl scale` of a Redis with failover restarts no pod (kind, real pods): the
Sentinel peers and the quorum follow spec.replicas in the ConfigMap, not the pod
template; the running Sentinels discover the new pod's Sentinel themselves, the operator
sets the new quorum, and on the way back resets the Sentinels that still count the
removed one. The same on local processes, then a crash failover:
test_redis_real_sentinel_ids.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
PW = "scale-e2e"


def test_scale_3_4_3_with_failover_restarts_no_existing_pod(namespace, kubectl, client):
    ns = namespace
    redis_with_password(kubectl, ns, PW, replicas=3, sentinel={"enabled": True})

    def listed(*what: str) -> list[Any]:
        return list(json.loads(kubectl("get", *what, "-n", ns, "-o", "json").stdout)["items"])

    def pods() -> dict[str, Any]:
        """name -> (uid, restarts of each container), for the pods that are not going."""
        out = {}
        for p in listed("pods", "-l", "app.kubernetes.io/instance=r"):
            if p["metadata"].get("deletionTimestamp"):
                continue
            restarts = sorted(
                (c["name"], c["restartCount"]) for c in p["status"].get("containerStatuses", [])
            )
            out[p["metadata"]["name"]] = (p["metadata"]["uid"], restarts)
        return out

    def sentinels_agree(n: int) -> bool:
        """Every pod's Sentinel counts n - 1 others and n - 1 replicas, quorum n // 2 + 1."""
        want = {"num-other-sentinels": n - 1, "num-slaves": n - 1, "quorum": n // 2 + 1}
        for i in range(n):
            host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
            out = client(
                "timeout", "5", "redis-cli", "-h", host, "-p", "26379", "-a", PW,
                "--no-auth-warning", "SENTINEL", "MASTER", "r",
            ).splitlines()  # fmt: skip
            fields = dict(zip(out[::2], out[1::2], strict=False))
            if any(fields.get(k) != str(v) for k, v in want.items()):
                return False
        return True

    def replicas_ready(n: int) -> None:
        kubectl("wait", f"--for=jsonpath={{.status.readyReplicas}}={n}", "statefulset/r",
                "-n", ns, "--timeout=300s", timeout=330)  # fmt: skip

    wait_for(lambda: sentinels_agree(3), 60, "3 Sentinels agreeing", 1)
    before = pods()
    assert sorted(before) == ["r-0", "r-1", "r-2"]

    kubectl("scale", "redis/r", "-n", ns, "--replicas=4")
    replicas_ready(4)
    wait_for(lambda: sentinels_agree(4), 90, "4 Sentinels with quorum 3", 1)
    after_up = pods()
    assert {k: after_up[k] for k in before} == before, "a scale up restarted a pod"

    kubectl("scale", "redis/r", "-n", ns, "--replicas=3")
    wait_for(lambda: sorted(pods()) == ["r-0", "r-1", "r-2"], 300, "r-3 gone", 1)
    replicas_ready(3)
    wait_for(lambda: sentinels_agree(3), 90, "3 Sentinels with quorum 2 again", 1)
    assert pods() == before, "a scale down restarted a pod"
    reasons = {e["reason"] for e in listed("events", "--field-selector=involvedObject.name=r")}
    assert "SentinelQuorum" in reasons, reasons
