"""The Context handed to every hook: the object, why the hook runs, and tools to act."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minop import apply as applying
from minop import objects
from minop.api import Api
from minop.conditions import Condition
from minop.diff import Change
from minop.errors import TemporaryError
from minop.log import fields
from minop.objects import Obj, copy_tree
from minop.resource import Kind, Resource

if TYPE_CHECKING:
    from minop.runtime import Runtime


class Context:
    """What a hook sees. Read from ``body``/``spec``; act with ``apply``/``delete``/``event``."""

    def __init__(
        self,
        runtime: Runtime,
        plugin: str,
        resource: Resource,
        body: Obj,
        *,
        cause: str,
        old: Mapping[str, Any] | None = None,
        new: Mapping[str, Any] | None = None,
        diff: list[Change] | None = None,
        retry: int = 0,
        timer: str | None = None,
    ) -> None:
        self.runtime, self.plugin, self.resource, self.body = runtime, plugin, resource, body
        self.cause, self.old, self.new, self.diff = cause, old, new, diff or []
        self.retry, self.timer = retry, timer
        self.conditions: list[Condition] = []
        self.logger = logging.LoggerAdapter(
            logging.getLogger(f"minop.plugin.{plugin}"),
            fields(
                plugin=plugin, kind=resource.kind.kind, namespace=self.namespace, name=self.name
            ),
        )

    # -- the object --------------------------------------------------------------

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.body.get("metadata") or {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name"))

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def api(self) -> Api:
        """The API server, for what ``apply``/``delete`` and the cache do not cover
        (e.g. PVC resize, a referenced Secret's data)."""
        return self.runtime.kube

    # -- children ------------------------------------------------------------------

    @property
    def labels(self) -> dict[str, str]:
        """Standard labels of this object's children and pods."""
        return objects.standard_labels(self.resource.kind, self.name, self.plugin)

    @property
    def selector(self) -> dict[str, str]:
        """The stable label subset for (immutable) selectors of Deployments and the like."""
        return objects.selector_labels(self.resource.kind, self.name)

    def apply(self, child: Mapping[str, Any]) -> Obj:
        """Make ``child`` exist as given; returns the live object.

        Sets namespace, standard labels and a controller owner reference, and
        server-side applies as field manager ``minop`` only when the cached
        child differs from the desired state: nothing is sent when it matches.
        """
        kind = self._child_kind(child)
        desired = applying.prepare(child, self.body, self.labels)
        meta = desired["metadata"]
        live = self.runtime.cache.get(kind, meta.get("namespace", ""), meta["name"])
        if not applying.needs_apply(desired, live):
            assert live is not None
            return copy_tree(live)
        self.logger.info("applying %s/%s", kind.kind, meta["name"])
        result = self.runtime.kube.apply(kind, desired)
        self.runtime.cache.mutated(kind, copy_tree(result))
        return result

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        """Delete a child if it exists; returns whether a delete was sent.
        ``namespace``: only for a cluster-scoped object's namespaced children."""
        self._check_declared(kind, self.resource.children)
        ns = self._where(kind, namespace)
        if self.runtime.cache.get(kind, ns, name) is None:
            return False
        self.logger.info("deleting %s/%s", kind.kind, name)
        self.runtime.kube.delete(kind, name, ns)
        return True

    def child(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """A cached child or observed object by name (None if absent); a copy.
        ``namespace``: only for a cluster-scoped object's namespaced children."""
        self._check_declared(kind, self.resource.children + self.resource.observes)
        return copy_tree(self.runtime.cache.get(kind, self._where(kind, namespace), name))

    def children(self, kind: Kind) -> list[Obj]:
        """Cached objects of ``kind`` labelled as this object's (e.g. its pods), by
        name (a cluster-scoped object's: in every namespace); copies."""
        self._check_declared(kind, self.resource.children + self.resource.observes)
        return copy_tree(self.runtime.cache.select(kind, self.namespace, self.selector))

    def child_hash(self, kind: Kind, name: str) -> str | None:
        """``minop.data_hash`` of a cached child whose data the cache never keeps (a
        Secret, or any kind a resource references); None if absent."""
        cached = self.child(kind, name)
        return None if cached is None else cached.get(objects.HASH_KEY)

    def related_hash(self, kind: Kind, name: str) -> str | None:
        """``minop.data_hash`` of a referenced object (None if missing); put it on a
        pod template annotation and pods roll whenever the object's content changes.
        Raises TemporaryError while its kind is not listed yet (not known is not
        missing)."""
        found = self.runtime.cache.related(kind, self.namespace, name)
        if not found.synced:
            raise TemporaryError(f"{kind.kind} {name!r}: not listed yet", delay=1)
        return found.hash

    # -- reporting ---------------------------------------------------------------

    def event(self, etype: str, reason: str, message: str) -> None:
        """A Kubernetes Event on this object (``Normal`` or ``Warning``)."""
        self.runtime.recorder.event(self.body, etype, reason, message)

    def condition(self, ctype: str, status: bool, reason: str, message: str = "") -> None:
        """Set a condition; e.g. ``Ready`` False with reason ``PodsNotReady`` while
        pods start. Without it, a successful hook sets ``Ready`` True."""
        self.conditions.append(Condition(ctype, status, reason, message))

    # -- helpers ---------------------------------------------------------------------

    def _child_kind(self, child: Mapping[str, Any]) -> Kind:
        api_version, kind = child.get("apiVersion"), child.get("kind")
        for k in self.resource.children:
            if k.api_version == api_version and k.kind == kind:
                return k
        raise ValueError(
            f"{kind} ({api_version}) is not among {self.resource.kind.kind}'s declared children "
            f"({', '.join(str(k) for k in self.resource.children) or 'none'}): add it to "
            "Resource.children so it is watched and its RBAC is derived"
        )

    def _where(self, kind: Kind, namespace: str | None) -> str:
        """The namespace of a child of ``kind``: this object's, or the one given for a
        cluster-scoped object's namespaced child."""
        if not kind.namespaced:
            return ""
        if self.namespace:
            if namespace not in (None, self.namespace):
                raise ValueError(
                    f"namespace {namespace!r}: {kind.kind} children of {self.name} are in "
                    f"{self.namespace!r} (owner references cannot cross namespaces)"
                )
            return self.namespace
        if not namespace:
            raise ValueError(
                f"namespace: required for {kind.kind} children of the cluster-scoped "
                f"{self.resource.kind.kind} {self.name}"
            )
        return namespace

    def _check_declared(self, kind: Kind, declared: tuple[Kind, ...]) -> None:
        if kind not in declared:
            raise ValueError(f"{kind} is not declared in {self.resource.kind.kind}'s Resource")
