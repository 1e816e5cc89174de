"""The only module that speaks HTTP to the API server; ``minop.kube.Kube`` is the
client built on it.

Built on pykube-ng's config (every pykube use is here, so moving to its fork
``new-pykube`` is a one-line change). Ordinary requests go through
``minop.transport``: kept ``http.client`` connections with the kubeconfig's TLS and
static credentials, or, for what only pykube-ng's TLS/auth adapter can do (exec
plugins, auth-providers, a proxy), requests with that adapter; watches always use
requests with the adapter. It closes the adapter's gaps: separate connection pools
for watches, read timeouts above the watch's ``timeoutSeconds``, 429/5xx retries
honouring ``Retry-After``, a client-side rate limit, re-read service-account tokens,
a User-Agent naming host and pid, a request counter, and a write fence for leader
election.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, urlencode, urlparse

import pykube
import requests
from pykube.http import KubernetesHTTPAdapter

from minop.apierrors import ApiError, Conflict, Gone, NotFound, StreamStalled, WritesFenced
from minop.metrics import Metrics
from minop.objects import Obj
from minop.ratelimit import RateLimiter
from minop.resource import Kind
from minop.transport import (
    IDEMPOTENT,
    Pooled,
    Response,
    Session,
    Transport,
    TransportError,
    fallback_reason,
    pooled,
)
from minop.watchstream import WatchStream

log = logging.getLogger("minop.rest")

# Methods whose retry after a 5xx or a dropped connection cannot apply twice.
_IDEMPOTENT = IDEMPOTENT
_PATH_SAFE = "/%:@!$&'()*+,;=~"
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is waited this long


def user_agent(version: str) -> str:
    return f"minop/{version} ({socket.gethostname()}/{os.getpid()})"


def _error(resp: Response) -> ApiError:
    try:
        body = json.loads(resp.body)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = body.get("reason") or resp.reason or ""
    message = body.get("message") or resp.body[:500].decode(errors="replace")
    cls = {404: NotFound, 409: Conflict, 410: Gone}.get(resp.status, ApiError)
    try:  # an http.client message answers None for a missing name, never KeyError
        retry_after: float | None = min(
            MAX_RETRY_AFTER, max(0.0, float(resp.headers.get("Retry-After") or ""))
        )
    except ValueError:
        retry_after = None
    return cls(resp.status, reason, message, body, retry_after)


class _TokenFile:
    """A bearer token file (projected service-account tokens rotate): re-read each minute."""

    def __init__(self, path: str) -> None:
        self.path, self._token, self._read_at = Path(path), "", 0.0

    def header(self) -> str:
        if time.monotonic() - self._read_at > 60 or not self._token:
            self._token = self.path.read_text().strip()
            self._read_at = time.monotonic()
        return f"Bearer {self._token}"


class RestClient:
    """Requests to one cluster, thread-safe: the sessions, the request loop, watches."""

    def __init__(
        self,
        config_doc: Obj,
        *,
        agent: str,
        metrics: Metrics | None = None,
        qps: float = 0.0,
        burst: int = 0,
        timeout: float = 30.0,
        pool_size: int = 32,
        watch_pool_size: int = 64,
        retries: int = 5,
    ) -> None:
        self.config_doc, self.agent, self.pool_size = config_doc, agent, pool_size
        self.config = pykube.KubeConfig(config_doc)
        self.server = self.config.cluster["server"].rstrip("/")
        self.host = urlparse(self.server).netloc
        self.namespace = self.config.namespace
        self.metrics = metrics or Metrics()
        self.timeout, self.retries = timeout, retries
        self.limiter = RateLimiter(qps, burst)
        token_file = self.config.user.get("tokenFile")
        self._token = _TokenFile(token_file) if token_file else None
        # Watches hold a connection each for minutes: give them their own pool so
        # they never starve ordinary requests (requests pools 10 by default).
        self._session = self._new_session(agent, pool_size)
        self._watch_session = self._new_session(agent, watch_pool_size)
        self.use_transport(*self._new_transport(agent, pool_size))
        # Leader election installs a fence; once it says no, writes are refused.
        self.fence: Callable[[], bool] | None = None

    def _new_session(self, agent: str, pool: int) -> requests.Session:
        adapter = KubernetesHTTPAdapter(self.config, pool_connections=4, pool_maxsize=pool)
        client = pykube.HTTPClient(self.config, http_adapter=adapter)
        session: requests.Session = client.session  # pykube has no type hints
        session.headers["User-Agent"] = agent
        # The proxy environment is read once, as client-go reads it: with trust_env,
        # requests looks up proxies and ~/.netrc again on every request (a tenth of
        # minop's CPU in a burst, by py-spy).
        session.proxies = requests.utils.get_environ_proxies(self.server)
        session.trust_env = False
        return session

    def _new_transport(self, agent: str, pool: int) -> tuple[Transport, str]:
        """Kept http.client connections unless the kubeconfig or the environment needs
        what only requests with pykube-ng's adapter does (decided once, as the proxy)."""
        cluster, user = self.config.cluster, self.config.user
        why = fallback_reason(cluster, user, proxied=bool(self._session.proxies))
        transport: Transport
        if why:
            transport, note = Session(self._session, self.server), f"requests (because of {why})"
        else:
            transport = pooled(cluster, user, size=pool, agent=agent)
            note = f"http.client, {pool} kept connections"
        # the manager logs it at INFO once started (a start-up error stays one line)
        log.debug("API transport for %s: %s", self.host, note)
        return transport, note

    def use_transport(self, transport: Transport, note: str = "") -> None:
        """Send ordinary requests through ``transport`` (and say so in /metrics);
        ``transport_note`` says which and why, for the manager's start-up line."""
        self._transport, self.transport_note = transport, note or transport.name
        self._show_transport()

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Metrics) -> None:  # the manager hands over its own
        self._metrics = metrics
        self._show_transport()

    def _show_transport(self) -> None:
        if hasattr(self, "_transport") and hasattr(self, "_metrics"):
            for name in (Session.name, Pooled.name):
                value = 1 if name == self._transport.name else 0
                self._metrics.rest_transport.set(value, host=self.host, transport=name)

    @property
    def transport(self) -> str:
        """Which transport ordinary requests take: http.client or requests."""
        return self._transport.name

    def with_timeouts(self, timeout: float, retries: int) -> Self:
        """This client with other timeouts (same connections, limiter and metrics)."""
        clone = copy.copy(self)
        clone.timeout, clone.retries = timeout, retries
        return clone

    # -- paths ---------------------------------------------------------------

    @staticmethod
    def path(
        kind: Kind, namespace: str | None = None, name: str | None = None, sub: str | None = None
    ) -> str:
        base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
        if kind.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{kind.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    # -- the one request loop ------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        fenced: bool = True,
    ) -> Obj:
        """Send one request, retrying throttling and transient failures; return JSON.

        A write is checked against the fence on every attempt, after the rate limiter
        and after each retry's wait: it can never land once leadership is in doubt."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        # as requests did: characters a URL cannot carry escaped (escapes kept), a
        # parameter that is None left out
        target = quote(path, safe=_PATH_SAFE)
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, True)
        if query:
            target += "?" + query
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            if fenced and method != "GET" and self.fence is not None and not self.fence():
                raise WritesFenced(f"{method} {path}: leadership lost, write refused")
            try:
                resp = self._transport.send(method, target, data, self._auth(headers), self.timeout)
            except TransportError as e:
                self.metrics.rest_requests.inc(code="<error>", method=method, host=self.host)
                err = ApiError(0, "ConnectionError", f"{method} {path}: {e}")
                if method in _IDEMPOTENT and attempt < self.retries:
                    time.sleep(self._backoff(attempt))
                    continue
                raise err from e
            self.metrics.rest_requests.inc(code=str(resp.status), method=method, host=self.host)
            if resp.status < 400:
                return json.loads(resp.body) if resp.body else {}
            err = _error(resp)
            retry = resp.status == 429 or (
                resp.status >= 500 and err.retryable and method in _IDEMPOTENT
            )
            if retry and attempt < self.retries:
                wait = err.retry_after
                time.sleep(self._backoff(attempt) if wait is None else wait)
                continue
            raise err

    def _auth(self, headers: dict[str, str]) -> dict[str, str]:
        if self._token is not None:
            return {**headers, "Authorization": self._token.header()}
        return headers

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(5.0, 0.1 * 2.0**attempt) * random.uniform(0.5, 1.0)

    @property
    def longest_request(self) -> float:
        """The longest one request may legitimately take: every attempt timing out, the
        longest wait between two (liveness tells a slow request from a hung one by it)."""
        return self.retries * self.timeout + (self.retries - 1) * MAX_RETRY_AFTER

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        params: Mapping[str, Any],
        read_timeout: float,
    ) -> WatchStream:
        """Open a watch stream (``params`` as the API takes them, without ``watch``).

        ``read_timeout`` bounds the silence between two chunks: the caller sets
        it to its inactivity limit, so a stalled stream raises instead of hanging.
        """
        self.limiter.acquire()
        url = self.server + self.path(kind, namespace)
        try:
            resp = self._watch_session.get(
                url,
                params={**params, "watch": "true"},
                stream=True,
                headers=self._auth({}),
                timeout=(min(self.timeout, read_timeout), read_timeout),
            )
        except requests.RequestException as e:
            self.metrics.rest_requests.inc(code="<error>", method="WATCH", host=self.host)
            if isinstance(e, requests.ReadTimeout):  # connected, but no headers came back
                raise StreamStalled(f"watch {kind}: {e}") from e
            raise ApiError(0, "ConnectionError", f"watch {kind}: {e}") from e
        self.metrics.rest_requests.inc(code=str(resp.status_code), method="WATCH", host=self.host)
        if resp.status_code >= 400:
            answer = Response(resp.status_code, resp.reason or "", resp.headers, resp.content)
            resp.close()
            raise _error(answer)
        return WatchStream(resp)
