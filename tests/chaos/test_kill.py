"""kill -9 mid-burst: objects are being created while the operator is killed with
SIGKILL at random moments (during the initial list, inside hooks, between a child write
and the status write) and restarted each time. Afterwards every object converges, each
has exactly its children (none twice, no orphan), no hook saw a second create for an
object whose create was already recorded, and deleting everything leaves nothing stuck."""

from __future__ import annotations

import functools
import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaosops import (
    OperatorProcess,
    children_census,
    creates,
    double_creates,
    items,
    plugin_env,
    wait_converged,
    writes_by,
)

from minop.kit.testing import wait_for

REPO = Path(__file__).resolve().parents[2]

MEMCACHED, REDIS = "memcacheds.cache.minop.dev", "redises.cache.minop.dev"
# How many children of each kind every object has at one replica (no PDB: only above one;
# Redis: a headless and a client Service).
CHILDREN = {
    MEMCACHED: {"deployments": 1, "services": 1},
    REDIS: {"statefulsets": 1, "services": 3, "configmaps": 1},  # <name>, -headless, -replicas
}


def manifest(kind: str, name: str) -> dict[str, Any]:
    spec = {"size": 1} if kind == "Memcached" else {"replicas": 1}
    meta = {"name": name}
    return {"apiVersion": "cache.minop.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


def kill_burst(
    api: Any,
    namespace: str,
    tmp_path: Any,
    audit_log: Any,
    figures: Any,
    *,
    memcached: int,
    redis: int,
    kills: int,
    seed: int,
    timeout: float,
) -> None:
    rng = random.Random(seed)
    figures.note(f"seed {seed}: {memcached} Memcached + {redis} Redis, {kills} SIGKILLs")
    wanted = [("Memcached", f"mc-{i}") for i in range(memcached)]
    wanted += [("Redis", f"rd-{i}") for i in range(redis)]
    rng.shuffle(wanted)
    errors: list[BaseException] = []

    def create_all() -> None:
        try:
            for kind, name in wanted:
                res = MEMCACHED if kind == "Memcached" else REDIS
                api.request("POST", api.resource_path(res, namespace), manifest(kind, name))
        except BaseException as e:  # surfaces in the test thread below
            errors.append(e)

    op = OperatorProcess(
        tmp_path,
        ["-n", namespace, "--plugin", "chaos-memcached", "--plugin", "chaos-redis"],
        env=plugin_env(tmp_path),
    )
    creator = threading.Thread(target=create_all, daemon=True)
    creator.start()
    op.start()
    resources = [MEMCACHED] + ([REDIS] if redis else [])
    try:
        for _ in range(kills):
            # A random amount of work into this run: its Nth write, N in 0..60 (0: during
            # the initial list, before any write).
            target = rng.randint(0, 60)
            wait_for(
                lambda pid=op.pid, n=target: (
                    len(writes_by(audit_log, pid, namespace)) >= n or op.exited()
                ),
                timeout,
                f"{target} writes by pid {op.pid}",
                interval=0.3,
            )
            assert not op.exited(), op.log_text()[-3000:]
            op.kill()
            figures.fault()
            t0 = time.monotonic()
            op.start()
            wait_for(lambda: op.get("/readyz")[0] == 200, 120, "readyz after the restart")
            figures.recovered(time.monotonic() - t0)
        creator.join(timeout)
        assert not errors, errors
        t0 = time.monotonic()
        wait_converged(api, resources, namespace, timeout)
        figures.note(f"converged {time.monotonic() - t0:.1f}s after the last restart")

        objs = {r: items(api, r, namespace) for r in resources}
        names = {o["metadata"]["name"] for os_ in objs.values() for o in os_}
        figures.lost = len({n for _, n in wanted} - names)
        owners = {o["metadata"]["uid"]: o["metadata"]["name"] for os_ in objs.values() for o in os_}
        kinds = sorted({k for r in resources for k in CHILDREN[r]})
        per, orphans = children_census(api, namespace, owners, kinds)
        missing: list[Any] = []
        twice: list[Any] = []
        for r in resources:
            for o in objs[r]:
                for kind, want in CHILDREN[r].items():
                    n = per[(kind, o["metadata"]["name"])]
                    if n != want:
                        (missing if n < want else twice).append((kind, n, o["metadata"]["name"]))
        seen = creates(tmp_path)
        doubles = double_creates(tmp_path)
        figures.duplicates = len(twice) + len(orphans) + len(doubles)
        figures.note(
            f"{len(seen)} minop_create calls for {len(names)} objects "
            f"({sum(1 for c in seen if c[1] == 'again')} repeated after a kill before the "
            f"spec was recorded, {len(doubles)} double creates)"
        )
        assert figures.lost == 0
        assert not missing and not twice and not orphans, (missing[:5], twice[:5], orphans[:5])
        assert not doubles, doubles[:10]

        # Nothing is stuck with a finalizer: every object goes once deleted.
        for r in resources:
            delete_collection(api, r, namespace)
        wait_for(
            lambda: not any(items(api, r, namespace) for r in resources),
            timeout,
            "every object deleted",
            interval=1.0,
        )
        assert not op.exited(), op.log_text()[-3000:]
    finally:
        op.stop()


def delete_collection(api: Any, resource: str, namespace: str) -> None:
    """Delete every ``resource`` in ``namespace``. Hundreds take longer than the client's
    30 s default, and on a loaded machine longer than kube-apiserver's own 60 s request
    timeout, which it answers with a 504 or by closing the connection: what it deleted
    stays deleted, so the request is made again."""
    for _ in range(10):
        try:
            conn, resp = api.connect("DELETE", api.resource_path(resource, namespace), timeout=600)
        except http.client.RemoteDisconnected:
            continue
        try:
            if resp.status != 504:
                assert resp.status < 400, resp.read()[:500]
                return
        finally:
            conn.close()
    raise AssertionError(f"delete of every {resource} timed out 10 times")


@pytest.fixture
def room_for_600_pods(kubectl: Any, namespace: str) -> Iterator[None]:
    """Two more KWOK nodes of 300 pods each (the local cluster's three hold 110 each,
    fewer than the burst's pods), removed afterwards."""
    names = [f"chaos-{namespace[-4:]}-{i}" for i in range(2)]
    template = (REPO / "hack" / "kwok-node.yaml").read_text().replace('pods: "110"', 'pods: "300"')
    docs = "\n---\n".join(template.replace("NAME", n) for n in names)
    kubectl("apply", "-f", "-", input=docs)

    def usable() -> bool:
        nodes = [json.loads(kubectl("get", "node", n, "-o", "json").stdout) for n in names]
        return all(
            not n["spec"].get("taints")
            and any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
            for n in nodes
        )

    wait_for(usable, 120, "the extra KWOK nodes Ready and untainted", interval=1.0)
    yield
    kubectl("delete", "node", *names, "--ignore-not-found", check=False)


@pytest.fixture
def burst(
    api: Any, namespace: str, tmp_path: Path, audit_log: Any, figures: Any
) -> Callable[..., None]:
    """``burst(memcached=, redis=, kills=, timeout=)``: ``kill_burst`` in this test's
    namespace, with a new random seed (noted in its figures)."""
    return functools.partial(
        kill_burst, api, namespace, tmp_path, audit_log, figures, seed=random.randrange(1 << 30)
    )


@pytest.mark.chaos_fast
def test_kill_9_once_mid_burst(plugin_crds, burst):
    burst(memcached=20, redis=2, kills=1, timeout=240)


def test_kill_9_ten_times_while_500_memcached_and_20_redis_are_created(
    plugin_crds, room_for_600_pods, burst
):
    burst(memcached=500, redis=20, kills=10, timeout=900)
