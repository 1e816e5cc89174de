"""How a request reaches the API server: kept ``http.client`` connections, or requests.

``RestClient`` (``minop.rest``) decides what to send and what an answer means; a
transport only carries one request and brings back its answer. ``Pooled`` is the
standard library's ``http.client`` over a bounded pool of keep-alive connections, with
the kubeconfig's TLS and static credentials (a fraction of the CPU requests and
pykube-ng's adapter spend per request); ``Session`` is requests with pykube-ng's
adapter, for everything ``Pooled`` cannot do itself (``fallback_reason`` says what).
The choice is made once, from the kubeconfig and the proxy environment.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, Protocol
from urllib.parse import urlparse

import certifi
import requests

# Methods a kept connection the server had closed may send again: they cannot apply twice.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
# The kubeconfig keys Pooled honours itself (pykube-ng turns ``*-data`` into file
# helpers, so those appear without the suffix); any other key falls back to requests.
_CLUSTER_KEYS = {
    "server", "certificate-authority", "insecure-skip-tls-verify", "tls-server-name",
    "extensions", "disable-compression",
}  # fmt: skip
_USER_KEYS = {
    "token", "tokenFile", "client-certificate", "client-key", "username", "password",
    "extensions",
}  # fmt: skip


@dataclass(frozen=True)
class Response:
    """One answer: status, reason phrase, headers (case-insensitive lookup), body."""

    status: int
    reason: str
    headers: Mapping[str, str] | Message  # both look a name up case-insensitively
    body: bytes


class TransportError(Exception):
    """No answer: the connection failed, timed out or was dropped."""


class Transport(Protocol):
    name: str

    def send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str],
        timeout: float,
    ) -> Response: ...  # fmt: skip


class Session:
    """requests (pykube-ng's adapter: every auth mode it knows, proxies): today's path."""

    name = "requests"

    def __init__(self, session: requests.Session, server: str) -> None:
        self.session, self.server = session, server

    def send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str],
        timeout: float,
    ) -> Response:  # fmt: skip
        try:
            r = self.session.request(
                method, self.server + target, data=body, headers=headers, timeout=timeout
            )
        except requests.RequestException as e:
            raise TransportError(str(e)) from e
        return Response(r.status_code, r.reason or "", r.headers, r.content)


class _HTTPS(http.client.HTTPSConnection):
    """Verifies the certificate against ``server_name`` (kubeconfig tls-server-name)."""

    server_name: str

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.server_name
        )


# A kept connection the server closed, as the next request meets it.
_DROPPED = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)  # RemoteDisconnected too


def _readable(sock: socket.socket) -> bool:
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


class Pooled:
    """At most ``size`` kept connections, taken most recently used first; a caller waits
    for one at most its timeout. A kept connection the server closed is noticed before
    use, or, if that races, an idempotent request is sent once more on a new one."""

    name = "http.client"

    def __init__(
        self, server: str, *, size: int, context: ssl.SSLContext | None = None,
        server_name: str | None = None, headers: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        url = urlparse(server)
        self.host, self.port = url.hostname or "localhost", url.port
        self.prefix = url.path.rstrip("/")  # a server URL may carry a path
        self.context, self.server_name = context, server_name or self.host
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.context is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn = _HTTPS(self.host, self.port, timeout=timeout, context=self.context)
        conn.server_name = self.server_name
        return conn

    def _take(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """A kept connection still open (reused: True), else a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect(timeout), False
            sock = conn.sock
            # Readable while idle: the server closed it (or sent what nobody asked for).
            if sock is not None and not _readable(sock):
                sock.settimeout(timeout)
                return conn, True
            conn.close()

    def send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str],
        timeout: float,
    ) -> Response:  # fmt: skip
        if not self._slots.acquire(timeout=timeout):
            raise TransportError(f"no free connection of {self.size} within {timeout:g}s")
        try:
            conn, reused = self._take(timeout)
            try:
                return self._exchange(conn, method, target, body, headers)
            except _DROPPED as e:
                if not (reused and method in IDEMPOTENT):
                    raise TransportError(f"{type(e).__name__}: {e}") from e
            # The server dropped a kept connection as the request went out: once more, anew.
            return self._exchange(self._connect(timeout), method, target, body, headers)
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(f"{type(e).__name__}: {e}") from e
        finally:
            self._slots.release()

    def _exchange(
        self, conn: http.client.HTTPConnection, method: str, target: str,
        body: bytes | None, headers: dict[str, str],
    ) -> Response:  # fmt: skip
        try:
            conn.request(method, self.prefix + target, body, {**self.headers, **headers})
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return Response(resp.status, resp.reason, resp.headers, data)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def fallback_reason(cluster: Mapping[str, Any], user: Mapping[str, Any], proxied: bool) -> str:
    """Why ``Pooled`` cannot serve this kubeconfig ("" when it can)."""
    if proxied:
        return "a proxy from the environment"
    scheme = urlparse(str(cluster.get("server", ""))).scheme
    if scheme not in ("http", "https"):
        return f"server scheme {scheme!r}"
    if "exec" in user:
        return "an exec credential plugin"
    if "auth-provider" in user:
        return "an auth-provider"
    unknown = sorted((set(cluster) - _CLUSTER_KEYS) | (set(user) - _USER_KEYS))
    if unknown:
        return f"kubeconfig keys {', '.join(unknown)}"
    if bool(user.get("username")) != bool(user.get("password")):
        return "a username without a password, or the reverse"
    if bool(user.get("client-certificate")) != bool(user.get("client-key")):
        return "a client certificate without its key, or the reverse"
    return ""


def pooled(cluster: Mapping[str, Any], user: Mapping[str, Any], *, size: int, agent: str) -> Pooled:
    """A ``Pooled`` for a kubeconfig ``fallback_reason`` accepts. A static token or basic
    credentials go on every request; the caller's Authorization header (a token file's,
    re-read) takes precedence."""
    server = str(cluster["server"])
    headers = {"User-Agent": agent}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    elif user.get("username"):
        pair = f"{user['username']}:{user['password']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if urlparse(server).scheme == "http":
        return Pooled(server, size=size, headers=headers)
    return Pooled(
        server, size=size, context=tls_context(cluster, user), headers=headers,
        server_name=cluster.get("tls-server-name") or None,
    )  # fmt: skip


def tls_context(cluster: Mapping[str, Any], user: Mapping[str, Any]) -> ssl.SSLContext:
    """TLS as pykube-ng's adapter sets it up: the CA (or, skipping verification, none; or
    certifi's bundle, as requests), the client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca = os.environ.get("PYKUBE_SSL_CERTIFICATE_AUTHORITY")
    if ca is None and "certificate-authority" in cluster:
        ca = cluster["certificate-authority"].filename()
    if ca is None and cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=ca or certifi.where())
    if user.get("client-certificate"):
        ctx.load_cert_chain(user["client-certificate"].filename(), user["client-key"].filename())
    return ctx
