"""Kubernetes Events about custom resources, with repeats aggregated.

An event's name is derived from (object, type, reason, message), so a repeat
patches ``count`` and ``lastTimestamp`` of the existing Event instead of
creating another one, and that holds across restarts. Events are sent by a
thread of their own from a bounded queue: a worker never waits for one, and
under an event storm the oldest unsent ones are dropped (counted, logged),
never the work. The counts kept for aggregation are bounded too.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from minop import kinds
from minop.apierrors import ApiError, Conflict
from minop.conditions import now
from minop.kube import Kube
from minop.objects import content_hash

log = logging.getLogger("minop.events")
NORMAL, WARNING = "Normal", "Warning"
MAX_PENDING = 1000  # unsent events
MAX_COUNTS = 4096  # events remembered for aggregation

_Pending = tuple[Mapping[str, Any], str, str, str]


class Recorder:
    def __init__(self, kube: Kube, component: str = "minop") -> None:
        self.kube, self.component = kube, component
        self.host = socket.gethostname()
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: queue.Queue[_Pending | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        if self._thread is not None:
            self._put(None)
            self._thread.join(timeout)

    def event(self, obj: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        """Queue an event; it is sent in the background (best effort: failures are
        logged, never raised). Without ``start`` it is sent at once."""
        item = (obj, etype, reason, message)
        if self._thread is None:
            self._send(item)
        else:
            self._put(item)

    def _put(self, item: _Pending | None) -> None:
        while True:
            try:
                self._pending.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._pending.get_nowait()
                    self.dropped += 1
                    log.warning("event queue full: dropped an unsent event (%d)", self.dropped)
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while (item := self._pending.get()) is not None:
            self._send(item)

    def _send(self, item: _Pending) -> None:
        obj, etype, reason, message = item
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        uid = meta.get("uid", "")
        name = f"{meta.get('name')}.{content_hash([uid, etype, reason, message])}"
        try:
            self._record(ns, name, obj, etype, reason, message[:1024])
        except ApiError as e:
            log.warning("could not record event %s on %s/%s: %s", reason, ns, meta.get("name"), e)
        except Exception:  # best effort, and this thread must live on
            log.exception("could not record event %s on %s/%s", reason, ns, meta.get("name"))

    def _record(
        self, ns: str, name: str, obj: Mapping[str, Any], etype: str, reason: str, message: str
    ) -> None:
        stamp = now()
        key = (ns, name)
        with self._lock:
            count = self._counts.get(key)
        if count is not None:
            self._bump(key, count + 1, stamp)
            return
        meta = obj.get("metadata") or {}
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": etype,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        try:
            self.kube.create(kinds.EVENT, body, ns)
            self._remember(key, 1)
        except Conflict:  # recorded before this process started: aggregate onto it
            live = self.kube.get(kinds.EVENT, name, ns)
            self._bump(key, int(live.get("count") or 1) + 1, stamp)

    def _bump(self, key: tuple[str, str], count: int, stamp: str) -> None:
        ns, name = key
        try:
            self.kube.patch(kinds.EVENT, name, {"count": count, "lastTimestamp": stamp}, ns)
        except ApiError as e:
            if e.status != 404:
                raise
            with self._lock:  # expired (events have a TTL): start a new one next time
                self._counts.pop(key, None)
            return
        self._remember(key, count)

    def _remember(self, key: tuple[str, str], count: int) -> None:
        with self._lock:
            self._counts[key] = count
            self._counts.move_to_end(key)
            while len(self._counts) > MAX_COUNTS:
                self._counts.popitem(last=False)
