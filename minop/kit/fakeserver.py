"""A FakeApi served over real HTTP, for tests of what only a socket shows: streamed
watches, the inactivity watchdog (a read timeout), a stop that interrupts a blocked
stream, 429 with Retry-After.

    server = FakeServer(FakeApi([kinds.CONFIGMAP]))
    server.lists.put(([a_configmap], 7))    # the next list answer: items, resourceVersion
    server.watches.put([{"type": "ADDED", "object": ...}, "stall"])
    kube = Kube(server.kubeconfig(), agent="test")

Each watch request takes the next script from ``watches``: events (dicts) sent as they
come and gates (a ``threading.Event`` the stream waits for), then "stall" (nothing
more, the connection held open), "close" (the stream ends), or the script
``[("throttle", seconds)]`` (429 with that Retry-After); a watch with no script left
stalls. Lists answer the next ``lists`` entry, the last one again once none is left, or
the FakeApi's objects when nothing was scripted. Every other request is the FakeApi's.
``requests`` records (path, params, time.monotonic()) of each.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from minop.kit.fakeapi import FakeApi
from minop.objects import Obj

Script = list[Any]  # events (dicts) and gates, then "stall" or "close"; or [("throttle", s)]
STALL = 30.0  # seconds a stalled stream stays open at most


class FakeServer:
    def __init__(self, api: FakeApi | None = None) -> None:
        self.api = api or FakeApi([])
        self.watches: queue.Queue[Script] = queue.Queue()
        self.lists: queue.Queue[tuple[list[Obj], int | str]] = queue.Queue()
        self.requests: list[tuple[str, dict[str, str], float]] = []
        self._listing: tuple[list[Obj], int | str] | None = None
        self._closed = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="fake-api", daemon=True).start()

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "clusters": [{"name": "c", "cluster": {"server": self.url}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }

    def watch_params(self) -> list[dict[str, str]]:
        return [p for _, p, _ in self.requests if p.get("watch") == "true"]

    def watch_times(self) -> list[float]:
        return [t for _, p, t in self.requests if p.get("watch") == "true"]

    def close(self) -> None:
        self._closed.set()  # stalled streams end
        self.httpd.shutdown()
        self.httpd.server_close()

    def _list(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        with contextlib.suppress(queue.Empty):
            self._listing = self.lists.get_nowait()
        if self._listing is None:
            code, body, _ = self.api.handle("GET", path, params, None, "")
            return code, body
        items, rv = self._listing
        items = sorted(items, key=lambda o: o["metadata"]["name"])
        return 200, {"items": items, "metadata": {"resourceVersion": str(rv)}}


def _is_collection(path: str) -> bool:
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    return len(rest) == 1


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            url = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            server.requests.append((url.path, params, time.monotonic()))
            if self.command == "GET" and params.get("watch") == "true":
                return self._watch()
            if self.command == "GET" and _is_collection(url.path):
                return self._json(*server._list(url.path, params))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            code, body, headers = server.api.handle(
                self.command,
                url.path,
                params,
                json.loads(raw) if raw else None,
                self.headers.get("Content-Type", ""),
                self.headers.get("User-Agent", ""),
            )
            self._json(code, body, headers)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self) -> None:
            try:
                script = server.watches.get_nowait()
            except queue.Empty:
                script = ["stall"]
            if script and isinstance(script[0], tuple) and script[0][0] == "throttle":
                self.send_response(429)
                self.send_header("Retry-After", str(script[0][1]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for step in script:
                    if step == "stall":
                        server._closed.wait(STALL)
                        return
                    if step == "close":
                        break
                    if isinstance(step, threading.Event):
                        step.wait(STALL)
                        continue
                    line = (json.dumps(step) + "\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client went away

        def log_message(self, *args: object) -> None:
            pass

    return Handler
