"""HTTPS for the API server's webhook calls, on every replica.

Standard library only: ``http.server`` threads, one TLS context per connection's
handshake, so a rotated certificate (``load``) applies to the next connection while
the open ones finish on the old one: no request fails during a rotation. The number
of requests served at once is bounded; one over the bound waits a moment, then gets
a 429 with a message (the API server then applies the webhook's failurePolicy).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from minop.metrics import Metrics
from minop.webhook.review import CONVERT, MUTATE, VALIDATE, Reviews

log = logging.getLogger("minop.webhook")

PATHS = {"/" + m: m for m in (VALIDATE, MUTATE, CONVERT)}
MAX_BODY = 3 * 1024 * 1024  # the API server's request limit is 3 MiB
IO_TIMEOUT = 10.0  # a client silent this long (handshake, body) loses its connection
QUEUE_WAIT = 1.0  # how long a request over the in-flight bound waits for a slot


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open: set[ssl.SSLSocket] = set()  # kept-alive connections, closed on stop
        self.lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.ssl_context  # read once: a rotation swaps it for later connections
        if context is None:
            return
        request.settimeout(IO_TIMEOUT)
        try:
            conn = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS handshake from %s failed: %s", client_address, e)
            return
        with self.lock:
            self.open.add(conn)
        try:
            super().finish_request(conn, client_address)
        finally:
            with self.lock:
                self.open.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self.lock:
            for conn in self.open:
                with contextlib.suppress(OSError):  # already gone
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away mid-request; the API server retries or applies
        # the failurePolicy, nothing to do here
        log.debug("webhook connection from %s failed", client_address, exc_info=True)


class WebhookServer:
    """Serves ``/validate``, ``/mutate`` and ``/convert``; ``port`` is the bound port."""

    def __init__(
        self,
        addr: tuple[str, int],
        reviews: Reviews,
        metrics: Metrics,
        max_in_flight: int = 32,
    ) -> None:
        slots = threading.BoundedSemaphore(max_in_flight)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the API server keeps connections open

            def do_POST(self) -> None:
                if not slots.acquire(timeout=QUEUE_WAIT):
                    try:  # unread, the body would be taken for the next request
                        self._review()
                    except (ValueError, OSError):
                        self.close_connection = True
                    msg = f"minop webhook: more than {max_in_flight} requests in flight"
                    self._answer(429, {"message": msg}, self.path)
                    return
                metrics.webhook_in_flight.inc(webhook=self.path)
                start = time.monotonic()
                try:
                    code, body = self._serve()
                finally:
                    slots.release()
                    metrics.webhook_in_flight.dec(webhook=self.path)
                    metrics.webhook_latency.observe(time.monotonic() - start, webhook=self.path)
                self._answer(code, body, self.path)

            def _serve(self) -> tuple[int, dict[str, Any]]:
                # the body is read first: on a kept-alive connection what is left
                # unread would be taken for the next request
                try:
                    review = self._review()
                except (ValueError, OSError) as e:
                    self.close_connection = True
                    return 400, {"message": f"minop webhook: not a review: {e}"}
                mode = PATHS.get(self.path.split("?", 1)[0])
                if mode is None:
                    return 404, {"message": f"no webhook at {self.path}"}
                try:
                    if mode == CONVERT:
                        return 200, reviews.convert(review)
                    return 200, reviews.admit(mode, review)
                except Exception as e:  # a bug here must still answer with its reason
                    log.exception("webhook %s failed", self.path)
                    return 500, {"message": f"minop webhook {mode} failed: {e!r}"}

            def _review(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise ValueError(f"Content-Length {length} not in 1..{MAX_BODY}")
                review = json.loads(self.rfile.read(length))
                if not isinstance(review, dict):
                    raise ValueError("the body is not a JSON object")
                return review

            def _answer(self, code: int, body: dict[str, Any], webhook: str) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                metrics.webhook_requests.inc(webhook=webhook, code=str(code))

            def log_message(self, format: str, *args: object) -> None:
                pass  # metrics count requests; a log line each would drown the rest

        self.httpd = _Server(addr, Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name=f"webhook-{self.port}"
        )

    def load(self, cert_pem: str, key_pem: str) -> None:
        """Serve this certificate (chain) and key from the next connection on."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: a private directory, removed at once
        with tempfile.TemporaryDirectory(prefix="minop-webhook-") as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, pem in ((cert, cert_pem), (key, key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                    f.write(pem)
            context.load_cert_chain(cert, key)
        self.httpd.ssl_context = context

    def ready(self) -> tuple[bool, str]:
        if self.httpd.ssl_context is None:
            return False, "webhook server: no certificate loaded yet"
        return True, ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and end the kept-alive connections: the API server must see
        this replica gone (and use another, or the failurePolicy)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.close_connections()
