"""The e2e test kit's pytest plugin: fixtures and hooks for tests against a real API
server. Load it from the project's top-level conftest.py with
``pytest_plugins = ["minop.kit.e2e.fixtures"]``. The suite only reads KUBECONFIG, so it
runs on a local control plane, on kind, or on any cluster; every test gets its own
namespace.

Fixtures: ``kubeconfig``, ``kubectl``, ``namespace``, ``api``, ``watch``,
``audit_log``/``maybe_audit_log``, ``expandable_storage_class``, ``plugin_crds``,
``operator_manifests``, ``operator`` (the operator deployed in-cluster, minop.kit.e2e.incluster).
Tests marked ``realpods`` are skipped where pods do not really run (KWOK), those marked
``kwok`` where they do. Helpers: ``metric_sum``, ``metric``, ``http_get``, ``AuditLog``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from minop.kit.e2e import incluster
from minop.kit.e2e.api import Api, Watch, kubectl_get_args
from minop.kit.testing import OperatorRunner

# An image that runs, and keeps running, wherever the suite does: kind nodes hold it
# (kubeadm's sandbox image, built into the node image), and KWOK runs no image at all.
RUNNABLE_IMAGE = "registry.k8s.io/pause:3.10.2"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a real Kubernetes API server (KUBECONFIG)")
    config.addinivalue_line("markers", "realpods: needs pods that really run (kind)")
    config.addinivalue_line(
        "markers",
        "kwok: needs KWOK's simulated pods (the test stands in for the kubelet, or runs "
        "hundreds of pods)",
    )
    config.addinivalue_line(
        "markers",
        "apionly: talks to the API server alone (admission, RBAC, the CLI): its outcome does "
        "not depend on whether pods run, so a project testing on several clusters may run it "
        "on one only",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # e2e: every test that needs the cluster (all its fixtures start from ``kubeconfig``)
    for item in items:
        if "kubeconfig" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


def metric_sum(text: str, name: str, /, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (a label may be
    called name), in a /metrics page."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
    return total


def metric(runner: OperatorRunner, name: str, /, **labels: str) -> float:
    """``metric_sum`` of an in-process operator's metrics."""
    return metric_sum(runner.metrics(), name, **labels)


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET (an HTTP error's too); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


# -- the cluster -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG")
    if not path:
        pytest.fail("e2e tests need KUBECONFIG (make e2e starts a local cluster and sets it)")
    return path


def local_cluster_dir(kubeconfig: str) -> Path | None:
    """The local control plane's state dir (hack/local-cluster.sh) when KUBECONFIG is its
    kubeconfig, else None. hack/e2e.sh exports MINOP_CLUSTER_DIR; the default is ./.cluster."""
    d = Path(os.environ.get("MINOP_CLUSTER_DIR") or ".cluster")
    first = kubeconfig.split(os.pathsep)[0]
    if (d / "kubeconfig").exists() and Path(first).resolve() == (d / "kubeconfig").resolve():
        return d
    return None


def _kubectl_path() -> str:
    """MINOP_KUBECTL, else the first kubectl on PATH."""
    found = os.environ.get("MINOP_KUBECTL") or shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: set MINOP_KUBECTL or put kubectl on PATH")
    return found


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    """``kubectl(*args, input=None, check=True, timeout=120)``: raises with stderr when it fails."""
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


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace ``e2e-<test name>-<4 hex>``, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:4]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


# -- HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Api:
    return Api.from_kubeconfig(kubeconfig, tmp_path_factory.mktemp("api"))


@pytest.fixture
def watch(api: Api) -> Iterator[Callable[..., Watch]]:
    """Starts ``Watch`` recorders, all stopped after the test. Either an API path and query
    parameters, ``watch(f"/api/v1/namespaces/{ns}/pods", labelSelector="app=db")``, or
    ``kubectl get`` arguments, ``watch("pods", "-n", ns, "-l", "app=db")``."""
    started: list[Watch] = []

    def start(*args: str, **query: str) -> Watch:
        if len(args) == 1 and args[0].startswith("/"):
            path = args[0]
        else:
            path, q = kubectl_get_args(api, args)
            query = {**q, **query}
        w = Watch(api, path, **query)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


# -- the local cluster's audit log -------------------------------------------------------------


class AuditLog:
    """Audit entries (hack/audit-policy.yaml: every write, Metadata level, no reads) written
    since this object was created; survives one rotation by the apiserver."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = path.stat()
        self._inode, self._offset = st.st_ino, st.st_size

    def _chunks(self) -> Iterator[bytes]:
        if self.path.stat().st_ino != self._inode:  # rotated to audit-<time>.log since
            for old in self.path.parent.glob("audit-*.log"):
                if old.stat().st_ino == self._inode:
                    with old.open("rb") as f:
                        f.seek(self._offset)
                        yield f.read()
            yield self.path.read_bytes()
        else:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                yield f.read()

    def entries(
        self, pred: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> list[dict[str, Any]]:
        out = []
        for chunk in self._chunks():
            for line in chunk.splitlines(keepends=True):
                if line.endswith(b"\n"):  # the last line may still be being written
                    e = json.loads(line)
                    if pred(e):
                        out.append(e)
        return out


def audit_log_path(kubeconfig: str) -> Path | None:
    """The cluster's audit log: MINOP_AUDIT_LOG (hack/e2e.sh sets it for the local and the
    kind cluster), else the local cluster's when KUBECONFIG is its kubeconfig, else None."""
    if os.environ.get("MINOP_AUDIT_LOG"):
        return Path(os.environ["MINOP_AUDIT_LOG"])
    d = local_cluster_dir(kubeconfig)
    return d / "logs" / "audit.log" if d is not None else None


@pytest.fixture
def maybe_audit_log(kubeconfig: str) -> AuditLog | None:
    """The cluster's audit log from now on, or None when the cluster has none we can read."""
    path = audit_log_path(kubeconfig)
    return AuditLog(path) if path is not None and path.exists() else None


@pytest.fixture
def audit_log(maybe_audit_log: AuditLog | None) -> AuditLog:
    """The cluster's audit log from now on; skips on a cluster without one we can read."""
    if maybe_audit_log is None:
        pytest.skip("needs the cluster's audit log (CLUSTER=local or kind)")
    return maybe_audit_log


# -- real pods -------------------------------------------------------------------------------

_real_pods: bool | None = None


def cluster_runs_pods(kubeconfig: str) -> bool:
    """Whether pods really run: some Ready node is a kubelet, not a KWOK simulation."""
    global _real_pods
    if _real_pods is None:
        nodes = json.loads(
            subprocess.run(
                [_kubectl_path(), "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["items"]
        _real_pods = any(
            "kwok.x-k8s.io/node" not in (n["metadata"].get("annotations") or {})
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
            for n in nodes
        )
    return _real_pods


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Skipped, never deselected: the summary (-rs) names every test that did not run.
    if item.get_closest_marker("realpods") and not cluster_runs_pods(os.environ["KUBECONFIG"]):
        pytest.skip("needs real pods: KWOK nodes run no containers (make e2e CLUSTER=kind)")
    if item.get_closest_marker("kwok") and cluster_runs_pods(os.environ["KUBECONFIG"]):
        pytest.skip("needs KWOK's simulated pods (a real-pod version runs on kind)")


# -- CRDs, storage and the in-cluster operator ----------------------------------------------


@pytest.fixture(scope="session")
def expandable_storage_class(kubectl: Kubectl) -> str:
    """A StorageClass that allows volume expansion: the default class if it does (the local
    cluster's), else a copy of it that does (kind's local-path: the claim's request grows,
    which is what the operators are responsible for; the provisioner never resizes)."""
    classes = json.loads(kubectl("get", "storageclass", "-o", "json").stdout)["items"]
    default = next(
        c
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    )
    if default.get("allowVolumeExpansion"):
        return str(default["metadata"]["name"])
    copy = {
        k: default[k]
        for k in ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode")
        if k in default
    }
    name = "minop-e2e-expandable"
    doc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}}
    kubectl("apply", "-f", "-", input=json.dumps({**doc, **copy, "allowVolumeExpansion": True}))
    return name


@pytest.fixture(scope="session")
def plugin_crds(kubectl: Kubectl) -> None:
    """The CRDs of every installed plugin, as ``python -m minop crds`` prints them."""
    import sys

    crds = subprocess.run(
        [sys.executable, "-m", "minop", "crds"], capture_output=True, text=True, check=True
    ).stdout
    applied = kubectl(
        "apply", "--server-side", "--force-conflicts", "-o", "name", "-f", "-", input=crds
    ).stdout.split()
    # By name: other tests create and delete CRDs of their own meanwhile, and waiting on
    # every CRD in the cluster would wait on (and fail on) one that is being deleted.
    kubectl("wait", "--for=condition=Established", *applied, "--timeout=60s")


@pytest.fixture
def operator_manifests(pytestconfig: pytest.Config) -> Path:
    """The directory of the operator's plain manifests (rbac.yaml, deployment.yaml):
    ``config/`` under pytest's rootdir; a project keeping them elsewhere overrides this."""
    return pytestconfig.rootpath / "config"


@pytest.fixture
def operator(namespace: str, kubectl: Kubectl, operator_manifests: Path) -> Iterator[str]:
    """The operator Deployment from ``operator_manifests``, in and watching only the test
    namespace, Available; its name."""
    suffix = f"-{namespace}"
    try:
        yield incluster.deploy(kubectl, operator_manifests, namespace, [namespace], suffix)
    finally:
        incluster.remove(kubectl, suffix)
