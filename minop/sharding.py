"""The manager's side of sharding (issue 24): which objects this replica works on.

With ``--shards auto`` every replica runs its controllers, each only for the custom
resources in the buckets its membership holds (``minop.membership``): events,
resyncs and queued keys of other buckets are not taken. When buckets move away the
controllers stop taking their keys and the in-flight ones end (within the grace
period) before the membership acknowledges the release; when buckets arrive every
cached object in them is queued. Each pass runs with its object's bucket in a
context variable, which hook threads inherit, and the client's write fence checks
that bucket: a write for an object this replica no longer surely owns is refused.
Leader election still runs: the leader keeps the assignment.

The mode is detected at start: where the API server answers KEP-5866's
``shardSelector`` (it echoes ``shardInfo``), the custom resources' informers list and
watch only this replica's hash ranges, re-listed as buckets come and go (``selector``);
elsewhere (``label``) each replica caches every custom resource and takes only its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from minop.apierrors import ApiError
from minop.cache import Cache
from minop.controller import Controller
from minop.kube import Kube
from minop.leader import LeaderElector
from minop.membership import Membership, encode
from minop.metrics import Metrics
from minop.objects import Key, Obj
from minop.resource import Kind
from minop.settings import Settings
from minop.shard import BUCKETS, bucket_of, shard_selector

log = logging.getLogger("minop.sharding")

# the bucket of the object the current pass works on (None: not a pass's write)
BUCKET: ContextVar[int | None] = ContextVar("minop_bucket", default=None)
LABEL, SELECTOR = "label", "selector"


class Sharding:
    def __init__(
        self,
        cache: Cache,
        controllers: Mapping[Kind, Controller],
        metrics: Metrics,
        settings: Settings,
    ) -> None:
        self.cache, self.controllers, self.metrics = cache, controllers, metrics
        self.settings = settings
        self.group, self.grace = settings.leader_election_id, settings.grace
        self.membership: Membership | None = None  # set before anything runs
        self.mode = LABEL
        self._changed = threading.Event()  # buckets came or went: re-filter
        self._stopping = threading.Event()

    def join(self, elector: LeaderElector, namespace: str, on_lost: Callable[[], None]) -> None:
        """A membership in ``namespace`` on the leader election's client; the leader keeps
        the assignment."""
        self.attach(
            Membership(
                elector.kube,
                namespace,
                self.group,
                elector.identity,
                on_acquire=self.acquired,
                on_release=self.released,
                on_lost=on_lost,
                is_leader=lambda: elector.leading,
                timing=self.settings.lease_timing,
                metrics=self.metrics,
            )
        )

    def attach(self, membership: Membership) -> None:
        """Gate every controller through ``membership``'s buckets."""
        self.membership = membership
        for c in self.controllers.values():
            c.admit, c.scope = self.owns, self.scope

    def detect(self, kube: Kube, namespace: str | None) -> str:
        """``selector`` if the API server filters a list by ``shardSelector`` (a server
        without the feature ignores the option and sends no ``shardInfo``)."""
        mode = LABEL
        for kind in list(self.controllers)[:1]:
            params = {"limit": 1, "shardSelector": shard_selector(range(BUCKETS))}
            path = kube.path(kind, namespace if kind.namespaced else None)
            try:
                meta = kube.request("GET", path, params=params).get("metadata") or {}
                mode = SELECTOR if meta.get("shardInfo") else LABEL
            except ApiError as e:
                log.warning("shardSelector not usable (%s): filtering by label", e)
        self.mode = mode
        self.metrics.shard_mode.set(1, mode=mode)
        log.info("sharded, mode %s: reconciling the objects of this replica's buckets", mode)
        return mode

    def start(self) -> None:
        assert self.membership is not None
        self.membership.start()
        if self.mode == SELECTOR:
            threading.Thread(target=self._refilter_loop, name="shard-filter", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()

    # -- which objects ----------------------------------------------------------------------

    def bucket(self, key: Key, obj: Obj | None = None) -> int | None:
        """The bucket of an object (``obj``, else the cached one; None if neither)."""
        found = obj if obj is not None else self.cache.get(key.kind, key.namespace, key.name)
        uid = ((found or {}).get("metadata") or {}).get("uid")
        return bucket_of(uid) if uid else None

    def owns(self, key: Key, obj: Obj | None = None) -> bool:
        """Whether this replica works on ``key`` now. A key whose object is gone is
        taken: it was only queued here while its bucket was ours."""
        assert self.membership is not None
        b = self.bucket(key, obj)
        return b is None or b in self.membership.held

    @contextmanager
    def scope(self, key: Key) -> Iterator[None]:
        token = BUCKET.set(self.bucket(key))
        try:
            yield
        finally:
            BUCKET.reset(token)

    def may_write(self) -> bool:
        """The client's write fence: a pass writes while its object's bucket is surely
        ours; other writes (Events, the leader's) while our Lease is fresh."""
        assert self.membership is not None
        b = BUCKET.get()
        return self.membership.fresh() if b is None else self.membership.may_write(b)

    # -- hand-over (the membership's callbacks) -----------------------------------------------

    def acquired(self, buckets: frozenset[int]) -> None:
        """Queue every cached object of the buckets that just became ours."""
        for kind, c in self.controllers.items():
            for key in self.cache.keys(kind):
                if self.bucket(key) in buckets:
                    c.enqueue(key, "resync")
        self.count()
        self._changed.set()

    def released(self, buckets: frozenset[int]) -> None:
        """Their keys are no longer taken (the membership dropped them already); wait
        for the in-flight ones, up to the grace period, then abandon them: their
        writes are fenced by their bucket."""
        for c in self.controllers.values():
            moved = lambda k: isinstance(k, Key) and self.bucket(k) in buckets  # noqa: E731
            if not c.queue.wait_idle(moved, self.grace):
                log.warning(
                    "%s: in-flight passes of released buckets still running after %.0fs; "
                    "their writes are refused",
                    c.name,
                    self.grace,
                )
        self.count()
        self._changed.set()

    # -- selector mode: the informers follow the buckets -------------------------------------

    def _refilter_loop(self) -> None:
        while True:
            self._changed.wait()
            self._changed.clear()
            if self._stopping.is_set():
                return
            self._refilter()

    def _refilter(self) -> None:
        """Swap each custom resource informer for one of this replica's hash ranges, once
        it has listed them. The swap drops moved-away objects from the cache without a
        deletion event (they were not deleted); the new informer's first list queues
        the objects of our buckets. Holding no bucket, the cache stays as it is."""
        assert self.membership is not None
        held = self.membership.held
        if not held:
            return
        sel = shard_selector(held)
        for kind in self.controllers:
            for old in [i for i in self.cache.informers() if i.kind == kind]:
                if old.shard_selector == sel:
                    continue
                new = old.refiltered(sel)
                new.start()
                while not new.synced.wait(0.5):
                    if self._stopping.is_set():
                        new.stop()
                        return
                self.cache.add(new)
                old.stop()
                log.info("%s: listing and watching buckets %s", new, encode(held))
        self.count()

    def count(self) -> None:
        """``minop_shard_objects_owned``: the custom resources this replica works on."""
        assert self.membership is not None
        held = self.membership.held
        n = sum(
            1 for kind in self.controllers for k in self.cache.keys(kind) if self.bucket(k) in held
        )
        self.metrics.shard_objects.set(n, group=self.group)
