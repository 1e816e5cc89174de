"""Storage version migration: every stored object rewritten in the CRD's storage
version, then the older versions dropped from ``status.storedVersions`` (what
kube-storage-version-migrator does), so a later release may stop serving them.

An empty merge patch makes the API server read the object (converting it), and
store it again in the storage version: its stored bytes differ, so it is written.
The leader runs it at start; objects are done in (namespace, name) order and the
last one done is checkpointed in an annotation on the CRD, so a restart resumes
there instead of rewriting everything again. Objects created or changed meanwhile
are stored in the storage version by the API server itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable

from minop import kinds
from minop.apierrors import NotFound
from minop.kube import Kube
from minop.resource import Resource

log = logging.getLogger("minop.migration")

PROGRESS = "minop.dev/storage-migration"  # "<storage version> <namespace>/<name>"
CHECKPOINT_EVERY = 50


class StorageMigration:
    """Migrates the resources' CRDs; ``namespaces`` empty means every namespace (only
    then may storedVersions be trimmed: other namespaces may hold old objects)."""

    def __init__(
        self,
        kube: Kube,
        resources: Iterable[Resource],
        namespaces: tuple[str, ...] = (),
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.kube = kube
        self.resources = [r for r in resources if r.crd is not None]
        self.namespaces = namespaces
        self.every = checkpoint_every

    def run(self, stopping: threading.Event | None = None) -> None:
        for r in self.resources:
            if stopping is not None and stopping.is_set():
                return
            try:
                self.migrate(r)
            except Exception:  # the next start resumes from the checkpoint
                log.exception("storage migration of %s failed", r.kind)

    def migrate(self, r: Resource) -> bool:
        """True when storedVersions holds the storage version only (now or already)."""
        assert r.crd is not None
        name = r.crd["metadata"]["name"]
        crd = self.kube.get(kinds.CRD, name)
        storage = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
        stored = (crd.get("status") or {}).get("storedVersions") or []
        if stored == [storage]:
            return True
        if storage != r.kind.version:
            log.warning(
                "%s: stored as %s, but this operator works in %s: not migrating",
                name,
                storage,
                r.kind.version,
            )
            return False
        mark = (crd["metadata"].get("annotations") or {}).get(PROGRESS, "")
        version, _, after = mark.partition(" ")
        if version != storage:
            after = ""
        objects: list[tuple[str, str]] = []
        for ns in self.namespaces or (None,):
            items, _ = self.kube.list(r.kind, ns)
            objects += [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]
        todo = sorted((k for k in objects if _key(*k) > after), key=lambda k: _key(*k))
        log.info("storage migration of %s to %s: %d objects", name, storage, len(todo))
        for i, (ns, obj) in enumerate(todo, 1):
            with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to store
                self.kube.patch(r.kind, obj, {}, ns or None)
            if i % self.every == 0 and i < len(todo):
                self._checkpoint(name, f"{storage} {_key(ns, obj)}")
        if self.namespaces:
            log.info("%s: objects migrated; storedVersions kept (scoped operator)", name)
            return False
        self.kube.patch(
            kinds.CRD, name, {"status": {"storedVersions": [storage]}}, subresource="status"
        )
        self._checkpoint(name, None)
        log.info("%s: storedVersions trimmed to [%s]", name, storage)
        return True

    def _checkpoint(self, crd: str, value: str | None) -> None:
        self.kube.patch(kinds.CRD, crd, {"metadata": {"annotations": {PROGRESS: value}}})


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"
