"""Fixtures of the real-program checks: every supported server (redis_servers.py),
and Redis "clusters" of local processes (redis_pods.py) on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_pods import Cluster
from redis_servers import SERVERS, Server, install


@pytest.fixture(scope="session", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    top = Path(tempfile.mkdtemp(prefix=f"minop-{request.param}-"))
    top.chmod(0o755)
    try:
        yield install(request.param, top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def make_cluster(server: Server) -> Iterator[Callable[[dict[str, Any]], Cluster]]:
    # not pytest's tmp_path: its parents are 0700, out of reach of the pod's user
    top = Path(tempfile.mkdtemp(prefix="minop-redis-"))
    top.chmod(0o755)
    made: list[Cluster] = []

    def make(spec: dict[str, Any]) -> Cluster:
        root = top / f"c{len(made)}"
        root.mkdir(mode=0o755)
        made.append(Cluster(root, spec, server))
        return made[-1]

    yield make
    for c in made:  # never leave a redis-server behind
        c.stop()
    if os.environ.get("MINOP_KEEP_REDIS_LOGS"):
        print(f"redis logs kept in {top}")
    else:
        shutil.rmtree(top, ignore_errors=True)
