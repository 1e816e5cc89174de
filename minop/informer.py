"""An informer per watched kind (and namespace): list, then watch, forever, into a Store.

list (paginated) → watch from the list's resourceVersion with bookmarks →
on a clean end resume from the last resourceVersion → on errors resume after a
jittered backoff → re-list only on 410 Gone, emitting deletions for objects
that vanished meanwhile (and a delete + add for one recreated under the same
name). An inactivity watchdog (the stream's read timeout) restarts a stream
that delivered nothing at all, not even a bookmark; the server-side timeout is
kept below it so a quiet, healthy stream ends cleanly before the watchdog
would trip. A stream that ends at once without an event backs off like an
error (client-go's "very short watch"), so a misbehaving proxy is no hot loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from minop.apierrors import ApiError, Gone, StreamStalled
from minop.kube import Kube, Obj
from minop.metrics import Metrics
from minop.resource import Kind
from minop.store import Indexer, Store, obj_key
from minop.watchstream import WatchStream

log = logging.getLogger("minop.informer")

Handler = Callable[[str, Obj, Obj | None], None]  # (ADDED|MODIFIED|DELETED, object, previous)
SHORT_WATCH = 1.0  # a stream that ends sooner with no event is treated as a failure


class Informer:
    """Keeps a Store of one kind in sync and reports every change to its handler."""

    def __init__(
        self,
        kube: Kube,
        kind: Kind,
        handler: Handler,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        inactivity: float = 150.0,
        server_timeout: int = 300,
        metrics: Metrics | None = None,
        max_backoff: float = 30.0,
        transform: Callable[[Obj], Obj] | None = None,
        indexers: Mapping[str, Indexer] | None = None,
    ) -> None:
        self.kube, self.kind, self.handler = kube, kind, handler
        self.namespace = namespace if kind.namespaced else None
        self.label_selector, self.field_selector = label_selector, field_selector
        self.inactivity, self.server_timeout = inactivity, server_timeout
        self.metrics = metrics or kube.metrics
        self.max_backoff = max_backoff
        self.transform = transform or strip_managed_fields
        self.store = Store(indexers)
        self.synced = threading.Event()
        self.resource_version = ""
        self.last_activity = time.monotonic()  # data, a bookmark or a (re)connect
        self.heartbeat = time.monotonic()  # the loop turned: for liveness, not data
        self.forbidden: ApiError | None = None  # the last 403: RBAC lacks list/watch
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"watch-{self}", daemon=True)

    def __str__(self) -> str:
        where = self.namespace or "*"
        sel = (
            f"[{self.label_selector or self.field_selector}]"
            if (self.label_selector or self.field_selector)
            else ""
        )
        return f"{self.kind.kind}/{where}{sel}"

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._stream is not None:
                self._stream.abort()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stalled(self, now: float | None = None) -> bool:
        """True when nothing (not even a bookmark or a reconnect) came for too long."""
        return ((now or time.monotonic()) - self.last_activity) > self.inactivity

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.store.get((namespace, name))

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            reason, asked = "", 0.0
            try:
                if need_list:
                    self._relist()
                    need_list = False
                started = time.monotonic()
                if self._watch_once() or time.monotonic() - started >= SHORT_WATCH:
                    failures = 0  # a clean end (server timeout): resume at once
                    continue
                reason = "short"
            except Gone:
                need_list, reason = True, "expired"
            except StreamStalled:
                reason = "inactivity"
            except (ApiError, ValueError) as e:
                reason, asked = "error", getattr(e, "retry_after", None) or 0.0
                if isinstance(e, ApiError) and e.status == 403:
                    self.forbidden = e
                if not self._stop.is_set():
                    log.warning("watch %s failed: %s", self, e)
            except Exception:  # never let one watcher die silently
                reason = "crash"
                log.exception("watch %s crashed; restarting", self)
            if self._stop.is_set():
                break
            self.metrics.watch_restarts.inc(kind=self.kind.kind, reason=reason)
            if reason == "inactivity":
                log.warning(
                    "watch %s delivered nothing for %.0fs; restarting", self, self.inactivity
                )
                continue
            failures += 1
            delay = random.uniform(0.5, 1.0) * min(self.max_backoff, 0.5 * 2 ** min(failures, 10))
            delay = max(delay, asked)  # never sooner than a 429's Retry-After
            while not self._stop.wait(min(delay, 5.0)):  # keep the heartbeat while waiting
                self.heartbeat = time.monotonic()
                delay -= 5.0
                if delay <= 0:
                    break

    def _selectors(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        return params

    def _relist(self) -> None:
        items, rv = self.kube.list(
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self.last_activity = time.monotonic()
        self.forbidden = None
        fresh = {obj_key(o): self.transform(o) for o in items}
        old = self.store.watched()
        self.resource_version = rv
        for key, obj in old.items():
            if key not in fresh:
                self.store.remove(key)
                self._emit("DELETED", obj, obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is not None and _uid(before) != _uid(obj):
                # deleted and recreated while we were away: two events, as a watch shows it
                self.store.remove(key)
                self._emit("DELETED", before, before)
                before = None
            if before is None or _rv(before) != _rv(obj):
                self.store.upsert(obj)
                self._emit("ADDED" if before is None else "MODIFIED", obj, before)
        self.synced.set()
        log.debug("listed %s: %d objects at rv %s", self, len(fresh), rv)

    def _watch_once(self) -> bool:
        """One watch request; True when it delivered anything (bookmarks count)."""
        timeout = max(
            1, int(min(self.server_timeout, self.inactivity * 0.8) * random.uniform(0.9, 1))
        )
        params = {
            **self._selectors(),
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout,
        }
        stream = self.kube.watch(self.kind, self.namespace, params, self.inactivity)
        with self._lock:
            if self._stop.is_set():
                stream.close()
                return True
            self._stream = stream
        self.last_activity = time.monotonic()
        delivered = False
        try:
            for event in stream:
                self.last_activity = self.heartbeat = time.monotonic()
                delivered = True
                self._apply(event)
        except (ApiError, StreamStalled):
            if self._stop.is_set():
                return True  # aborted by stop()
            raise
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return delivered

    def _apply(self, event: Obj) -> None:
        etype, obj = event.get("type"), event.get("object") or {}
        if etype == "ERROR":
            code = obj.get("code", 0)
            if code == 410:
                raise Gone(410, obj.get("reason", "Expired"), obj.get("message", ""), obj)
            raise ApiError(code, obj.get("reason", ""), obj.get("message", ""), obj)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if etype == "BOOKMARK":
            return
        obj.setdefault("apiVersion", self.kind.api_version)
        obj.setdefault("kind", self.kind.kind)
        obj = self.transform(obj)
        if etype == "DELETED":
            before = self.store.remove(obj_key(obj))
        elif etype in ("ADDED", "MODIFIED"):
            before = self.store.upsert(obj)
        else:
            return
        self._emit(str(etype), obj, before)

    def _emit(self, etype: str, obj: Obj, before: Obj | None) -> None:
        try:
            self.handler(etype, obj, before)
        except Exception:
            log.exception("handler for %s failed on %s", self, obj_key(obj))


def strip_managed_fields(obj: Obj) -> Obj:
    """managedFields is large and never read by minop: don't keep it in memory."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        del meta["managedFields"]
    return obj


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))
