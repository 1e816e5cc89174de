"""A tiny HTTP server speaking the Kubernetes list/watch protocol, for watch unit tests.

Only for unit tests: e2e tests always talk to a real API server.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def cm(name: str, rv: int, data: str = "x") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "data": {"k": data},
    }


class FakeApi:
    """Lists come from ``objects``; each watch request takes the next script from
    ``watches``: a list of events (dicts), "stall" (send nothing, keep open) or
    "close" at the end, or ``[("throttle", seconds)]`` (answer 429 with that
    Retry-After); a watch with no script left stalls. ``requests`` records (path,
    params, time) of every request."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.list_rv = 1
        self.watches: queue.Queue[list] = queue.Queue()
        # Successive list answers as (objects, resourceVersion); then ``objects``.
        self.lists: queue.Queue[tuple[dict[str, dict], int]] = queue.Queue()
        self.requests: list[tuple[str, dict, float]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                api.requests.append((url.path, params, time.monotonic()))
                if url.path == "/version":
                    return self._json({"major": "1", "minor": "36"})
                if params.get("watch") == "true":
                    return self._watch()
                with contextlib.suppress(queue.Empty):
                    api.objects, api.list_rv = api.lists.get_nowait()
                items = sorted(api.objects.values(), key=lambda o: o["metadata"]["name"])
                self._json(
                    {
                        "kind": "ConfigMapList",
                        "metadata": {"resourceVersion": str(api.list_rv)},
                        "items": items,
                    }
                )

            def _json(self, body: dict, code: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self) -> None:
                try:
                    script = api.watches.get_nowait()
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
                            threading.Event().wait(30)
                            return
                        if step == "close":
                            break
                        line = (json.dumps(step) + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def kubeconfig(self) -> dict:
        return {
            "clusters": [{"name": "c", "cluster": {"server": self.url}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }

    def watch_params(self) -> list[dict]:
        return [p for _, p, _ in self.requests if p.get("watch") == "true"]

    def watch_times(self) -> list[float]:
        return [t for _, p, t in self.requests if p.get("watch") == "true"]

    def close(self) -> None:
        self.httpd.shutdown()
