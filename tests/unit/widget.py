"""The test kind the core's unit tests reconcile through ``minop.kit.testing``'s doubles,
and ConfigMaps for its list/watch tests."""

from __future__ import annotations

from typing import Any

import minop
from minop.kit.testing import FakeReconciler

KIND = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")
NS = "ns"


def cm(name: str, rv: int, data: str = "x") -> dict[str, Any]:
    """A ConfigMap in ``ns`` at resourceVersion ``rv``, as a list or watch has it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": str(rv)},
        "data": {"k": data},
    }


class Env(FakeReconciler):
    """A test plugin reconciling Widgets (or ``resource``) in namespace ``ns``."""

    def __init__(self, plugin: object, resource: minop.Resource | None = None, **kw: Any):
        super().__init__(plugin, resource or minop.Resource(kind=KIND), namespace=NS, **kw)
