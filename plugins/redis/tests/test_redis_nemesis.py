"""A short randomised nemesis run (nemesis.py) in the unit suite: a few faults on
one server a day, in turn (MINOP_NEMESIS_SERVER picks one, MINOP_NEMESIS_SEED
replays a run). The long run is tests/chaos/test_redis_nemesis.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nemesis
import pytest
from redis_servers import SERVERS, Server, install

FAILOVER_CAPABLE = [s for s in SERVERS if not s.startswith("redis-6.0")]


@pytest.fixture
def todays_server() -> Iterator[Server]:
    choice = os.environ.get("MINOP_NEMESIS_SERVER") or nemesis.version_of_the_day(FAILOVER_CAPABLE)
    top = Path(tempfile.mkdtemp(prefix=f"minop-nemesis-{choice}-"))
    top.chmod(0o755)
    try:
        yield install(choice, top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_short_nemesis_run_loses_no_acknowledged_write(todays_server: Server) -> None:
    report = nemesis.replay(todays_server, faults=3, kinds=nemesis.FAULTS)
    assert not report.problems(), f"{report.summary()}: {report.problems()}"


def test_a_cold_start_with_a_stale_or_empty_pod_0_loses_no_acknowledged_write(
    todays_server: Server,
) -> None:
    report = nemesis.replay(todays_server, faults=1, kinds=nemesis.COLD)
    assert not report.lost, f"{report.summary()}: {report.problems()}"


def test_rollouts_and_scaling_under_writes_lose_no_acknowledged_write(
    todays_server: Server,
) -> None:
    """Two rollouts (the operator's ticks and the StatefulSet's order:
    nemesis_operations.rolling; the second from a primary off pod 0) and two scales
    3 -> 4 -> 3 (the second onto the claim the first left: the long run once failed
    there): every write kept, never two write-accepting primaries."""
    schedule = (nemesis.ROLLOUT + nemesis.SCALE) * 2
    report = nemesis.replay(todays_server, faults=len(schedule), schedule=schedule)
    assert not report.problems(), f"{report.summary()}: {report.problems()}"


def test_with_ordered_ready_a_cold_start_still_ends_with_a_primary(todays_server: Server) -> None:
    """OrderedReady starts pod 0 alone, before any other pod can tell it what it recorded:
    the cold start stays as it was (pod 0 primary: acknowledged writes may be lost, see
    the README) rather than never finishing (pod 0 a replica, never Ready, of a primary
    that would only start after it). ``run`` fails unless the pods settle after it."""
    report = nemesis.replay(
        todays_server, faults=1, kinds=nemesis.COLD, spec={"podManagementPolicy": "OrderedReady"}
    )
    assert len(report.faults) == 1, report.summary()
