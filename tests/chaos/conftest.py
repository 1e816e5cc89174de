"""Fixtures of the chaos suite (tests/chaos/README.md).

The e2e fixtures (``kubectl``, ``api``, ``namespace``, ``watch``, ``audit_log``,
``plugin_crds``...) come from the e2e test kit (minop.kit.e2e.fixtures, loaded by the
repository's top-level conftest.py). Tests marked ``chaos_fast`` also
run inside ``make test`` (hack/e2e.sh collects this directory on the local cluster); the
rest only under ``make chaos`` (MINOP_CHAOS=all), which also renders the figures every
test records with ``figures`` into tests/chaos/results/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from minop.kit.e2e.fixtures import local_cluster_dir

HERE = Path(__file__).resolve().parent
E2E = HERE.parent / "e2e"
# The e2e suite's helper modules (proxy, widgets) and our own (chaosops, results, schema_cases).
for d in (HERE, E2E):
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))

from results import Figures  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_fast: part of the chaos suite that make test runs")
    config.addinivalue_line(
        "markers", "chaos_serial: restarts a shared component; make chaos runs it alone"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside ``make chaos`` only the fast subset of this directory runs."""
    if os.environ.get("MINOP_CHAOS") == "all":
        return
    slow = [i for i in items if HERE in i.path.parents and not i.get_closest_marker("chaos_fast")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [i for i in items if i not in slow]


@pytest.fixture(scope="session")
def local_cluster(kubeconfig: str) -> Path:
    """The local control plane's state dir; chaos scenarios that touch etcd, the API
    server's processes or its audit policy need it."""
    d = local_cluster_dir(kubeconfig)
    if d is None:
        pytest.skip("needs the local control plane (CLUSTER=local)")
    return d


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """What the test measured, written to MINOP_CHAOS_RESULTS (a JSON-lines file) at the end
    of a passing test; ``make chaos`` turns them into the results table."""
    f = Figures(request.node.nodeid)
    yield f
    rep = getattr(request.node, "rep_call", None)
    f.save("xfail" if hasattr(rep, "wasxfail") else "pass" if rep and rep.passed else "FAIL")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
