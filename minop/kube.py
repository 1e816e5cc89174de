"""The only module that speaks HTTP to the API server.

Built on pykube-ng's config and TLS/auth adapter (every pykube use is here, so
moving to its fork ``new-pykube`` is a one-line change) and closes its gaps:
separate connection pools for watches, read timeouts above the watch's
``timeoutSeconds``, 429/5xx retries honouring ``Retry-After``, a client-side
rate limit, JSON/merge patches and server-side apply with the right content
types, re-read service-account tokens, a User-Agent naming host and pid, a
request counter, and a write fence for leader election.
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
from typing import Any
from urllib.parse import urlparse

import pykube
import requests
from pykube.http import KubernetesHTTPAdapter

from minop import kubeconfig
from minop.apierrors import ApiError, Conflict, Gone, NotFound, StreamStalled, WritesFenced
from minop.metrics import Metrics
from minop.objects import Obj
from minop.ratelimit import RateLimiter
from minop.resource import Kind
from minop.watchstream import WatchStream

log = logging.getLogger("minop.kube")

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
# Methods whose retry after a 5xx or a dropped connection cannot apply twice.
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "PATCH"}
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is waited this long


def user_agent(version: str) -> str:
    return f"minop/{version} ({socket.gethostname()}/{os.getpid()})"


def _error(resp: requests.Response) -> ApiError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = body.get("reason") or resp.reason or ""
    message = body.get("message") or resp.text[:500]
    cls = {404: NotFound, 409: Conflict, 410: Gone}.get(resp.status_code, ApiError)
    try:
        retry_after: float | None = min(
            MAX_RETRY_AFTER, max(0.0, float(resp.headers["Retry-After"]))
        )
    except (KeyError, ValueError):
        retry_after = None
    return cls(resp.status_code, reason, message, body, retry_after)


class _TokenFile:
    """A bearer token file (projected service-account tokens rotate): re-read each minute."""

    def __init__(self, path: str) -> None:
        self.path, self._token, self._read_at = Path(path), "", 0.0

    def header(self) -> str:
        if time.monotonic() - self._read_at > 60 or not self._token:
            self._token = self.path.read_text().strip()
            self._read_at = time.monotonic()
        return f"Bearer {self._token}"


class Kube:
    """A thread-safe client for one cluster."""

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

    def for_leader_election(self) -> Kube:
        """A client of its own (connections, no rate limit, User-Agent suffix), as
        controller-runtime gives leader election: a burst of other traffic can never
        delay a renewal past the renew deadline."""
        return Kube(
            self.config_doc,
            agent=f"{self.agent} leader-election",
            metrics=self.metrics,
            pool_size=2,
            watch_pool_size=1,
        )

    def with_timeouts(self, timeout: float, retries: int) -> Kube:
        """This client with other timeouts (same connections, limiter and metrics)."""
        clone = copy.copy(self)
        clone.timeout, clone.retries = timeout, retries
        return clone

    @classmethod
    def from_env(
        cls, kubeconfig_path: str | None = None, context: str | None = None, **kw: Any
    ) -> Kube:
        return cls(kubeconfig.load(kubeconfig_path, context), **kw)

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
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            if fenced and method != "GET" and self.fence is not None and not self.fence():
                raise WritesFenced(f"{method} {path}: leadership lost, write refused")
            try:
                resp = self._session.request(
                    method,
                    self.server + path,
                    params=params,
                    data=data,
                    headers=self._auth(headers),
                    timeout=self.timeout,
                )
            except requests.RequestException as e:
                self.metrics.rest_requests.inc(code="<error>", method=method, host=self.host)
                err = ApiError(0, "ConnectionError", f"{method} {path}: {e}")
                if method in _IDEMPOTENT and attempt < self.retries:
                    time.sleep(self._backoff(attempt))
                    continue
                raise err from e
            self.metrics.rest_requests.inc(
                code=str(resp.status_code), method=method, host=self.host
            )
            if resp.status_code < 400:
                return resp.json() if resp.content else {}
            err = _error(resp)
            retry = resp.status_code == 429 or (
                resp.status_code >= 500 and err.retryable and method in _IDEMPOTENT
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

    # -- verbs ----------------------------------------------------------------

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        return self.request("GET", self.path(kind, namespace, name))

    def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        shard_selector: str | None = None,
        page_size: int = 500,
        progress: Callable[[], None] | None = None,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> tuple[list[Obj], str]:
        """All objects, fetched in pages; returns them with the list's resourceVersion.

        ``transform`` runs on each object as its page arrives, so what it drops (e.g.
        managedFields) is never held for the whole list: Python keeps the memory a
        peak took. ``progress`` runs after every page (a long list is not a stalled one). When
        the continue token expires mid-way the rest cannot be consistent with what
        came before: like client-go's pager, list everything again in one request
        instead of paging from scratch (which could expire again, forever)."""
        params: dict[str, Any] = {"limit": page_size}
        if label_selector:
            params["labelSelector"] = label_selector
        if shard_selector:
            params["shardSelector"] = shard_selector
        items: list[Obj] = []
        while True:
            try:
                page = self.request("GET", self.path(kind, namespace), params=params)
            except Gone:
                if "continue" not in params:
                    raise
                log.warning("listing %s: continue token expired; listing unpaginated", kind)
                params = {k: v for k, v in params.items() if k not in ("continue", "limit")}
                items = []
                continue
            if progress is not None:
                progress()
            for item in page.get("items") or []:
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item if transform is None else transform(item))
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return items, meta.get("resourceVersion", "")
            params["continue"] = meta["continue"]

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
            resp.close()
            raise _error(resp)
        return WatchStream(resp)

    def create(
        self, kind: Kind, body: Obj, namespace: str | None = None, *, fenced: bool = True
    ) -> Obj:
        ns = namespace or body.get("metadata", {}).get("namespace")
        return self.request("POST", self.path(kind, ns), body=body, fenced=fenced)

    def replace(self, kind: Kind, body: Obj, *, fenced: bool = True) -> Obj:
        """PUT the whole object; its resourceVersion makes a concurrent change a Conflict."""
        meta = body["metadata"]
        path = self.path(kind, meta.get("namespace"), meta["name"])
        return self.request("PUT", path, body=body, fenced=fenced)

    def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Obj:
        return self.request(
            "PATCH",
            self.path(kind, namespace, name, subresource),
            body=patch,
            content_type=PATCH_TYPES[patch_type],
            params=params,
        )

    def apply(
        self,
        kind: Kind,
        body: Obj,
        *,
        field_manager: str = "minop",
        force: bool = True,
        subresource: str | None = None,
    ) -> Obj:
        """Server-side apply ``body`` (JSON is valid YAML) as ``field_manager``."""
        meta = body["metadata"]
        return self.patch(
            kind,
            meta["name"],
            body,
            meta.get("namespace"),
            patch_type="apply",
            subresource=subresource,
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
        )

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        missing_ok: bool = True,
    ) -> Obj | None:
        try:
            return self.request(
                "DELETE",
                self.path(kind, namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except NotFound:
            if missing_ok:
                return None
            raise

    def version(self) -> Obj:
        return self.request("GET", "/version")
