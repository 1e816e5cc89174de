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

A re-list may also be asked for from another thread (a new leader catching up, see
``Manager.take_over``): events and re-lists apply one at a time, and a stream opened
before the last re-list is stale, its events older than the list: it is dropped and
the watch resumes from the list's resourceVersion.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from minop.apierrors import ApiError, Gone, StreamStalled
from minop.kube import Kube
from minop.metrics import Metrics
from minop.objects import Key, Obj, rv_of, uid_of
from minop.resource import Kind
from minop.store import Indexer, Store
from minop.watchstream import WatchStream

log = logging.getLogger("minop.informer")


class Handler(Protocol):
    def __call__(self, etype: str, obj: Obj, *, echo: bool = False) -> None:
        """``etype``: ADDED, MODIFIED or DELETED; ``echo``: the object is our own
        write's response, which readers saw already (``Store.upsert``)."""


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
        shard_selector: str | None = None,
        inactivity: float = 150.0,
        server_timeout: int = 300,
        metrics: Metrics | None = None,
        max_backoff: float = 30.0,
        transform: Callable[[Obj], Obj] | None = None,
        indexers: Mapping[str, Indexer] | None = None,
    ) -> None:
        self.kube, self.kind, self.handler = kube, kind, handler
        self.namespace = namespace if kind.namespaced else None
        self.label_selector = label_selector
        self.shard_selector = shard_selector  # KEP-5866's list option (minop.shard)
        self._indexers = indexers
        self.inactivity, self.server_timeout = inactivity, server_timeout
        self.metrics = metrics or kube.metrics
        self.max_backoff = max_backoff
        self.transform = transform or strip_managed_fields
        self.store = Store(kind, indexers)
        self.synced = threading.Event()
        self.resource_version = ""
        self.heartbeat = time.monotonic()  # the loop turned: for liveness, not data
        self.forbidden: ApiError | None = None  # the last 403: RBAC lacks list/watch
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._lock = threading.Lock()
        self._applying = threading.RLock()  # one event or re-list at a time
        self._epoch = 0  # re-lists so far: a stream opened before the last one is stale
        self._thread = threading.Thread(target=self._run, name=f"watch-{self}", daemon=True)

    def __str__(self) -> str:
        where = self.namespace or "*"
        sel = f"[{self.label_selector}]" if self.label_selector else ""
        shard = "[shard]" if self.shard_selector else ""
        return f"{self.kind.kind}/{where}{sel}{shard}"

    def refiltered(self, shard_selector: str) -> Informer:
        """A new informer like this one (not started) for another shard selector."""
        return Informer(
            self.kube,
            self.kind,
            self.handler,
            namespace=self.namespace,
            label_selector=self.label_selector,
            shard_selector=shard_selector,
            inactivity=self.inactivity,
            server_timeout=self.server_timeout,
            metrics=self.metrics,
            max_backoff=self.max_backoff,
            transform=self.transform,
            indexers=self._indexers,
        )

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._stream is not None:
                self._stream.abort()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _beat(self) -> None:
        self.heartbeat = time.monotonic()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.store.get(Key(self.kind, namespace, name))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No event is applied meanwhile (``relist`` may be called inside)."""
        with self._applying:
            yield

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            reason, asked = "", 0.0
            try:
                if need_list:
                    self.relist()
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

    def relist(self) -> None:
        """List now (a quorum read) and bring the store to it, reporting the changes;
        the watch then resumes from the list's resourceVersion."""
        with self._applying:
            self._epoch += 1
            self._relist()
        with self._lock:
            if self._stream is not None:
                self._stream.abort()  # stale: its reader resumes from the list

    def _relist(self) -> None:
        items, rv = self.kube.list(
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            shard_selector=self.shard_selector,
            progress=self._beat,
            transform=self.transform,
        )
        self.forbidden = None
        fresh = {Key.of(self.kind, o): o for o in items}
        old = self.store.watched()
        self.resource_version = rv
        for key, obj in old.items():
            if key not in fresh:
                self.store.remove(key, rv)
                self._emit("DELETED", obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is not None and uid_of(before) != uid_of(obj):
                # deleted and recreated while we were away: two events, as a watch shows it
                self.store.remove(key, rv)
                self._emit("DELETED", before)
                before = None
            if before is None or rv_of(before) != rv_of(obj):
                self.store.upsert(obj)
                self._emit("ADDED" if before is None else "MODIFIED", obj)
        for ghost in self.store.relisted(rv):  # written by us, then gone during the gap
            self._emit("DELETED", ghost)
        self.synced.set()
        log.debug("listed %s: %d objects at rv %s", self, len(fresh), rv)

    def _watch_once(self) -> bool:
        """One watch request; True when it delivered anything (bookmarks count)."""
        with self._applying:
            epoch, rv = self._epoch, self.resource_version
        timeout = max(
            1, int(min(self.server_timeout, self.inactivity * 0.8) * random.uniform(0.9, 1))
        )
        params: dict[str, Any] = {
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout,
        }
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.shard_selector:
            params["shardSelector"] = self.shard_selector
        stream = self.kube.watch(self.kind, self.namespace, params, self.inactivity)
        with self._lock:
            if self._stop.is_set():
                stream.close()
                return True
            self._stream = stream
        delivered = False
        try:
            for event in stream:
                self.heartbeat = time.monotonic()
                delivered = True
                with self._applying:
                    if self._epoch != epoch:
                        return True  # re-listed meanwhile: resume from the list
                    self._apply(event)
        except (ApiError, StreamStalled):
            if self._stop.is_set() or self._epoch != epoch:
                return True  # aborted by stop() or by a re-list
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
        echo = False
        if etype == "DELETED":
            if not self.store.remove(Key.of(self.kind, obj), rv_of(obj)):
                return  # repeated, or never held: nothing changed (as client-go's DeltaFIFO)
        elif etype in ("ADDED", "MODIFIED"):
            echo = self.store.upsert(obj)
        else:
            return
        self._emit(str(etype), obj, echo=echo)

    def _emit(self, etype: str, obj: Obj, *, echo: bool = False) -> None:
        try:
            self.handler(etype, obj, echo=echo)
        except Exception:
            log.exception("handler for %s failed on %s", self, Key.of(self.kind, obj))


def strip_managed_fields(obj: Obj) -> Obj:
    """managedFields is large and never read by minop: don't keep it in memory."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        del meta["managedFields"]
    return obj
