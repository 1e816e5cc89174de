"""The Context handed to every hook: the object, why the hook runs, and tools to act."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minop import apply as applying
from minop.conditions import Condition
from minop.diff import Change
from minop.errors import TemporaryError
from minop.kube import Kube, Obj
from minop.log import fields
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
    def api(self) -> Kube:
        """The API client, for what ``apply``/``delete`` do not cover (e.g. PVC resize)."""
        return self.runtime.kube

    # -- children ------------------------------------------------------------------

    @property
    def labels(self) -> dict[str, str]:
        """Standard labels of this object's children and pods."""
        return applying.standard_labels(self.resource.kind, self.name, self.plugin)

    @property
    def selector(self) -> dict[str, str]:
        """The stable label subset for (immutable) selectors of Deployments and the like."""
        return applying.selector_labels(self.resource.kind, self.name)

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
            return copy.deepcopy(live)
        self.logger.info("applying %s/%s", kind.kind, meta["name"])
        result = self.runtime.kube.apply(kind, desired)
        self.runtime.cache.mutated(kind, copy.deepcopy(result))
        return result

    def delete(self, kind: Kind, name: str) -> bool:
        """Delete a child if it exists; returns whether a delete was sent."""
        self._check_declared(kind, self.resource.children)
        if self.runtime.cache.get(kind, self.namespace, name) is None:
            return False
        self.logger.info("deleting %s/%s", kind.kind, name)
        self.runtime.kube.delete(kind, name, self.namespace)
        return True

    def child(self, kind: Kind, name: str) -> Obj | None:
        """A cached child or observed object by name (None if absent); a copy."""
        self._check_declared(kind, self.resource.children + self.resource.observes)
        return copy.deepcopy(self.runtime.cache.get(kind, self.namespace, name))

    def children(self, kind: Kind) -> list[Obj]:
        """Cached objects of ``kind`` labelled as this object's (e.g. its pods), by
        name; copies."""
        self._check_declared(kind, self.resource.children + self.resource.observes)
        return copy.deepcopy(self.runtime.cache.select(kind, self.namespace, self.selector))

    def related_hash(self, kind: Kind, name: str) -> str | None:
        """Content hash of a referenced object (None if missing); put it on a pod
        template annotation and pods roll whenever the object's content changes.
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

    def _check_declared(self, kind: Kind, declared: tuple[Kind, ...]) -> None:
        if kind not in declared:
            raise ValueError(f"{kind} is not declared in {self.resource.kind.kind}'s Resource")
