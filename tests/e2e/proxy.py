"""A TCP proxy between the operator and the API server that breaks the path on purpose."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path

import yaml


def upstream_of(kubeconfig: str) -> tuple[str, int]:
    """Host and port of the first cluster's server in a kubeconfig."""
    cfg = yaml.safe_load(Path(kubeconfig.split(os.pathsep)[0]).read_text())
    server = cfg["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


class Proxy:
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
        threading.Thread(target=self._accept, daemon=True, name="test-proxy").start()

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
            if not self._accepting.is_set():  # cut while this one was connecting
                flowing.clear()
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
