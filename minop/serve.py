"""/healthz, /readyz and /metrics on the standard library's HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("minop.serve")

# A check returns (ok, detail); detail is shown to whoever probes.
Check = Callable[[], tuple[bool, str]]
Routes = dict[str, Callable[[], tuple[int, str, str]]]  # path -> (code, content type, body)


def parse_addr(addr: str) -> tuple[str, int] | None:
    """``host:port`` or ``:port`` (all interfaces); ``0`` or empty disables."""
    if addr in ("", "0"):
        return None
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr!r}: expected host:port or :port")
    return host.strip("[]"), int(port)


def check_route(check: Check) -> Callable[[], tuple[int, str, str]]:
    def route() -> tuple[int, str, str]:
        ok, detail = check()
        return (200 if ok else 503), "text/plain; charset=utf-8", (detail or "ok") + "\n"

    return route


class Server:
    """One HTTP server on its own thread; ``port`` is the bound port (useful with :0)."""

    def __init__(self, addr: tuple[str, int], routes: Routes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    code, ctype, body = 404, "text/plain", "not found\n"
                else:
                    try:
                        code, ctype, body = route()
                    except Exception as e:  # a probe must answer, whatever broke
                        log.exception("serving %s failed", self.path)
                        code, ctype, body = 500, "text/plain", f"{e}\n"
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the operator's own logs

        self.httpd = ThreadingHTTPServer(addr, Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name=f"http-{self.port}"
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
