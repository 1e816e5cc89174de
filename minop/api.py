"""``ctx.api``: what a hook may ask the API server directly, typed for plugins.

Hooks read through the cache (``ctx.child``, ``ctx.children``, ``ctx.related_hash``)
and write children through ``ctx.apply``/``ctx.delete``; this is for the rest: data
the cache never keeps (a referenced Secret's), objects that are no child (patching a
PVC to grow it, labelling a pod). Every write goes through the write fence. The
runtime's client satisfies it; a plugin's tests may pass any object that does.
"""

from __future__ import annotations

from typing import Any, Protocol

from minop.objects import Obj
from minop.resource import Kind


class Api(Protocol):
    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        """The object; raises ``NotFound`` when it does not exist."""
        ...

    def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        ...

    def list(
        self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[list[Obj], str]:
        """Every object (all namespaces without ``namespace``), and the list's
        resourceVersion."""
        ...

    def create(self, kind: Kind, body: Obj, namespace: str | None = None) -> Obj: ...

    def replace(self, kind: Kind, body: Obj) -> Obj:
        """PUT the whole object; its resourceVersion makes a concurrent change a
        ``Conflict``."""
        ...

    def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> Obj:
        """``patch_type``: ``merge``, ``strategic``, ``json`` or ``apply``."""
        ...

    def apply(self, kind: Kind, body: Obj, *, field_manager: str = "minop") -> Obj:
        """Server-side apply as ``field_manager`` (children: ``ctx.apply``)."""
        ...

    def delete(
        self, kind: Kind, name: str, namespace: str | None = None, *, missing_ok: bool = True
    ) -> Obj | None:
        """Delete (in the background); None when it was gone already and ``missing_ok``."""
        ...
