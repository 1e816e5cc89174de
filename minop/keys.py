"""Work-queue keys: group/kind/namespace/name."""

from __future__ import annotations

from typing import NamedTuple

from minop.kube import Obj
from minop.resource import Kind


class Key(NamedTuple):
    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.group or 'core'}/{self.kind.kind}/{self.namespace}/{self.name}"

    @classmethod
    def of(cls, kind: Kind, obj: Obj) -> Key:
        meta = obj["metadata"]
        return cls(kind, meta.get("namespace") or "", meta["name"])
