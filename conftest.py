"""This repository's pytest set-up: the e2e test kit's fixtures (minop.kit.e2e.fixtures,
used by tests/e2e, tests/chaos and plugins/*/tests/e2e), what the kit cannot know
about this repository (which kubectl to use, the images hack/kind/app-images.sh builds),
and the order tests start in: slowest first, as the last run on this machine measured."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from minop.kit.e2e.pods import Kubectl, client_pod

pytest_plugins = ["minop.kit.e2e.fixtures"]

REPO = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MINOP_CACHE", Path.home() / ".cache" / "minop"))
CLIENT_IMAGE = "minop/redis:7"  # Debian with bash and redis-cli (hack/kind/app-images.sh)


def pytest_configure(config: pytest.Config) -> None:
    # The kubectl of the cluster's version (hack/build-bins.sh), unless one was chosen:
    # hack/e2e.sh also puts it first on PATH.
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    ours = CACHE / "k8s" / versions["KUBE_VERSION"].strip() / "bin" / "kubectl"
    if ours.exists():
        os.environ.setdefault("MINOP_KUBECTL", str(ours))


@pytest.fixture
def client(namespace: str, kubectl: Kubectl) -> Callable[..., str]:
    """``client(*cmd)``: a command in a client pod with bash and redis-cli; its stdout."""
    return client_pod(namespace, kubectl, CLIENT_IMAGE)


# Slowest first: with several workers the long tests then overlap each other instead
# of one of them starting last and holding the run open alone. Durations are kept per
# suite (unit, local, kind) on this machine; a test never measured runs first, so a new
# slow test cannot end up last either.
def _durations_file() -> Path:
    return CACHE / "test-durations" / f"{os.environ.get('MINOP_CLUSTER', 'unit')}.json"


def _durations() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(_durations_file().read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known = _durations()
    items.sort(key=lambda item: -known.get(item.nodeid, float("inf")))


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # with xdist the workers' reports reach the controller too: only it records
    _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or not _measured:
        return
    path = _durations_file()
    merged = {**_durations(), **{k: round(v, 2) for k, v in _measured.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=0, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs the order
