"""Shared e2e fixtures and helpers. The suite only reads KUBECONFIG, so it runs on the local
control plane, on kind, or on any cluster; every test gets its own namespace.

Helpers for tests: ``Api`` (a tiny HTTP client for the kubeconfig's cluster), ``Watch``
(records watch events from a known resourceVersion, so no event after its start is missed),
``AuditLog`` (the cluster's audit entries since a point in time), ``metric_sum`` (samples of
a /metrics page) and ``metric`` (an in-process operator's), ``http_get`` (a probe or
metrics endpoint). Fixtures: ``kubeconfig``, ``kubectl``, ``namespace``, ``api``, ``watch``,
``audit_log``/``maybe_audit_log``, ``expandable_storage_class``, ``test_crds``,
``plugin_crds``. Tests marked ``realpods`` are skipped where pods do not really run (KWOK).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from minop.kit.testing import OperatorRunner, wait_for

REPO = Path(__file__).resolve().parents[2]

# An image that runs, and keeps running, wherever the suite does: kind nodes hold it
# (kubeadm's sandbox image, built into the node image), and KWOK runs no image at all.
RUNNABLE_IMAGE = "registry.k8s.io/pause:3.10.2"
# A second image of each program the plugins run, also present on kind (built by
# hack/kind/app-images.sh; nothing can be pulled there): tests that change spec.image
# switch to it.
OTHER_IMAGE = {
    "memcached": "minop/memcached:1.6",
    "nginx": "minop/nginx:1.22",
    "redis": "minop/redis:7",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
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
    kubeconfig, else None. hack/e2e.sh exports MINOP_CLUSTER_DIR; the default is <repo>/.cluster."""
    d = Path(os.environ.get("MINOP_CLUSTER_DIR") or REPO / ".cluster")
    first = kubeconfig.split(os.pathsep)[0]
    if (d / "kubeconfig").exists() and Path(first).resolve() == (d / "kubeconfig").resolve():
        return d
    return None


def _kubectl_path() -> str:
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("MINOP_CACHE", Path.home() / ".cache" / "minop"))
    ours = cache / "k8s" / versions["KUBE_VERSION"].strip() / "bin" / "kubectl"
    found = str(ours) if ours.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: run hack/build-bins.sh k8s")
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


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, status: int, body: dict | str) -> None:
        self.status, self.body = status, body
        msg = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


class Api:
    """A small client for the kubeconfig's current context: client certificates or a bearer
    token (exec plugins are not supported). Every request uses a new connection (stdlib only).

    ``api.request("GET", "/api/v1/namespaces")`` returns the decoded JSON and raises
    ``ApiError`` (with ``.status`` and ``.body``) for a status >= 400.
    """

    def __init__(
        self,
        server: str,
        *,
        cafile: str | None = None,
        insecure: bool = False,
        cert: str | None = None,
        key: str | None = None,
        token: str | None = None,
        user_agent: str = "minop-e2e",
    ) -> None:
        self._args: dict[str, Any] = dict(
            cafile=cafile, insecure=insecure, cert=cert, key=key, token=token
        )
        u = urlsplit(server)
        self.server, self.host, self.port = server.rstrip("/"), u.hostname or "", u.port or 443
        self.base = u.path.rstrip("/")
        self.token, self.user_agent = token, user_agent
        self._resources: list[dict] = []
        self.ctx = ssl.create_default_context(cafile=cafile)
        if insecure:
            self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE
        if cert and key:
            self.ctx.load_cert_chain(cert, key)

    @classmethod
    def from_kubeconfig(cls, path: str, workdir: Path) -> Api:
        import yaml

        first = Path(path.split(os.pathsep)[0])
        cfg = yaml.safe_load(first.read_text())
        ctx_name = cfg.get("current-context")
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        users = cfg.get("users") or []
        user: dict = next((u["user"] for u in users if u["name"] == context.get("user")), {})

        def material(key: str) -> str | None:  # a file path for `key` or `key-data`
            src = cluster if key == "certificate-authority" else user
            if src.get(f"{key}-data"):
                f = workdir / key
                f.write_bytes(base64.b64decode(src[f"{key}-data"]))
                f.chmod(0o600)
                return str(f)
            if src.get(key):
                return str((first.parent / src[key]).resolve())
            return None

        cert, key = material("client-certificate"), material("client-key")
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        if not (cert or token):
            pytest.fail(f"conftest.Api supports client-certificate or token users only ({first})")
        return cls(
            cluster["server"],
            cafile=material("certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            cert=cert,
            key=key,
            token=token,
        )

    def as_token(self, token: str) -> Api:
        """The same cluster, authenticated by ``token`` alone (no client certificate)."""
        args = {**self._args, "cert": None, "key": None, "token": token}
        return Api(self.server, user_agent=self.user_agent, **args)

    def with_user_agent(self, user_agent: str) -> Api:
        return Api(self.server, user_agent=user_agent, **self._args)

    def connect(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict | None = None,
        timeout: float = 30,
    ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        conn.request(method, url, body=data, headers=headers)
        return conn, conn.getresponse()

    def resource_path(self, resource: str, namespace: str | None = None) -> str:
        """The collection URL of ``resource`` named as kubectl takes it: plural, singular,
        kind or short name, optionally qualified by its group (``pods``, ``sts``,
        ``widgets.example.com``). Namespaced resources without ``namespace``: all namespaces."""
        name, _, group = resource.lower().partition(".")
        for refresh in (False, True):  # a CRD may have appeared since the last discovery
            for r in self._discover(refresh):
                if name in r["names"] and (not group or r["group"] == group):
                    base = f"/apis/{r['group']}/{r['version']}" if r["group"] else "/api/v1"
                    if r["namespaced"] and namespace:
                        base += f"/namespaces/{namespace}"
                    return f"{base}/{r['plural']}"
        raise AssertionError(f"the API server serves no resource {resource!r}")

    def _discover(self, refresh: bool) -> list[dict]:
        if refresh or not self._resources:
            lists = [self.request("GET", "/api/v1")]
            for g in self.request("GET", "/apis")["groups"]:
                lists.append(self.request("GET", f"/apis/{g['preferredVersion']['groupVersion']}"))
            out = []
            for rl in lists:
                group, _, version = rl["groupVersion"].rpartition("/")
                for r in rl["resources"]:
                    if "/" in r["name"]:
                        continue  # a subresource
                    names = {r["name"], r.get("singularName", ""), r["kind"].lower()}
                    names |= set(r.get("shortNames") or [])
                    out.append(
                        dict(
                            group=group,
                            version=version,
                            plural=r["name"],
                            namespaced=r["namespaced"],
                            names=names - {""},
                        )
                    )
            self._resources = out
        return self._resources

    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        conn, resp = self.connect(method, path, body, query or None)
        try:
            raw = resp.read().decode()
        finally:
            conn.close()
        try:
            doc: Any = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        if resp.status >= 400:
            raise ApiError(method, path, resp.status, doc)
        return doc


@pytest.fixture(scope="session")
def api(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Api:
    return Api.from_kubeconfig(kubeconfig, tmp_path_factory.mktemp("api"))


class Watch:
    """Records the watch events of a collection, from the resourceVersion of a LIST made in
    the constructor: every change after the constructor returns is recorded, in the order
    the API server sent them, however late the watch connection itself is established.

    ``events`` holds (type, object) pairs, starting like ``kubectl get --watch
    --output-watch-events`` with an ADDED event for each object that already existed (those
    are also in ``initial``). An ERROR event (e.g. 410 Gone) is recorded too and makes
    ``wait`` fail.
    """

    def __init__(self, api: Api, path: str, **query: str) -> None:
        listing = api.request("GET", path, **query)
        self.initial: list[dict] = listing["items"]
        self.events: list[tuple[str, dict]] = [("ADDED", o) for o in self.initial]
        self.path, self._stopped = path, False
        rv = listing["metadata"]["resourceVersion"]
        q = {**query, "watch": "1", "resourceVersion": rv, "timeoutSeconds": "3600"}
        self._conn, self._resp = api.connect("GET", path, query=q, timeout=3700)
        if self._resp.status != 200:
            body = self._resp.read().decode()
            self._conn.close()
            raise ApiError("WATCH", path, self._resp.status, body)
        self._thread = threading.Thread(target=self._pump, daemon=True, name=f"watch {path}")
        self._thread.start()

    def _pump(self) -> None:
        try:
            while line := self._resp.readline():
                if line.strip():
                    ev = json.loads(line)
                    self.events.append((ev.get("type", ""), ev.get("object") or {}))
        except Exception as e:
            if not self._stopped:  # surfaces in wait(), not as a stray thread exception
                self.events.append(("ERROR", {"message": f"{type(e).__name__}: {e}"}))

    def names(self, etype: str) -> list[str]:
        """Names of the objects of every ``etype`` event (ADDED, MODIFIED, DELETED), in order."""
        return [o.get("metadata", {}).get("name", "") for t, o in list(self.events) if t == etype]

    def first_index(self, pred: Callable[[str, dict], bool]) -> int | None:
        """Index in ``events`` of the first (type, object) matching ``pred``, or None."""
        return next((i for i, (t, o) in enumerate(list(self.events)) if pred(t, o)), None)

    def wait(self, pred: Callable[[list[tuple[str, dict]]], Any], timeout: float, what: str) -> Any:
        """``wait_for`` over the events recorded so far; fails early on an ERROR event."""

        def check() -> Any:
            evs = list(self.events)
            errors = [o for t, o in evs if t == "ERROR"]
            if errors:
                raise RuntimeError(f"watch {self.path} failed: {errors[0]}")
            return pred(evs)

        return wait_for(check, timeout, f"{what} (watch {self.path})")

    def stop(self) -> None:
        self._stopped = True
        try:  # shutdown wakes the reader blocked in recv(); close() alone would not
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._conn.close()  # only once the reader is done with the connection


def _kubectl_get_args(api: Api, args: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(path, query) for ``kubectl get`` style arguments: ``RESOURCE[/NAME]`` with
    ``-n/--namespace``, ``-A/--all-namespaces``, ``-l/--selector``, ``--field-selector``."""
    it, resource, ns, everywhere = iter(args), "", "default", False
    query: dict[str, str] = {}
    for a in it:
        key, eq, val = a.partition("=")
        if key in ("-n", "--namespace", "-l", "--selector", "--field-selector") and not eq:
            val = next(it)
        if key in ("-n", "--namespace"):
            ns = val
        elif key in ("-l", "--selector"):
            query["labelSelector"] = val
        elif key == "--field-selector":
            query["fieldSelector"] = val
        elif key in ("-A", "--all-namespaces"):
            everywhere = True
        elif not a.startswith("-") and not resource:
            resource = a
        else:
            raise AssertionError(f"watch(): unsupported argument {a!r} in {args}")
    resource, _, name = resource.partition("/")
    if name:
        query["fieldSelector"] = ",".join(
            filter(None, [query.get("fieldSelector"), f"metadata.name={name}"])
        )
    return api.resource_path(resource, None if everywhere else ns), query


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
            path, q = _kubectl_get_args(api, args)
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

    def entries(self, pred: Callable[[dict], bool] = lambda e: True) -> list[dict]:
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
        pytest.skip("needs KWOK's simulated pods (the real-pod version is in test_realpods.py)")


# -- CRDs and plugins used by other e2e modules ---------------------------------------------------


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
