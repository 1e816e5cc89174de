"""The nemesis's faults that are operations on every pod (nemesis.py runs them): a
cold start, a rollout as the StatefulSet controller and the operator's timer drive
it, and a scale up and back down."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from minop_redis import rollout as order
from operator_view import operator_rollout_tick, pods_on, sentinels_agree
from redis_pod import wait
from redis_pods import Cluster
from redis_servers import AS_ROOT

TICK_S = 0.5  # between the operator's ticks here (its timer: 2 s)


def cold_start(c: Cluster, rng: random.Random, acked: Callable[[], int], seed: int) -> str:
    """Pod 0 away (deleted; a hand-over first if it was primary) while the others
    take writes (``acked``: how many so far); then every pod deleted at once and
    created again as the StatefulSet does (podManagementPolicy: all at once, or in
    order), with fresh Sentinels and, for ``empty``, pod 0 on an empty volume."""
    empty = rng.random() < 0.5
    c.pods[0].delete()
    before = acked()
    wait(lambda: acked() >= before + 20, f"writes without pod 0 (seed {seed})", 60)
    stops = [threading.Thread(target=p.delete) for p in c.pods[1:]]
    for t in stops:
        t.start()
    for t in stops:
        t.join()
    if empty:
        shutil.rmtree(c.pods[0].data)
        c.pods[0].data.mkdir()
        if AS_ROOT:
            os.chown(c.pods[0].data, c.uid, c.gid)
    for p in c.pods:
        p.wipe_run()
    if c.pod_management == "Parallel":
        with ThreadPoolExecutor(len(c.pods)) as pool:
            for started in [pool.submit(p.start) for p in c.pods]:
                started.result()  # its failure, if any
    else:  # OrderedReady: each once the previous one is ready
        for p in c.pods:
            p.start()
            wait(p.probe, f"{p.name} to be ready (seed {seed})", 60)
    return f"cold start, pod 0 {'on an empty volume' if empty else 'stale'}"


_rollouts = 0


def statefulset(template: str, update: str) -> dict[str, Any]:
    """What the operator reads of the StatefulSet: the template it applied last, and
    the revision the controller updates to."""
    annotations = {order.TEMPLATE_HASH: template}
    return {"metadata": {"annotations": annotations}, "status": {"updateRevision": update}}


def rolling(c: Cluster, rng: random.Random, seed: int) -> str:
    """The pod template changes (revision a -> b): the operator's ticks hold the
    partition and hand the primary over to pod 0 if it sits elsewhere; then the
    controller replaces the pods from the highest ordinal down, each ready before
    the next (its preStop hook hands over if it is the primary), the operator
    setting the replicas' priorities after each. ``slow`` (half the rollouts): each
    replaced pod loads its data 1 ms per key, so it is not Ready for a while after
    it answers (a resync outlasting the startup probe)."""
    slow = rng.random() < 0.5
    global _rollouts
    _rollouts += 1
    key = f"nemesis-{seed}-{_rollouts}"  # the hold is per template
    revisions = ["a"] * len(c.pods)
    applied = statefulset(f"{key}-old", "a")
    deadline = time.monotonic() + order.HOLD_S
    first = None
    while True:  # until the operator releases the partition
        primary, target = operator_rollout_tick(c, pods_on("".join(revisions)), applied, key)
        first = first or primary
        if target is None:
            break
        assert time.monotonic() < deadline, f"seed {seed}: the hold outlived HOLD_S"
        time.sleep(TICK_S)
    sts = statefulset(key, "b")
    for p in reversed(c.pods):
        p.delete()
        p.wipe_run()
        p.start(slow_load=slow)
        revisions[p.ordinal] = "b"
        wait(p.probe, f"{p.name} ready after its replacement (seed {seed})", 120)
        operator_rollout_tick(c, pods_on("".join(revisions)), sts, key)
    return f"rollout{' loading slowly' if slow else ''} (primary {first} before)"


def scaling(c: Cluster, seed: int) -> str:
    """spec.replicas 3 -> 4 -> 3 (the ConfigMap follows, the pods stay): the new pod
    replicates and its Sentinel joins; scaled back, the operator's ticks reset the
    Sentinels that count the removed one and set the quorum back."""
    n = len(c.pods)

    c.scale(n + 1)
    wait(lambda: sentinels_agree(c, n + 1), f"{n + 1} Sentinels agreeing (seed {seed})", 90)
    c.scale(n)
    wait(lambda: sentinels_agree(c, n), f"{n} Sentinels agreeing again (seed {seed})", 90)
    return f"scale {n} -> {n + 1} -> {n}"
