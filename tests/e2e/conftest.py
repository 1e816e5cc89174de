"""Shared e2e fixtures. The suite only reads KUBECONFIG, so it runs on the local
control plane, on kind, or on any cluster; every test gets its own namespace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG")
    if not path:
        pytest.fail("e2e tests need KUBECONFIG (make e2e starts a local cluster and sets it)")
    return path


def _kubectl_path() -> str:
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("MINOP_CACHE", Path.home() / ".cache" / "minop"))
    ours = cache / "k8s" / versions["KUBE_VERSION"] / "bin" / "kubectl"
    found = str(ours) if ours.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: run hack/build-bins.sh k8s")
    return found


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    """``kubectl(*args, input=None, check=True)``: raises with stderr when it fails."""
    binary = _kubectl_path()

    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [binary, "--kubeconfig", kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {r.stderr.strip()}")
        return r

    return run


@pytest.fixture(scope="session")
def test_crds(kubectl: Kubectl) -> None:
    """The CRDs of the core's test plugins (tests/e2e/widgets.py)."""
    import widgets
    import yaml

    docs = [widgets.definition(k) for k in widgets.ALL_KINDS]
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
    for k in widgets.ALL_KINDS:
        kubectl("wait", "--for=condition=Established", f"crd/{k.plural}.{k.group}", "--timeout=60s")


@pytest.fixture(scope="session")
def plugin_crds(kubectl: Kubectl) -> None:
    """The CRDs of every installed plugin, as ``python -m minop crds`` prints them."""
    import sys

    crds = subprocess.run(
        [sys.executable, "-m", "minop", "crds"], capture_output=True, text=True, check=True
    ).stdout
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crds)
    kubectl("wait", "--for=condition=Established", "crd", "-l", "!none", "--all", "--timeout=60s")


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


class Watch:
    """Records watch events (``kubectl get --watch --output-watch-events``) in a thread.

    ``events`` holds (type, object) in the order the API server sent them.
    """

    def __init__(self, kubeconfig: str, *args: str) -> None:
        import json
        import threading

        self.events: list[tuple[str, dict]] = []
        cmd = [
            _kubectl_path(),
            "--kubeconfig",
            kubeconfig,
            "get",
            *args,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

        def pump() -> None:
            decoder, buf = json.JSONDecoder(), ""
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                buf += line
                while buf.strip():
                    try:
                        doc, end = decoder.raw_decode(buf.lstrip())
                    except ValueError:
                        break  # incomplete document: read more
                    buf = buf.lstrip()[end:]
                    self.events.append((doc.get("type", ""), doc.get("object") or {}))

        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()

    def names(self, etype: str) -> list[str]:
        return [o["metadata"]["name"] for t, o in self.events if t == etype]

    def first_index(self, pred: Callable[[str, dict], bool]) -> int | None:
        return next((i for i, (t, o) in enumerate(self.events) if pred(t, o)), None)

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(5)


@pytest.fixture
def watch(kubeconfig: str) -> Iterator[Callable[..., Watch]]:
    """``watch("pods", "-n", ns)`` starts a recorder; all are stopped after the test."""
    started: list[Watch] = []

    def start(*args: str) -> Watch:
        w = Watch(kubeconfig, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def install_entry_points(where: Path, entries: dict[str, str]) -> str:
    """Make ``entries`` (name -> target) entry points of group ``minop`` visible from
    ``where``; returns a PYTHONPATH that also finds the test plugins next to this file."""
    dist = where / "minop_e2e_test_plugins-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: minop-e2e-test-plugins\nVersion: 0.0.1\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (dist / "entry_points.txt").write_text("[minop]\n" + lines)
    return os.pathsep.join([str(where), str(Path(__file__).parent)])
