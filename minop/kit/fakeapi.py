"""An in-memory API server behind a real ``Kube`` client, for tests that must choose
the order of things.

    api = FakeApi([WIDGETS, kinds.CONFIG_MAP])
    kube = api.kube()                       # minop's own client, its requests land here
    api.put(WIDGETS, {...})                 # a user's create or edit
    api.watch_log[WIDGETS]                  # the watch events, for the test to deliver

Writes are stored as the API server stores them (resourceVersion, generation on spec
changes, the status subresource, finalizers and deletionTimestamp, owner garbage
collection) and append to ``watch_log``; nothing reaches an informer until the test
delivers it. ``faults`` answers the next writes with an error or a lost response;
``before_write`` runs when a write arrives, before it is stored (a user's change it
meets, or an error of the client's own); ``after_write`` runs once a write is stored,
before its response returns (a user's change, or watch events delivered, while minop
waits for its answer). ``sent`` keeps every write request as sent. e2e tests always
talk to a real API server.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from minop.kit.fakestore import FakeStore, ObjectKey, Refused
from minop.kube import Kube
from minop.objects import Obj
from minop.resource import Kind
from minop.transport import Session

SERVER = "http://fake-api.invalid"
# A fault answers one write: an HTTP status, "timeout" (never stored) or "lost" (stored,
# but the answer never arrives).
Fault = int | str


@dataclass(frozen=True)
class Sent:
    """A write request as the client sent it."""

    method: str
    path: str
    content_type: str
    body: Any


class FakeApi(FakeStore):
    """A ``FakeStore`` answering minop's requests; ``store`` are its ``validate`` and
    ``rv_format``."""

    def __init__(self, kinds: Iterable[Kind], **store: Any) -> None:
        super().__init__(kinds, **store)
        self.events: list[Obj] = []  # Events minop recorded
        self.reads: list[ObjectKey] = []  # every object minop read by name (GET)
        # minop's writes: (method, path, result, the client's User-Agent)
        self.writes: list[tuple[str, str, str, str]] = []
        self.sent: list[Sent] = []  # every write request (Events included), in order
        self.faults: deque[Fault] = deque()
        # both get the written path; neither runs for Events
        self.before_write: Callable[[str], None] | None = None
        self.after_write: Callable[[str], None] | None = None
        self._agent = ""  # of the request being answered

    # -- the client ------------------------------------------------------------------

    def kube(self, **kw: Any) -> Kube:
        """A real client whose requests this server answers (no retries inside the
        client unless ``retries`` says so: the caller sees every answer)."""
        doc = {
            "clusters": [{"name": "fake", "cluster": {"server": SERVER}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
            "current-context": "fake",
        }
        agent = kw.pop("agent", "minop-test")
        kube = Kube(doc, agent=agent, **{"retries": 1, **kw})
        for session in (kube._session, kube._watch_session):
            session.mount(SERVER, _Transport(self))
        kube.use_transport(Session(kube._session, kube.server))  # through the mount above
        return kube

    # -- requests --------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str], body: Any,
               content_type: str, agent: str = "") -> tuple[int, Any, dict[str, str]]:  # fmt: skip
        """One request: (status, JSON body, headers)."""
        if method != "GET":
            with self._lock:
                self.sent.append(Sent(method, path, content_type, copy.deepcopy(body)))
            if self.before_write is not None and "/events" not in path:
                self.before_write(path)  # outside the lock: it may wait, or write itself
        try:
            with self._lock:
                self._agent = agent
                return 200, self._route(method, path, params, body, content_type), {}
        except Refused as e:
            status = {"kind": "Status", "code": e.code, "reason": e.reason, "message": e.message}
            headers = {"Retry-After": "1"} if e.code == 429 else {}
            return e.code, status, headers

    def _route(self, method: str, path: str, params: dict[str, str], body: Any,
               content_type: str) -> Any:  # fmt: skip
        parts = path.strip("/").split("/")
        if parts == ["version"]:
            return {"major": "1", "minor": "36"}
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (
            parts[1], parts[2], parts[3:])  # fmt: skip
        if not rest:  # discovery
            plurals = [
                k.plural for (g, v, _), k in self.kinds.items() if (g, v) == (group, version)
            ]
            return {"resources": [{"name": p} for p in plurals]}
        ns = ""
        if rest[0] == "namespaces" and len(rest) > 2:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if plural == "events":
            return self._event(method, body)
        kind = self.kinds.get((group, version, plural))
        if kind is None:
            raise Refused(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            if name is None:
                return self._list(kind, ns, params.get("labelSelector", ""))
            self.reads.append(self._key(kind, ns, name))
            found = self.get(kind, ns, name)
            if found is None:
                raise Refused(404, "NotFound", f"{plural} {name!r} not found")
            return found
        if method == "POST" and name is None:
            name = body["metadata"]["name"]
        assert name is not None, f"{method} {path}"
        fault = self.faults.popleft() if self.faults else None
        if isinstance(fault, int):
            self.writes.append((method, path, str(fault), self._agent))
            raise Refused(fault, "Injected", f"injected {fault}")
        if fault == "timeout":
            self.writes.append((method, path, "timeout", self._agent))
            raise requests.Timeout(f"injected timeout: {method} {path}")
        try:
            out = self._write(method, kind, ns, name, sub, body, content_type)
        except Refused as e:
            self.writes.append((method, path, str(e.code), self._agent))
            raise
        self.writes.append((method, path, "lost" if fault == "lost" else "ok", self._agent))
        if self.after_write is not None:
            self.after_write(path)
        if fault == "lost":
            raise requests.Timeout(f"injected lost response: {method} {path}")
        return out

    def _list(self, kind: Kind, ns: str, selector: str) -> Obj:
        wanted = [tuple(s.split("=", 1)) for s in selector.split(",") if s]
        items = [
            o for o in self.all(kind)
            if (not ns or o["metadata"].get("namespace") == ns)
            and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted)
        ]  # fmt: skip
        return {"items": items, "metadata": {"resourceVersion": self.resource_version()}}

    def _event(self, method: str, body: Any) -> Obj:
        if method == "POST":
            self.events.append(copy.deepcopy(body))
        return dict(body or {})


class _Transport(BaseAdapter):
    """requests' side: hands each request to the FakeApi, raising what it raises."""

    def __init__(self, api: FakeApi) -> None:
        super().__init__()
        self.api = api

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        url = urlparse(request.url or "")
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        code, out, headers = self.api.handle(
            request.method or "GET",
            url.path,
            dict(parse_qsl(url.query)),
            json.loads(raw) if raw else None,
            request.headers.get("Content-Type", ""),
            request.headers.get("User-Agent", ""),
        )
        resp = requests.Response()
        resp.status_code, resp.url, resp.request = code, request.url or "", request
        resp._content = json.dumps(out).encode()
        resp.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        resp.reason = "OK" if code < 400 else out.get("reason", "")
        return resp

    def close(self) -> None:
        pass
