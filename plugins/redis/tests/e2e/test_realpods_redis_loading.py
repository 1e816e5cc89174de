"""A replica loading a full resync for longer than its liveness probe's whole failure
window (kind, real pods): it goes NotReady (readiness is strict) and is never restarted
(liveness accepts LOADING), then serves every key. Loading is slowed with Redis's own
``key-load-delay``, so a small data set stands for a large one; the real-binary
version of the probes' answers is in plugins/redis/tests/test_redis_real_replication.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.e2e.deployment import get
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
Kubectl = Callable[..., Any]
PW = "loading-e2e"
DELAY_US = 10_000  # per key loaded: 10 ms
VALUE = 1024  # bytes: ~64 keys (0.6 s) per 64 kB chunk, between which a loading server answers


def test_a_replica_loading_longer_than_its_liveness_window_is_not_restarted(namespace, kubectl):
    ns = namespace
    config = {"key-load-delay": str(DELAY_US), "loading-process-events-interval-bytes": "65536"}
    # r-1 takes a write while detached (below), as a lone primary: minReplicasToWrite's
    # default (1) would refuse it
    # and the test's client runs CONFIG SET and REPLICAOF, which clients may not by default
    redis_with_password(
        kubectl, ns, PW, replicas=2, config=config, minReplicasToWrite=0,
        auth={"clientCommands": "+@all"},
    )  # fmt: skip
    pod = next(
        c for c in get(kubectl, ns, "statefulset/r")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "redis"
    )  # fmt: skip
    live = pod["livenessProbe"]
    window = live["periodSeconds"] * live["failureThreshold"]  # a strict probe kills after this
    keys = int((window + 40) / (DELAY_US / 1e6))  # loading outlasts the window by 40 s

    def sh(name: str, script: str, *args: str) -> str:
        """``script`` in the pod's redis container, as the default user (its password in
        REDISCLI_AUTH)."""
        script = f'export REDISCLI_AUTH="$0"; {script}'
        return kubectl(
            "exec", "-n", ns, name, "-c", "redis", "--", "sh", "-c", script, PW, *args
        ).stdout.strip()

    def restarts() -> int:
        statuses = get(kubectl, ns, "pod/r-1")["status"]["containerStatuses"]
        return next(c["restartCount"] for c in statuses if c["name"] == "redis")

    def in_sync(count: int) -> bool:
        """r-1 follows r-0, its first sync done, holding ``count`` keys (Ready says only
        that it answers: its first sync may still be pending)."""
        out = sh("r-1", "redis-cli INFO replication; redis-cli DBSIZE").splitlines()
        return "master_link_status:up" in [x.strip() for x in out] and out[-1] == str(count)

    wait_for(lambda: in_sync(0), 180, "r-1 in sync with the empty r-0", 1)
    fill = f"for i = 1, {keys} do redis.call('set', 'k' .. i, string.rep('x', {VALUE})) end"
    # uncompressed, so the snapshot's chunks hold the keys the delay is sized for
    script = 'redis-cli CONFIG SET rdbcompression no && redis-cli EVAL "$1" 0'
    assert sh("r-0", script, fill).splitlines()[0] == "OK"
    wait_for(lambda: in_sync(keys), 120, "r-1 streaming the keys", 1)
    before = restarts()

    # a full resync: r-1 leaves, takes a write (its offset passes the primary's, so no
    # partial resync can serve it) and follows the primary again
    diverge = (
        'set -- $(redis-cli ROLE | sed -n "2p;3p"); '
        'redis-cli REPLICAOF NO ONE && redis-cli SET diverged 1 && redis-cli REPLICAOF "$1" "$2"'
    )
    assert sh("r-1", diverge).splitlines() == ["OK", "OK", "OK"]
    wait_ready = ["wait", "-n", ns, "pod/r-1", "--timeout=120s", "--for=condition=Ready=false"]
    kubectl(*wait_ready, timeout=150)
    went_down = time.monotonic()
    assert "loading:1" in sh("r-1", "redis-cli INFO persistence")
    budget = 2 * keys * DELAY_US / 1e6 + 120
    wait_ready[-2:] = [f"--timeout={budget:.0f}s", "--for=condition=Ready"]
    kubectl(*wait_ready, timeout=budget + 30)
    not_ready = time.monotonic() - went_down
    print(
        f"{keys} keys: r-1 NotReady while loading for {not_ready:.0f}s (liveness window {window}s)"
    )

    # the test could fail: a probe that refused LOADING had the whole window to kill it
    assert not_ready > window, f"loaded in {not_ready:.0f}s: too fast to prove anything"
    assert restarts() == before
    assert sh("r-1", "redis-cli DBSIZE; redis-cli STRLEN k1").splitlines() == [
        str(keys),
        str(VALUE),
    ]  # diverged is gone
