"""Redis rolling update with a partition: 4, 3, 2 replaced in order, each Ready on the
update revision before the next goes; 0 and 1 stay; Ready while the partition holds;
lowering it finishes; `kubectl rollout history`; reverting returns to the old revision."""

from __future__ import annotations

import itertools

import pytest
from test_redis import (
    REV,
    apply_redis,
    condition,
    deleted_index,
    get,
    is_ready,
    live_pods,
    operator,
    patch_redis,
    pod_watch,
    redis_crd,  # noqa: F401 (the fixture)
    revisions,
    wait_ready,
)
from test_redis import uids as pod_uids  # `uids` is a local name below

from minop.kit.testing import wait_for

# another image of Redis, also on the kind nodes (hack/kind/app-images.sh; nothing can be
# pulled there): tests that change spec.image switch to it
OTHER_IMAGE = "minop/redis:7"

pytestmark = pytest.mark.usefixtures("redis_crd")


def replaced_in_order(pods, uids, order, update):
    """Each old pod in ``order`` started going away only after the previous one was
    back Ready on ``update``."""
    for prev, nxt in itertools.pairwise(order):
        back = pods.first_index(
            lambda t, o, p=prev: (
                o["metadata"]["name"] == p
                and o["metadata"]["uid"] != uids[p]
                and o["metadata"]["labels"].get(REV) == update
                and is_ready(o)
            )
        )
        going = deleted_index(pods, nxt, uids[nxt])
        assert back is not None and going is not None, (prev, nxt, back, going)
        assert back < going, f"{nxt} was deleted before the new {prev} was Ready"
    starts = [deleted_index(pods, n, uids[n]) for n in order]
    assert starts == sorted(starts), f"deletions out of order: {order} {starts}"


def test_partitioned_rolling_update_history_and_revert(namespace, kubectl, watch):
    ns = namespace
    with operator(ns):
        rolling = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        r = apply_redis(kubectl, ns, "r", replicas=5, image="redis:7.2.5", updateStrategy=rolling)
        assert r.returncode == 0, r.stderr
        # real pods, each on a freshly provisioned volume
        wait_ready(kubectl, ns, "r", timeout=300)
        first = get(kubectl, ns, "statefulset/r")["status"]["currentRevision"]
        uids = pod_uids(kubectl, ns)
        pods = pod_watch(watch, ns)

        assert patch_redis(kubectl, ns, "r", {"image": OTHER_IMAGE}).returncode == 0

        def updated():
            sts = get(kubectl, ns, "statefulset/r")["status"]
            revs = revisions(kubectl, ns)
            update = sts.get("updateRevision")
            done = sorted(n for n, v in revs.items() if v == update)
            return update if update != first and done == ["r-2", "r-3", "r-4"] else None

        second = wait_for(updated, 240, "pods 4, 3, 2 on the update revision")
        # the CR is Ready with the partition held: `kubectl wait` does not hang
        wait_ready(kubectl, ns, "r")
        ready = condition(kubectl, ns, "r")
        assert ready["reason"] == "PartitionHeld" and "r-0, r-1" in ready["message"]
        assert condition(kubectl, ns, "r", "Progressing")["status"] == "False"
        replaced_in_order(pods, uids, ["r-4", "r-3", "r-2"], second)
        live = live_pods(kubectl, ns)
        for n in ("r-0", "r-1"):  # never touched, still on the current revision
            assert live[n]["metadata"]["uid"] == uids[n]
            assert live[n]["metadata"]["labels"][REV] == first
        status = get(kubectl, ns, "redis/r")["status"]
        assert status["currentRevision"] == first and status["updateRevision"] == second
        assert status["updatedReplicas"] == 3

        # lowering the partition finishes the rollout: 1 then 0
        lower = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}
        assert patch_redis(kubectl, ns, "r", lower).returncode == 0
        wait_for(lambda: set(revisions(kubectl, ns).values()) == {second}, 240, "all on update")
        # the last pod on the new revision still has to sync from the primary before it is ready
        wait_for(
            lambda: condition(kubectl, ns, "r")["reason"] == "AllPodsReady", 180, "rollout done"
        )
        replaced_in_order(pods, uids, ["r-1", "r-0"], second)
        # Ready waits for the StatefulSet to record the finished rollout, and status is
        # written with the condition: no stale currentRevision once AllPodsReady shows
        status = get(kubectl, ns, "redis/r")["status"]
        assert status["currentRevision"] == status["updateRevision"] == second

        history = kubectl("rollout", "history", "statefulset/r", "-n", ns).stdout
        numbers = [int(line.split()[0]) for line in history.splitlines() if line[:1].isdigit()]
        assert len(numbers) >= 2, history
        detail = kubectl(
            "rollout", "history", "statefulset/r", "-n", ns, f"--revision={max(numbers)}"
        ).stdout
        assert OTHER_IMAGE in detail

        # reverting the image goes back to the first revision (same ControllerRevision)
        assert patch_redis(kubectl, ns, "r", {"image": "redis:7.2.5"}).returncode == 0
        wait_for(lambda: set(revisions(kubectl, ns).values()) == {first}, 300, "back on first")
        wait_ready(kubectl, ns, "r")
        # the status follows the StatefulSet's in the pass after its event (a batching
        # window later): wait on the watch, Ready was True all along
        kubectl("wait", f"--for=jsonpath={{.status.updateRevision}}={first}", "redis/r",
                "-n", ns, "--timeout=60s", timeout=90)  # fmt: skip
        after = kubectl("rollout", "history", "statefulset/r", "-n", ns).stdout
        newest = max(int(line.split()[0]) for line in after.splitlines() if line[:1].isdigit())
        detail = kubectl(
            "rollout", "history", "statefulset/r", "-n", ns, f"--revision={newest}"
        ).stdout
        assert "redis:7.2.5" in detail  # the old revision, renumbered as the newest
