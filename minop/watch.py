"""One watcher per watched kind (and namespace): list, then watch, forever.

list (paginated) → watch from the list's resourceVersion with bookmarks →
on a clean end resume from the last resourceVersion → on errors resume after a
jittered backoff → re-list only on 410 Gone, emitting deletions for objects
that vanished meanwhile. An inactivity watchdog (the stream's read timeout)
restarts a stream that delivered nothing at all, not even a bookmark; the
server-side timeout is kept below it so a quiet, healthy stream ends cleanly
before the watchdog would trip.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from minop.apierrors import ApiError, Gone, StreamStalled
from minop.kube import Kube, Obj
from minop.metrics import Metrics
from minop.resource import Kind
from minop.watchstream import WatchStream

log = logging.getLogger("minop.watch")

ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Handler = Callable[[str, Obj, Obj | None], None]  # (ADDED|MODIFIED|DELETED, object, previous)


def obj_key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta["name"]


class Watcher:
    """Keeps an in-memory cache of one kind in sync and reports every change."""

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
    ) -> None:
        self.kube, self.kind, self.handler = kube, kind, handler
        self.namespace = namespace if kind.namespaced else None
        self.label_selector, self.field_selector = label_selector, field_selector
        self.inactivity, self.server_timeout = inactivity, server_timeout
        self.metrics = metrics or kube.metrics
        self.max_backoff = max_backoff
        self.transform = transform or strip_managed_fields
        self.cache: dict[ObjKey, Obj] = {}
        self.synced = threading.Event()
        self.resource_version = ""
        self.last_activity = time.monotonic()
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
        return self.cache.get((namespace, name))

    def items(self) -> list[Obj]:
        return list(self.cache.values())

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            reason, asked = "", 0.0
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch_once()
                failures = 0  # a clean end (server timeout): resume at once
                continue
            except Gone:
                need_list, reason = True, "expired"
            except StreamStalled:
                reason = "inactivity"
            except (ApiError, ValueError) as e:
                reason, asked = "error", getattr(e, "retry_after", None) or 0.0
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
            delay = min(self.max_backoff, 0.5 * 2 ** min(failures, 10))
            # never sooner than a 429's Retry-After
            self._stop.wait(max(asked, random.uniform(delay / 2, delay)))

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
        fresh = {obj_key(o): self.transform(o) for o in items}
        gone = [o for k, o in self.cache.items() if k not in fresh]
        old = self.cache
        self.cache = fresh
        self.resource_version = rv
        for obj in gone:
            self._emit("DELETED", obj, obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._emit("ADDED", obj, None)
            elif _rv(before) != _rv(obj):
                self._emit("MODIFIED", obj, before)
        self.synced.set()
        log.debug("listed %s: %d objects at rv %s", self, len(fresh), rv)

    def _watch_once(self) -> None:
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
                return
            self._stream = stream
        self.last_activity = time.monotonic()
        try:
            for event in stream:
                self.last_activity = time.monotonic()
                self._apply(event)
        except (ApiError, StreamStalled):
            if self._stop.is_set():
                return  # aborted by stop()
            raise
        finally:
            with self._lock:
                self._stream = None
            stream.close()

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
        key = obj_key(obj)
        before = self.cache.get(key)
        if etype == "DELETED":
            self.cache.pop(key, None)
        elif etype in ("ADDED", "MODIFIED"):
            self.cache[key] = obj
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
