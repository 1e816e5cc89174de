"""The long Redis nemesis run (plugins/redis/tests/nemesis.py): many faults on every
failover-capable server this machine has, each with its own printed seed
(MINOP_NEMESIS_SEED replays one). Needs no cluster: the pods are local processes."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from results import Figures

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "redis" / "tests"))

import nemesis
from redis_servers import SERVERS, install

FAULTS = int(os.environ.get("MINOP_NEMESIS_FAULTS", "20"))


@pytest.mark.parametrize("server_id", [s for s in SERVERS if not s.startswith("redis-6.0")])
def test_redis_nemesis_long_run(server_id: str, figures: Figures) -> None:
    top = Path(tempfile.mkdtemp(prefix=f"minop-nemesis-{server_id}-"))
    top.chmod(0o755)
    try:
        kinds = nemesis.FAULTS + nemesis.COLD + nemesis.ROLLOUT + nemesis.SCALE
        report = nemesis.replay(install(server_id, top), faults=FAULTS, kinds=kinds)
    except Exception as e:  # e.g. a wait that timed out: the results say which
        figures.note(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        raise
    finally:
        shutil.rmtree(top, ignore_errors=True)
    figures.fault(len(report.faults))
    for s in report.to_new_primary:
        figures.recovered(s)
    figures.lost = len(report.lost)
    figures.note(report.summary())
    figures.sections["nemesis"] = (
        "| server | seed | faults | failovers | max time to a new primary | writes acknowledged "
        "| acknowledged writes lost | samples with two write-accepting primaries |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {report.version} | {report.seed} | {len(report.faults)} | {len(report.to_new_primary)} "
        f"| {max(report.to_new_primary, default=0):.1f}s | {report.acknowledged} "
        f"| {len(report.lost)} | {len(report.two_primaries)} |"
    )
    assert not report.problems(), f"{report.summary()}: {report.problems()}"
