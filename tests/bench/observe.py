"""What the harness sees: watch timestamps per object, and the API server's audit log."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import memcached as mc
from tests.bench.kubeapi import Api, ApiError, Obj, crs, deployments, services

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
READS = {"get", "list", "watch"}


@dataclass
class Seen:
    """First times (time.monotonic) the harness's watches saw something happen."""

    cr_added: dict[str, float] = field(default_factory=dict)
    cr_ready: dict[str, float] = field(default_factory=dict)
    dep_added: dict[str, float] = field(default_factory=dict)
    svc_added: dict[str, float] = field(default_factory=dict)
    # name -> [(time, spec.size)] and [(time, spec.replicas)], in order
    cr_sizes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    dep_replicas: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


class Observer:
    """Watches the Memcacheds, Deployments and Services of one namespace."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.seen = Seen()
        self.lock = threading.Condition()

    def start(self) -> None:
        for path, on_event in (
            (crs(self.ns), self._cr),
            (deployments(self.ns), self._dep),
            (services(self.ns), self._svc),
        ):
            listed = threading.Event()
            threading.Thread(target=self._run, args=(path, on_event, listed), daemon=True).start()
            listed.wait(30)

    def _run(
        self, path: str, on_event: Callable[[Obj, float], None], listed: threading.Event
    ) -> None:
        page = self.api.get(path)
        now = time.monotonic()
        for obj in page["items"]:
            self._record(on_event, obj, now)
        listed.set()
        rv = page["metadata"]["resourceVersion"]
        while True:
            try:
                for etype, obj in self.api.watch(path, rv):
                    now = time.monotonic()
                    rv = obj["metadata"]["resourceVersion"]
                    if etype in ("ADDED", "MODIFIED"):
                        self._record(on_event, obj, now)
            except (ApiError, OSError):
                time.sleep(0.2)  # resume from rv: the harness watches too briefly for a 410

    def _record(self, on_event: Callable[[Obj, float], None], obj: Obj, now: float) -> None:
        with self.lock:
            on_event(obj, now)
            self.lock.notify_all()

    def _cr(self, obj: Obj, now: float) -> None:
        s, name = self.seen, obj["metadata"]["name"]
        s.cr_added.setdefault(name, now)
        size = int((obj.get("spec") or {}).get("size", 1))
        sizes = s.cr_sizes.setdefault(name, [])
        if not sizes or sizes[-1][1] != size:
            sizes.append((now, size))
        if name not in s.cr_ready and mc.ready_key(obj.get("status"))[1]:
            s.cr_ready[name] = now

    def _dep(self, obj: Obj, now: float) -> None:
        s, name = self.seen, mc.owner_of(obj) or obj["metadata"]["name"]
        s.dep_added.setdefault(name, now)
        replicas = int((obj.get("spec") or {}).get("replicas") or 0)
        seen = s.dep_replicas.setdefault(name, [])
        if not seen or seen[-1][1] != replicas:
            seen.append((now, replicas))

    def _svc(self, obj: Obj, now: float) -> None:
        self.seen.svc_added.setdefault(mc.owner_of(obj) or obj["metadata"]["name"], now)

    def wait(self, done: Callable[[Seen], bool], timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: done(self.seen), timeout)


# -- the audit log ------------------------------------------------------------------------


@dataclass
class Cost:
    """Requests of one contender, as the API server logged them."""

    writes: Counter[str] = field(default_factory=Counter)  # "create deployments" -> n
    reads: Counter[str] = field(default_factory=Counter)  # "list memcacheds" -> n

    @property
    def write_total(self) -> int:
        return sum(self.writes.values())

    @property
    def read_total(self) -> int:
        return sum(self.reads.values())


class Audit:
    """The API server's audit log, read from a remembered offset (blocking mode: an
    event is on disk before the request returns). The bench profile rotates it only
    past 4 GB, so the offsets stay valid for a run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def read(self, since: int) -> tuple[list[dict[str, Any]], int]:
        """Events after byte offset ``since``, and the offset after the last whole line."""
        with self.path.open("rb") as f:
            f.seek(since)
            data = f.read()
        data = data[: data.rfind(b"\n") + 1]  # a line being written is not whole yet
        return [json.loads(line) for line in data.splitlines() if line.strip()], since + len(data)

    def cost(self, since: int, agent: str, namespace: str | None = None) -> Cost:
        return cost_of(self.read(since)[0], agent, namespace)

    def wait_quiet(self, since: int, agent: str, quiet: float, timeout: float) -> float:
        """Wait until ``agent`` has written nothing for ``quiet`` seconds; returns the
        wall-clock time of its last write (``time.time()`` at the call if none)."""
        last, offset, start = time.time(), since, time.monotonic()
        while time.monotonic() - start < timeout:
            events, offset = self.read(offset)
            for e in events:
                if e.get("userAgent", "").startswith(agent) and e.get("verb") in WRITES:
                    last = max(last, _epoch(e["stageTimestamp"]))
            if time.time() - last >= quiet:
                break
            time.sleep(0.25)
        return last


def cost_of(events: Iterable[dict[str, Any]], agent: str, namespace: str | None) -> Cost:
    out = Cost()
    for e in events:
        if not e.get("userAgent", "").startswith(agent):
            continue
        verb, ref = e.get("verb", ""), e.get("objectRef") or {}
        if namespace and ref.get("namespace") not in (None, namespace):
            continue
        # a watch is logged when its response starts and again when it ends
        if e.get("stage") != ("ResponseStarted" if verb == "watch" else "ResponseComplete"):
            continue
        what = ref.get("resource", "?")
        if ref.get("subresource"):
            what += "/" + ref["subresource"]
        if verb in WRITES:
            out.writes[f"{verb} {what}"] += 1
        elif verb in READS:
            out.reads[f"{verb} {what}"] += 1
    return out


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
