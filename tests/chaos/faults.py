"""Faults the chaos scenarios inject: a TCP proxy between the operator and the API
server that stalls, cuts or drops connections; etcd compaction; stopping and starting
the local control plane's kube-apiserver."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


class ChaosProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``, and breaks the path on demand:

    - ``stall()``: the open connections stop forwarding, without closing (a silently dead
      path: both ends wait forever); new connections work.
    - ``cut()``: nothing flows, on open or new connections (the operator is cut off).
    - ``drop()``: every open connection is closed at once (a reset).
    - ``resume()``: everything flows again.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._accepting = threading.Event()
        self._accepting.set()
        self._closed = False
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Event] = {}  # socket -> flowing
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="chaos-proxy").start()

    def kubeconfig(self, source: str, out: Path) -> Path:
        """A copy of the kubeconfig ``source`` whose clusters go through this proxy."""
        cfg = yaml.safe_load(Path(source.split(os.pathsep)[0]).read_text())
        for c in cfg["clusters"]:
            c["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        out.write_text(yaml.safe_dump(cfg))
        out.chmod(0o600)
        return out

    def stall(self) -> None:
        with self._lock:
            for flowing in self._open.values():
                flowing.clear()

    def cut(self) -> None:
        self._accepting.clear()
        self.stall()

    def resume(self) -> None:
        self._accepting.set()
        with self._lock:
            for flowing in self._open.values():
                flowing.set()

    def drop(self) -> None:
        with self._lock:
            conns, self._open = self._open, {}
        for s, flowing in conns.items():
            flowing.set()
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._accepting.set()
        self._listener.close()
        self.drop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        self._accepting.wait()
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        flowing = threading.Event()
        flowing.set()
        with self._lock:
            self._open[client] = self._open[server] = flowing
        peers = {client: server, server: client}
        try:
            while not self._closed:
                ready, _, _ = select.select(list(peers), [], [], 0.2)
                for s in ready:
                    flowing.wait()
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            pass  # dropped under us
        finally:
            with self._lock:
                self._open.pop(client, None)
                self._open.pop(server, None)
            client.close()
            server.close()


def upstream_of(kubeconfig: str) -> tuple[str, int]:
    cfg = yaml.safe_load(Path(kubeconfig.split(os.pathsep)[0]).read_text())
    server = cfg["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


# -- etcd ------------------------------------------------------------------------------------


def etcd_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('MINOP_ETCD_PORT', '2379')}"


def _etcd(path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(etcd_url() + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.loads(r.read()))


def compact_etcd() -> int:
    """Compacts etcd's whole history up to its current revision (what the API server
    does every 5 minutes, only older); returns that revision."""
    key = base64.b64encode(b"/").decode()
    rev = int(_etcd("/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    _etcd("/v3/kv/compaction", {"revision": rev, "physical": True})
    return rev


# -- the local control plane's kube-apiserver ------------------------------------------------


def apiserver(action: str) -> str:
    """``hack/local-cluster.sh apiserver-stop|apiserver-start``: stops or starts only
    kube-apiserver of the local cluster (its PID is in .cluster/pids/)."""
    r = subprocess.run(
        [str(REPO / "hack" / "local-cluster.sh"), f"apiserver-{action}"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if r.returncode != 0:
        raise AssertionError(f"apiserver-{action} failed: {r.stderr.strip()}")
    return r.stderr
