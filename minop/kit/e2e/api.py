"""The e2e suite's own client of the cluster's API (the standard library only, so it
never shares a bug with minop's client): ``Api`` (requests with the kubeconfig's
credentials) and ``Watch`` (records watch events from a known resourceVersion, so
no event after its start is missed). Fixtures for them are in minop.kit.e2e.fixtures."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, status: int, body: dict[str, Any] | str) -> None:
        self.status, self.body = status, body
        msg = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status}: {msg}")


class Api:
    """A small client for the kubeconfig's current context: client certificates or a bearer
    token (exec plugins are not supported). Every request uses a new connection (stdlib only).

    ``api.request("GET", "/api/v1/namespaces")`` returns the decoded JSON and raises
    ``ApiError`` (with ``.status`` and ``.body``) for a status >= 400.
    """

    def __init__(
        self,
        server: str,
        *,
        cafile: str | None = None,
        insecure: bool = False,
        cert: str | None = None,
        key: str | None = None,
        token: str | None = None,
        user_agent: str = "minop-e2e",
    ) -> None:
        self._args: dict[str, Any] = dict(
            cafile=cafile, insecure=insecure, cert=cert, key=key, token=token
        )
        u = urlsplit(server)
        self.server, self.host, self.port = server.rstrip("/"), u.hostname or "", u.port or 443
        self.base = u.path.rstrip("/")
        self.token, self.user_agent = token, user_agent
        self._resources: list[dict[str, Any]] = []
        self.ctx = ssl.create_default_context(cafile=cafile)
        if insecure:
            self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE
        if cert and key:
            self.ctx.load_cert_chain(cert, key)

    @classmethod
    def from_kubeconfig(cls, path: str, workdir: Path) -> Api:
        import yaml

        first = Path(path.split(os.pathsep)[0])
        cfg = yaml.safe_load(first.read_text())
        ctx_name = cfg.get("current-context")
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        users = cfg.get("users") or []
        user: dict[str, Any] = next(
            (u["user"] for u in users if u["name"] == context.get("user")), {}
        )

        def material(key: str) -> str | None:  # a file path for `key` or `key-data`
            src = cluster if key == "certificate-authority" else user
            if src.get(f"{key}-data"):
                f = workdir / key
                f.write_bytes(base64.b64decode(src[f"{key}-data"]))
                f.chmod(0o600)
                return str(f)
            if src.get(key):
                return str((first.parent / src[key]).resolve())
            return None

        cert, key = material("client-certificate"), material("client-key")
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        if not (cert or token):
            pytest.fail(f"Api supports client-certificate or token users only ({first})")
        return cls(
            cluster["server"],
            cafile=material("certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            cert=cert,
            key=key,
            token=token,
        )

    def as_token(self, token: str) -> Api:
        """The same cluster, authenticated by ``token`` alone (no client certificate)."""
        args = {**self._args, "cert": None, "key": None, "token": token}
        return Api(self.server, user_agent=self.user_agent, **args)

    def with_user_agent(self, user_agent: str) -> Api:
        return Api(self.server, user_agent=user_agent, **self._args)

    def connect(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        timeout: float = 30,
    ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = (
                "application/merge-patch+json" if method == "PATCH" else "application/json"
            )
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        conn.request(method, url, body=data, headers=headers)
        return conn, conn.getresponse()

    def resource_path(self, resource: str, namespace: str | None = None) -> str:
        """The collection URL of ``resource`` named as kubectl takes it: plural, singular,
        kind or short name, optionally qualified by its group (``pods``, ``sts``,
        ``widgets.example.com``). Namespaced resources without ``namespace``: all namespaces."""
        name, _, group = resource.lower().partition(".")
        for refresh in (False, True):  # a CRD may have appeared since the last discovery
            for r in self._discover(refresh):
                if name in r["names"] and (not group or r["group"] == group):
                    base = f"/apis/{r['group']}/{r['version']}" if r["group"] else "/api/v1"
                    if r["namespaced"] and namespace:
                        base += f"/namespaces/{namespace}"
                    return f"{base}/{r['plural']}"
        raise AssertionError(f"the API server serves no resource {resource!r}")

    def _discover(self, refresh: bool) -> list[dict[str, Any]]:
        if refresh or not self._resources:
            lists = [self.request("GET", "/api/v1")]
            for g in self.request("GET", "/apis")["groups"]:
                lists.append(self.request("GET", f"/apis/{g['preferredVersion']['groupVersion']}"))
            out = []
            for rl in lists:
                group, _, version = rl["groupVersion"].rpartition("/")
                for r in rl["resources"]:
                    if "/" in r["name"]:
                        continue  # a subresource
                    names = {r["name"], r.get("singularName", ""), r["kind"].lower()}
                    names |= set(r.get("shortNames") or [])
                    out.append(
                        dict(
                            group=group,
                            version=version,
                            plural=r["name"],
                            namespaced=r["namespaced"],
                            names=names - {""},
                        )
                    )
            self._resources = out
        return self._resources

    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        conn, resp = self.connect(method, path, body, query or None)
        try:
            raw = resp.read().decode()
        finally:
            conn.close()
        try:
            doc: Any = json.loads(raw) if raw else None
        except ValueError:
            doc = raw
        if resp.status >= 400:
            raise ApiError(method, path, resp.status, doc)
        return doc


class Watch:
    """Records the watch events of a collection, from the resourceVersion of a LIST made in
    the constructor: every change after the constructor returns is recorded, in the order
    the API server sent them, however late the watch connection itself is established.

    ``events`` holds (type, object) pairs, starting like ``kubectl get --watch
    --output-watch-events`` with an ADDED event for each object that already existed (those
    are also in ``initial``). An ERROR event (e.g. 410 Gone) is recorded too and makes
    ``wait`` fail.
    """

    def __init__(self, api: Api, path: str, **query: str) -> None:
        listing = api.request("GET", path, **query)
        self.initial: list[dict[str, Any]] = listing["items"]
        self.events: list[tuple[str, dict[str, Any]]] = [("ADDED", o) for o in self.initial]
        self._arrived = threading.Condition()  # notified on every event: wait() never polls
        self.path, self._stopped = path, False
        rv = listing["metadata"]["resourceVersion"]
        q = {**query, "watch": "1", "resourceVersion": rv, "timeoutSeconds": "3600"}
        self._conn, self._resp = api.connect("GET", path, query=q, timeout=3700)
        if self._resp.status != 200:
            body = self._resp.read().decode()
            self._conn.close()
            raise ApiError("WATCH", path, self._resp.status, body)
        self._thread = threading.Thread(target=self._pump, daemon=True, name=f"watch {path}")
        self._thread.start()

    def _pump(self) -> None:
        try:
            while line := self._resp.readline():
                if line.strip():
                    ev = json.loads(line)
                    self._record(ev.get("type", ""), ev.get("object") or {})
        except Exception as e:
            if not self._stopped:  # surfaces in wait(), not as a stray thread exception
                self._record("ERROR", {"message": f"{type(e).__name__}: {e}"})

    def _record(self, etype: str, obj: dict[str, Any]) -> None:
        with self._arrived:
            self.events.append((etype, obj))
            self._arrived.notify_all()

    def names(self, etype: str) -> list[str]:
        """Names of the objects of every ``etype`` event (ADDED, MODIFIED, DELETED), in order."""
        return [o.get("metadata", {}).get("name", "") for t, o in list(self.events) if t == etype]

    def first_index(self, pred: Callable[[str, dict[str, Any]], bool]) -> int | None:
        """Index in ``events`` of the first (type, object) matching ``pred``, or None."""
        return next((i for i, (t, o) in enumerate(list(self.events)) if pred(t, o)), None)

    def wait(
        self, pred: Callable[[list[tuple[str, dict[str, Any]]]], Any], timeout: float, what: str
    ) -> Any:
        """The first truthy ``pred(events so far)``, checked as each event arrives (no
        polling); fails early on an ERROR event, and after ``timeout`` naming ``what``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                evs = list(self.events)
                errors = [o for t, o in evs if t == "ERROR"]
                if errors:
                    raise RuntimeError(f"watch {self.path} failed: {errors[0]}")
                try:
                    last = pred(evs)
                except AssertionError as e:
                    last = e
                else:
                    if last:
                        return last
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:g}s waiting for {what} (watch {self.path});"
                        f" last: {last!r}"
                    )
                self._arrived.wait(left)

    def stop(self) -> None:
        self._stopped = True
        try:  # shutdown wakes the reader blocked in recv(); close() alone would not
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._conn.close()  # only once the reader is done with the connection


def kubectl_get_args(api: Api, args: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(path, query) for ``kubectl get`` style arguments: ``RESOURCE[/NAME]`` with
    ``-n/--namespace``, ``-A/--all-namespaces``, ``-l/--selector``, ``--field-selector``."""
    it, resource, ns, everywhere = iter(args), "", "default", False
    query: dict[str, str] = {}
    for a in it:
        key, eq, val = a.partition("=")
        if key in ("-n", "--namespace", "-l", "--selector", "--field-selector") and not eq:
            val = next(it)
        if key in ("-n", "--namespace"):
            ns = val
        elif key in ("-l", "--selector"):
            query["labelSelector"] = val
        elif key == "--field-selector":
            query["fieldSelector"] = val
        elif key in ("-A", "--all-namespaces"):
            everywhere = True
        elif not a.startswith("-") and not resource:
            resource = a
        else:
            raise AssertionError(f"watch(): unsupported argument {a!r} in {args}")
    resource, _, name = resource.partition("/")
    if name:
        query["fieldSelector"] = ",".join(
            filter(None, [query.get("fieldSelector"), f"metadata.name={name}"])
        )
    return api.resource_path(resource, None if everywhere else ns), query
