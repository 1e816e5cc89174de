"""Test doubles and helpers for plugin authors' tests.

Without a cluster, ``FakeContext`` calls a hook directly: a real ``minop.Context``
over an in-memory ``FakeApi`` (see ``minop.kit.fakecontext``); ``FakeReconciler`` runs
the operator's reconcile passes one by one, the watch and the clock in the test's
hands (``minop.kit.fakereconciler``); ``FakeServer`` serves a ``FakeApi`` over HTTP
with scripted watch streams, for what only a socket shows. Against a real cluster,
``OperatorRunner`` runs the operator in-process:

    from minop.kit.testing import OperatorRunner

    def test_my_kind(namespace):
        with OperatorRunner({"mine": my_plugin.hooks}, namespaces=[namespace]) as op:
            ...create a CR, then op.wait_for(lambda: ..., what="Ready")

Each runner binds its probes to 127.0.0.1:0 and is scoped to the given
namespaces, so tests run in parallel; its User-Agent carries ``name`` so the
audit log tells runners apart.
"""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from minop import __version__
from minop.kit.fakeapi import FakeApi
from minop.kit.fakecontext import FakeContext, FakeRuntime
from minop.kit.fakereconciler import FakeReconciler
from minop.kit.fakeserver import FakeServer
from minop.kube import Kube
from minop.manager import Manager
from minop.plugin.manager import PluginManager
from minop.rest import user_agent
from minop.settings import Settings

__all__ = [
    "FakeApi",
    "FakeContext",
    "FakeReconciler",
    "FakeRuntime",
    "FakeServer",
    "OperatorRunner",
    "free_port",
    "tls_secret_data",
    "wait_for",
]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts in
    another process. Chosen at random below the kernel's ephemeral range: the port a
    ``bind(0)`` returns is an ephemeral one, which any outgoing connection (kubectl, a
    watch, another test's client) may take before the server binds it."""
    low = _ephemeral_low()
    for _ in range(200):
        port = _pick.randrange(max(1024, low - EPHEMERAL_BELOW), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # a server holds it
            return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 below {low}")


# How far below the ephemeral range free_port picks (a random choice among this many).
EPHEMERAL_BELOW = 12000
_pick = random.SystemRandom()  # never a test's seeded random state


def _ephemeral_low(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere a guess


def tls_secret_data(cn: str, hosts: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, str]:
    """A throw-away CA and a certificate it signed for ``hosts`` (IP addresses or DNS
    names), usable by servers and clients (both extended key usages): the keys of a
    kubernetes.io/tls Secret as cert-manager writes it (ca.crt, tls.crt, tls.key).
    Needs the openssl command."""
    sans = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with tempfile.TemporaryDirectory(prefix="minop-tls-") as tmp:

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

        ca = ["-subj", f"/CN={cn} CA", "-keyout", "ca.key", "-out", "ca.crt"]
        openssl("req", "-x509", *ec, "-days", "2", *ca)
        openssl("req", *ec, "-subj", f"/CN={cn}", "-keyout", "tls.key", "-out", "tls.csr")
        Path(tmp, "ext").write_text(
            f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "ext"]
        openssl("x509", "-req", "-in", "tls.csr", *sign, "-days", "2", "-out", "tls.crt")
        return {k: Path(tmp, k).read_text() for k in ("ca.crt", "tls.crt", "tls.key")}


def wait_for(
    fn: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float | None = None,
) -> T:
    """Call ``fn`` until it returns something truthy; fail naming ``what`` and the last value.

    By default the calls back off from 0.1 s to one a second: what is nearly there is seen
    at once, and a long wait through kubectl (a subprocess each call) costs little CPU.
    ``interval`` fixes the pause instead; where something can be watched, wait on the watch
    (``kubectl wait``, ``minop.kit.e2e.api.Watch.wait``) rather than calling at all.
    """
    deadline = time.monotonic() + timeout
    pause = interval if interval is not None else 0.1
    last: object = None
    while True:
        try:
            value = fn()
        except AssertionError as e:
            last = e
        else:
            if value:
                return value
            last = value
        left = deadline - time.monotonic()
        if left < 0:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")
        time.sleep(min(pause, left + 0.01))  # one last call just after the deadline
        if interval is None:
            pause = min(pause * 2, 1.0)


class OperatorRunner:
    def __init__(
        self,
        hooks: Mapping[str, object] | None = None,
        *,
        namespaces: list[str] | tuple[str, ...] = (),
        name: str | None = None,
        **settings: Any,
    ) -> None:
        """``hooks``: plugin name -> module/object with hook implementations; None
        loads the installed entry points (restricted by the ``plugins=`` setting)."""
        base = Settings(
            namespaces=tuple(namespaces),
            workers=2,
            health_addr="127.0.0.1:0",
            metrics_addr="127.0.0.1:0",
            webhook_addr="0",  # a test that serves webhooks names its port (the CRD's URL)
            grace=10.0,
        )
        self.settings = replace(base, **settings)
        self.name = name or f"test-{uuid.uuid4().hex[:6]}"
        self.agent = f"{user_agent(__version__)} {self.name}"
        pm: PluginManager | None = None
        if hooks is not None:
            pm = PluginManager()
            for plugin_name, obj in hooks.items():
                pm.register(obj, plugin_name)
        self._pm = pm
        self.operator: Manager | None = None

    def __enter__(self) -> OperatorRunner:
        kube = Kube.from_env(self.settings.kubeconfig, self.settings.context, agent=self.agent)
        self.operator = Manager(self.settings, plugins=self._pm, kube=kube)
        try:
            self.operator.start()
        except BaseException:
            self.stop()
            raise
        # deposed: stop from a thread of its own (the elector's own thread cannot join itself)
        self.operator.begin(on_lost=lambda: threading.Thread(target=self.stop).start())
        if not self.settings.leader_elect:
            # an attribute in this process, not a subprocess: cheap to ask often
            wait_for(lambda: self.op.reconciling, 60, "workers started", interval=0.05)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    @property
    def op(self) -> Manager:
        assert self.operator is not None, "runner not started"
        return self.operator

    def url(self, path: str) -> str:
        server = self.op.servers[0] if "metrics" not in path else self.op.servers[-1]
        return f"http://127.0.0.1:{server.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        """GET one of the operator's endpoints: (status code, body)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> str:
        return self.op.metrics.render()

    @staticmethod
    def wait_for(fn: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
        return wait_for(fn, timeout, what)
