"""What one informer holds: objects by (namespace, name), indexed, with an own-write overlay.

The watch's view is only ever changed by the informer, in the order the API server
delivered it. minop's own write responses go into a separate overlay, consulted
only while it is newer than what the watch delivered, like client-go's
MutationCache: a reconcile right after our own write sees its result, and an old
write response can never hide a newer watch event. Three rules keep the overlay
honest when a response is recorded late (after the watch moved on):

- a deletion leaves a short-lived delete record, and a response not newer than
  the deletion is refused: a child deleted right after we created it stays gone;
- a re-list drops every overlay entry the list already covers, reporting the keys
  that only the overlay knew (gone while the watch was away);
- every overlay entry and delete record expires after ``ttl`` seconds.

resourceVersions compare as integers when both are (kube-apiserver). Other API
servers may use opaque ones, which only compare for equality: then an overlay
entry holds until the watch delivers its very resourceVersion (the watch is in
order, so whatever came before it is older), and a response carrying a version
the watch already delivered for that key is refused as old.

Indexes map an index value (e.g. the instance label) to keys, so a lookup costs
the size of its answer, not of the store.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from minop.objects import Key, Obj, rv_of
from minop.resource import Kind

Indexer = Callable[[Obj], list[str]]
TTL = 60.0  # how long an overlay entry or a delete record outlives its write at most
SEEN = 8  # opaque versions: how many delivered per key are remembered as "already seen"


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 as resourceVersion ``a`` is older, the same or newer than ``b``;
    None when they differ and are not both integers (opaque versions)."""
    if a == b:
        return 0
    if a.isdigit() and b.isdigit():
        return (int(a) > int(b)) - (int(a) < int(b))
    return None


@dataclass
class _Mutation:
    obj: Obj
    expires: float


@dataclass
class _Deleted:
    rv: str  # the deletion's version (or the re-list's that found it gone)
    seen: tuple[str, ...]  # opaque versions the watch had delivered for the key
    expires: float

    def predates(self, rv: str) -> bool:
        """A response with version ``rv`` was written before this deletion."""
        order = compare(rv, self.rv)
        return rv in self.seen if order is None else order <= 0


class Store:
    """Thread-safe; readers get the stored dicts and must not mutate them."""

    def __init__(
        self,
        kind: Kind,
        indexers: Mapping[str, Indexer] | None = None,
        *,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self._items: dict[Key, Obj] = {}
        self._overlay: OrderedDict[Key, _Mutation] = OrderedDict()  # by expiry
        self._deleted: OrderedDict[Key, _Deleted] = OrderedDict()  # by expiry
        self._seen: dict[Key, deque[str]] = {}  # only once versions turned out opaque
        self._opaque = False
        self._listed = ""  # the last re-list's version: nothing older is missing from it
        self._ttl, self._clock = ttl, clock
        self._indexers = dict(indexers or {})
        self._index: dict[str, dict[str, set[Key]]] = {n: {} for n in self._indexers}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    # -- the watch's view (informer only) -------------------------------------------

    def upsert(self, obj: Obj) -> bool:
        """Store a watched object; True when it is the echo of our own write (the
        version of the response we recorded): nothing readers had not seen."""
        key, rv = Key.of(self.kind, obj), rv_of(obj)
        echo = False
        with self._lock:
            self._expire()
            old = self._items.get(key)
            self._items[key] = obj
            self._deleted.pop(key, None)
            self._remember(key, rv)
            mutation = self._overlay.get(key)
            self._reindex(key, old, obj)
            if mutation is not None:
                order = compare(rv_of(mutation.obj), rv)
                echo = bool(rv) and order == 0
                if order is not None and order <= 0:  # the watch caught up
                    self._drop_overlay(key)
                else:  # still newer: keep it findable by its own values
                    self._reindex(key, None, mutation.obj)
        return echo

    def remove(self, key: Key, rv: str = "") -> bool:
        """Forget a deleted object, and any write of ours to it; ``rv`` is the
        deletion's version: a write response not newer is refused from now on.
        Returns whether anything was held (the watch's object or our write's): if
        not, the deletion changes nothing here."""
        with self._lock:
            self._expire()
            old = self._items.pop(key, None)
            mutation = self._overlay.pop(key, None)
            for gone in (old, mutation.obj if mutation else None):
                if gone is not None:
                    self._unindex(key, gone)
            seen = tuple(self._seen.pop(key, ()))
            if old is not None or mutation is not None:
                last = rv or rv_of(old) or rv_of(mutation.obj if mutation else None)
                self._deleted[key] = _Deleted(last, seen, self._clock() + self._ttl)
                self._deleted.move_to_end(key)
        return old is not None or mutation is not None

    def relisted(self, rv: str) -> list[Obj]:
        """After a re-list at version ``rv`` (the watch's view already replaced): drop
        the overlay entries the list covers; returns those of keys the list did not
        have (created by us and gone while the watch was away), now forgotten."""
        with self._lock:
            self._listed, gone = rv, []
            for key, mutation in list(self._overlay.items()):
                order = compare(rv_of(mutation.obj), rv)
                if order is not None and order > 0:
                    continue  # written after the list was taken
                self._drop_overlay(key)
                if key not in self._items:
                    gone.append(mutation.obj)
                    self._deleted[key] = _Deleted(rv, (), self._clock() + self._ttl)
                    self._deleted.move_to_end(key)
            return gone

    def watched(self) -> dict[Key, Obj]:
        """The watch's view only (for a re-list to compare against)."""
        with self._lock:
            return dict(self._items)

    # -- our own writes -------------------------------------------------------------

    def mutated(self, obj: Obj, *, only_if_present: bool = False) -> None:
        """Remember our write's response until the watch catches up with it.

        ``only_if_present`` never resurrects an object whose DELETED event came first
        (e.g. the answer to removing the last finalizer)."""
        key, rv = Key.of(self.kind, obj), rv_of(obj)
        with self._lock:
            self._expire()
            mutation = self._overlay.get(key)
            current = mutation.obj if mutation is not None else self._items.get(key)
            if current is None:
                deleted = self._deleted.get(key)
                if only_if_present or (deleted is not None and deleted.predates(rv)):
                    return
                order = compare(rv, self._listed) if self._listed else None
                if order is not None and order <= 0:
                    return  # the last list would have had it: gone since
            elif not self._newer(key, rv, rv_of(current)):
                return
            if mutation is not None:
                self._drop_overlay(key)
            self._overlay[key] = _Mutation(obj, self._clock() + self._ttl)
            self._reindex(key, None, obj)

    def _newer(self, key: Key, rv: str, current: str) -> bool:
        order = compare(rv, current)
        if order is not None:
            return order > 0
        return rv not in self._seen.get(key, ())  # opaque: not delivered already

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: Key) -> Obj | None:
        with self._lock:
            self._expire()
            return self._get(key)

    def _get(self, key: Key) -> Obj | None:
        mutation = self._overlay.get(key)
        return self._items.get(key) if mutation is None else mutation.obj

    def keys(self) -> list[Key]:
        with self._lock:
            self._expire()
            return list(self._items.keys() | self._overlay.keys())

    def pending(self) -> int:
        """Overlay entries and delete records held (bounded by writes within ``ttl``)."""
        with self._lock:
            self._expire()
            return len(self._overlay) + len(self._deleted)

    def by_index(self, index: str, value: str) -> list[Obj]:
        """Objects whose ``index`` values include ``value``, sorted by name."""
        fn = self._indexers[index]
        with self._lock:
            self._expire()
            keys = sorted(self._index[index].get(value, ()))
            found = [self._get(k) for k in keys]
        return [o for o in found if o is not None and value in fn(o)]

    def index_values(self, index: str) -> list[str]:
        """Every value ``index`` holds (one per instance, not per object)."""
        with self._lock:
            return list(self._index[index])

    # -- bookkeeping (under the lock) ------------------------------------------------------

    def _expire(self) -> None:
        now = self._clock()
        while self._overlay:
            key, mutation = next(iter(self._overlay.items()))
            if mutation.expires > now:
                break
            self._drop_overlay(key)
        while self._deleted and next(iter(self._deleted.values())).expires <= now:
            self._deleted.popitem(last=False)

    def _remember(self, key: Key, rv: str) -> None:
        if not self._opaque and (not rv or rv.isdigit()):
            return  # integer versions order themselves: no history needed
        self._opaque = True
        self._seen.setdefault(key, deque(maxlen=SEEN)).append(rv)

    def _drop_overlay(self, key: Key) -> None:
        mutation = self._overlay.pop(key)
        item = self._items.get(key)
        for name, fn in self._indexers.items():
            keep = set(fn(item)) if item is not None else set()
            for value in set(fn(mutation.obj)) - keep:
                self._drop(name, value, key)

    def _reindex(self, key: Key, old: Obj | None, new: Obj) -> None:
        # Entries are only added here; stale ones are filtered on read and dropped with
        # the object, so an overlay and a watched version of one key can both be indexed.
        for name, fn in self._indexers.items():
            if old is not None:
                stale = set(fn(old)) - set(fn(new))
                for value in stale:
                    self._drop(name, value, key)
            for value in fn(new):
                self._index[name].setdefault(value, set()).add(key)

    def _unindex(self, key: Key, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._drop(name, value, key)

    def _drop(self, index: str, value: str, key: Key) -> None:
        keys = self._index[index].get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._index[index][value]
