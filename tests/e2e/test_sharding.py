"""Horizontal sharding (issue 24): replicas share the objects, a crashed replica's
objects move to the others once its Lease expires, and no object is written by two
replicas at once. The mode follows the cluster: ``selector`` where the API server has
KEP-5866's ShardedListAndWatch gate on (``MINOP_FEATURE_GATES=ShardedListAndWatch=true``
for hack/local-cluster.sh), ``label`` elsewhere. ``N`` (MINOP_SHARD_OBJECTS) is kept
small for ``make test``."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict

import pytest
import widgets
from test_operations import (  # noqa: F401 (fixtures)
    LEASE,
    OperatorProcess,
    elect_args,
    pid_of,
    plugin_env,
    processes,
)

from minop.kit.testing import wait_for
from minop.shard import BUCKETS, shard_selector

# in-process replicas against the API server: nothing here depends on pods running
pytestmark = [pytest.mark.apionly, pytest.mark.usefixtures("test_crds")]
N = int(os.environ.get("MINOP_SHARD_OBJECTS", "90"))


def create_many(kubectl, ns, names):
    items = [
        {
            "apiVersion": f"{widgets.WIDGET.group}/{widgets.WIDGET.version}",
            "kind": widgets.WIDGET.kind,
            "metadata": {"name": n, "namespace": ns},
            "spec": {"size": 1},
        }
        for n in names
    ]
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )


def creates(p: OperatorProcess) -> float:
    return p.metric("minop_hook_calls_total", plugin="ops-widgets", hook="minop_create")


def buckets(p: OperatorProcess) -> float:
    return p.metric("minop_shard_buckets_owned")


def ready(kubectl, ns, names) -> bool:
    got = json.loads(kubectl("get", "widgets", "-n", ns, "-o", "json").stdout)["items"]
    done = {
        o["metadata"]["name"]
        for o in got
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in o.get("status", {}).get("conditions", [])
        )
    }
    return set(names) <= done


def api_shards(kubectl, ns) -> bool:
    """Whether the API server filters lists by shardSelector (it echoes shardInfo)."""
    w = widgets.WIDGET
    path = f"/apis/{w.group}/{w.version}/namespaces/{ns}/{w.plural}"
    sel = shard_selector(range(BUCKETS))
    got = json.loads(kubectl("get", "--raw", f"{path}?limit=1&shardSelector={sel}").stdout)
    return bool(got["metadata"].get("shardInfo"))


def test_replicas_share_the_objects_and_take_over_a_crashed_ones(
    namespace,
    kubectl,
    tmp_path,
    plugin_env,  # noqa: F811
    processes,  # noqa: F811
    maybe_audit_log,
):
    ns = namespace
    args = [*elect_args(ns), "--shards", "auto", "--plugin", "ops-widgets"]
    replicas = [OperatorProcess(tmp_path, ns, *args, env=plugin_env) for _ in range(3)]
    processes += replicas
    wait_for(lambda: [buckets(p) for p in replicas] == [BUCKETS / 3] * 3, 60, "40 buckets each")
    mode = "selector" if api_shards(kubectl, ns) else "label"
    assert [p.metric("minop_shard_mode", mode=mode) for p in replicas] == [1, 1, 1]
    if mode == "selector":  # each replica's cache follows its hash ranges
        for p in replicas:
            wait_for(
                lambda p=p: "listing and watching buckets" in p.log.read_text(), 30, "refiltered"
            )

    names = [f"w{i}" for i in range(N)]
    create_many(kubectl, ns, names)
    wait_for(lambda: ready(kubectl, ns, names), 120, "every widget ready")
    shares = [creates(p) for p in replicas]
    assert sum(shares) == N, shares  # each object created by one replica, once
    for s in shares:  # a third each; loose at this N (the chaos suite checks ±15%)
        assert N / 3 * 0.5 <= s <= N / 3 * 1.5, shares

    # kill -9: its buckets move once its Lease expires
    crashed, survivors = replicas[0], replicas[1:]
    crashed.stop(signal.SIGKILL)
    killed = time.monotonic()
    more = [f"x{i}" for i in range(N // 3)]
    create_many(kubectl, ns, more)
    wait_for(lambda: [buckets(p) for p in survivors] == [BUCKETS / 2] * 2, LEASE + 20, "60 each")
    took = time.monotonic() - killed
    assert took < LEASE + 10, took  # the bound for the hand-over
    wait_for(lambda: ready(kubectl, ns, more), 60, "new widgets ready")

    if maybe_audit_log is not None:
        # per object, its writers never interleave: one replica's writes, then another's
        writers: dict[str, list[int]] = defaultdict(list)
        for e in sorted(maybe_audit_log.entries(), key=lambda e: e["requestReceivedTimestamp"]):
            ref = e.get("objectRef") or {}
            pid = pid_of(e)
            if pid is None or ref.get("namespace") != ns or ref.get("resource") != "widgets":
                continue
            if e.get("stage") != "ResponseComplete" or e.get("verb") in ("get", "list", "watch"):
                continue
            writers[ref["name"]].append(pid)
        assert set(writers) >= set(names)
        for name, pids in writers.items():
            runs = [p for i, p in enumerate(pids) if i == 0 or pids[i - 1] != p]
            assert len(runs) == len(set(runs)), f"{name}: interleaved writers {runs}"


def test_scaling_rebalances_and_an_edit_storm_loses_no_change(
    namespace,
    kubectl,
    tmp_path,
    plugin_env,  # noqa: F811
    processes,  # noqa: F811
):
    """3 -> 5 -> 2 replicas while every widget's spec is edited: the shares follow the
    replicas, and each widget's status ends at its last spec (no change lost)."""
    ns = namespace
    args = [*elect_args(ns), "--shards", "auto", "--plugin", "ops-widgets"]
    replicas = [OperatorProcess(tmp_path, ns, *args, env=plugin_env) for _ in range(3)]
    processes += replicas
    wait_for(lambda: [buckets(p) for p in replicas] == [BUCKETS / 3] * 3, 60, "40 buckets each")
    names = [f"s{i}" for i in range(N // 3)]
    create_many(kubectl, ns, names)
    wait_for(lambda: ready(kubectl, ns, names), 120, "every widget ready")

    def storm(size: int) -> None:
        for n in names:
            kubectl(
                "patch",
                "widget",
                n,
                "-n",
                ns,
                "--type=merge",
                "-p",
                json.dumps({"spec": {"size": size}}),
            )

    replicas += [OperatorProcess(tmp_path, ns, *args, env=plugin_env) for _ in range(2)]
    processes += replicas[3:]
    storm(2)
    wait_for(lambda: [buckets(p) for p in replicas] == [BUCKETS / 5] * 5, 60, "24 buckets each")
    for p in replicas[:3]:  # SIGTERM: released at once, not after the Lease expires
        assert p.stop() == 0
    storm(3)
    survivors = replicas[3:]
    wait_for(lambda: [buckets(p) for p in survivors] == [BUCKETS / 2] * 2, LEASE, "60 each")

    def converged() -> bool:
        got = json.loads(kubectl("get", "widgets", "-n", ns, "-o", "json").stdout)["items"]
        return all(o.get("status", {}).get("size") == 3 for o in got)

    wait_for(converged, 60, "every widget's status at its last spec")
