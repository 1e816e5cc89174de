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
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from minop.kube import Kube
from minop.objects import Obj
from minop.resource import Kind

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


ObjectKey = tuple[Kind, str, str]  # kind, namespace ("" if cluster-scoped), name


class Refused(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class FakeApi:
    """``validate(kind, obj)`` returns why the server refuses an object (422), or None;
    ``rv_format`` turns the resourceVersion counter into the string clients see (real
    servers other than kube-apiserver need not use numbers)."""

    def __init__(
        self,
        kinds: Iterable[Kind],
        *,
        validate: Callable[[Kind, Obj], str | None] = lambda kind, obj: None,
        rv_format: Callable[[int], str] = str,
    ) -> None:
        self.kinds = {(k.group, k.version, k.plural): k for k in kinds}
        self.validate, self.rv_format = validate, rv_format
        self.objects: dict[ObjectKey, Obj] = {}
        self.watch_log: dict[Kind, list[tuple[str, Obj]]] = {k: [] for k in self.kinds.values()}
        self.events: list[Obj] = []  # Events minop recorded
        self.reads: list[ObjectKey] = []  # every object minop read by name (GET)
        self.applied: list[Obj] = []  # the bodies of minop's server-side applies, stored
        # minop's writes: (method, path, result, the client's User-Agent)
        self.writes: list[tuple[str, str, str, str]] = []
        self.sent: list[Sent] = []  # every write request (Events included), in order
        self.faults: deque[Fault] = deque()
        # both get the written path; neither runs for Events
        self.before_write: Callable[[str], None] | None = None
        self.after_write: Callable[[str], None] | None = None
        self._counter = itertools.count(1)
        self._agent = ""  # of the request being answered
        self._lock = threading.RLock()

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
        return kube

    # -- a user's side -----------------------------------------------------------------

    def put(self, kind: Kind, obj: Obj) -> Obj:
        """A user's create or edit (main resource: status and metadata the server owns
        are kept)."""
        with self._lock:
            meta = obj["metadata"]
            old = self.objects.get(self._key(kind, meta.get("namespace"), meta["name"]))
            new = copy.deepcopy(obj)
            if old is not None:
                keep = ("uid", "generation", "finalizers", "deletionTimestamp")
                new["metadata"].update(
                    {k: old["metadata"][k] for k in keep if k in old["metadata"]}
                )
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            return self._store(kind, new, old)

    def remove(self, kind: Kind, namespace: str, name: str) -> None:
        """A user's delete (finalizers hold it: deletionTimestamp)."""
        with self._lock:
            self._delete(kind, namespace, name)

    def update(self, kind: Kind, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj:
        """A change of what ``put`` keeps (finalizers another controller adds, the
        deletionTimestamp, the status): ``change`` edits a copy, which is stored."""
        with self._lock:
            old = self.objects[self._key(kind, namespace, name)]
            new = copy.deepcopy(old)
            change(new)
            return self._store(kind, new, old)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self.objects.get(self._key(kind, namespace, name))
            return copy.deepcopy(obj)

    def all(self, kind: Kind) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(o) for (k, _, _), o in sorted(self.objects.items(), key=_order)
                    if k == kind]  # fmt: skip

    def resource_version(self) -> str:
        return self.rv_format(next(self._counter))

    # -- storing ---------------------------------------------------------------------

    def _key(self, kind: Kind, namespace: str | None, name: str) -> ObjectKey:
        return kind, (namespace or "") if kind.namespaced else "", name

    def _store(self, kind: Kind, obj: Obj, old: Obj | None) -> Obj:
        meta = obj["metadata"]
        if old is not None and _same(old, obj):
            return copy.deepcopy(old)  # a no-op write: no new version, no event
        reason = self.validate(kind, obj)
        if reason:
            raise Refused(422, "Invalid", reason)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        n = next(self._counter)
        meta.setdefault("uid", f"uid-{n}")
        meta["resourceVersion"] = self.rv_format(n)
        if old is None or old.get("spec") != obj.get("spec"):
            meta["generation"] = int((old or {}).get("metadata", {}).get("generation") or 0) + 1
        self.objects[self._key(kind, meta.get("namespace"), meta["name"])] = obj
        self.watch_log[kind].append(("ADDED" if old is None else "MODIFIED", copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def _delete(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        key = self._key(kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
        if obj["metadata"].get("finalizers"):
            if obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj)
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            return self._store(kind, new, obj)
        return self._gone(key)

    def _gone(self, key: ObjectKey) -> Obj:
        obj = self.objects.pop(key)
        obj["metadata"]["resourceVersion"] = self.resource_version()
        self.watch_log[key[0]].append(("DELETED", copy.deepcopy(obj)))
        uid = obj["metadata"]["uid"]
        # the garbage collector: dependents go with their owner
        for k, o in list(self.objects.items()):
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                self._delete(k[0], k[1], k[2])
        return copy.deepcopy(obj)

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

    def _write(self, method: str, kind: Kind, ns: str, name: str, sub: str | None, body: Any,
               content_type: str) -> Obj:  # fmt: skip
        key = self._key(kind, ns, name)
        if method == "DELETE":
            return self._delete(kind, ns, name)
        old = self.objects.get(key)
        if method == "POST":
            if old is not None:
                raise Refused(409, "AlreadyExists", f"{kind.plural} {name!r} already exists")
            new = copy.deepcopy(body)
            if ns:
                new["metadata"].setdefault("namespace", ns)
            return self._store(kind, new, None)
        if method == "PUT":  # optimistic concurrency, as the API server's
            if old is None:
                raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
            if body["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
                raise Refused(409, "Conflict", f"{kind.plural} {name!r} was modified")
            return self._store(kind, copy.deepcopy(body), old)
        assert method == "PATCH", method
        if content_type.startswith("application/apply-patch"):
            new = copy.deepcopy(old) if old is not None else {"metadata": {}}
            for field, value in body.items():
                if field == "metadata":
                    new["metadata"].update(copy.deepcopy(value))
                elif field != "status":
                    new[field] = copy.deepcopy(value)
            stored = self._store(kind, new, old)
            self.applied.append(copy.deepcopy(body))
            return stored
        if old is None:
            raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
        new = copy.deepcopy(old)
        if sub == "status":
            status = new.setdefault("status", {})
            for k, v in body["status"].items():
                if v is None:
                    status.pop(k, None)
                else:
                    status[k] = v
        elif content_type == "application/json-patch+json":
            _json_patch(new, body)
        elif content_type == "application/merge-patch+json":
            _merge_patch(new, body)
        else:
            raise AssertionError(f"unexpected patch {content_type} {body}")
        stored = self._store(kind, new, old)
        meta = stored["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._gone(key)
        return stored

    def _event(self, method: str, body: Any) -> Obj:
        if method == "POST":
            self.events.append(copy.deepcopy(body))
        return dict(body or {})


def _merge_patch(obj: Obj, patch: Obj) -> None:
    """RFC 7386: objects merge, null removes, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            obj.pop(k, None)
        elif isinstance(v, dict):
            old = obj.get(k)
            target: Obj = old if isinstance(old, dict) else {}
            _merge_patch(target, v)
            obj[k] = target
        else:
            obj[k] = copy.deepcopy(v)


def _json_patch(obj: Obj, ops: list[Obj]) -> None:
    for op in ops:
        *path, last = op["path"].split("/")[1:]
        target: Any = obj
        for p in path:
            target = target[int(p)] if isinstance(target, list) else target[p]
        have = (target[int(last)] if last.isdigit() and int(last) < len(target) else None) if (
            isinstance(target, list)) else target.get(last)  # fmt: skip
        if op["op"] == "test" and have != op["value"]:
            raise Refused(422, "Invalid", f"test failed at {op['path']}")
        if op["op"] == "add":
            if isinstance(target, list):
                target.append(op["value"])
            else:
                target[last] = op["value"]
        elif op["op"] == "remove":
            del target[int(last)]


def _same(old: Obj, new: Obj) -> bool:
    """A write that changes nothing but the version fields."""
    strip = ("resourceVersion", "generation")

    def norm(o: Obj) -> Obj:
        return {**o, "metadata": {k: v for k, v in o["metadata"].items() if k not in strip}}

    return norm(old) == norm(new)


def _order(item: tuple[ObjectKey, Obj]) -> tuple[str, str]:
    (_, ns, name), _ = item
    return ns, name


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
