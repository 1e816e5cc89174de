"""Kubernetes Events about custom resources, with repeats aggregated.

An event's name is derived from (object, type, reason, message), so a repeat
patches ``count`` and ``lastTimestamp`` of the existing Event instead of
creating another one, and that holds across restarts.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping
from typing import Any

from minop import kinds
from minop.apierrors import ApiError, Conflict
from minop.apply import content_hash
from minop.conditions import now
from minop.kube import Kube

log = logging.getLogger("minop.events")
NORMAL, WARNING = "Normal", "Warning"


class Recorder:
    def __init__(self, kube: Kube, component: str = "minop") -> None:
        self.kube, self.component = kube, component
        self.host = socket.gethostname()
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def event(self, obj: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        """Record an event; failures are logged, never raised (events are best effort)."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        uid = meta.get("uid", "")
        name = f"{meta.get('name')}.{content_hash([uid, etype, reason, message])}"
        try:
            self._record(ns, name, obj, etype, reason, message[:1024])
        except ApiError as e:
            log.warning("could not record event %s on %s/%s: %s", reason, ns, meta.get("name"), e)

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
            with self._lock:
                self._counts[key] = 1
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
        with self._lock:
            self._counts[key] = count
