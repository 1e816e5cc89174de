"""StatefulSet, pod and hook-context stand-ins for the Redis unit tests."""

from __future__ import annotations

import base64
import copy
import logging
from typing import Any

from minop_redis.children import AUTH_HASH

from minop.apply import content_hash, hash_only
from minop.resource import Kind


def statefulset(
    replicas: int,
    update: str = "rev-new",
    current: str = "rev-old",
    digest: str = "d",
    observed: bool = True,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "generation": 2},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"annotations": {AUTH_HASH: digest}}},
        },
        "status": {
            "observedGeneration": 2 if observed else 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": 0,
            "currentRevision": current,
            "updateRevision": update,
        },
    }


def pod(ordinal: int, revision: str = "rev-new", ready: bool = True, gone: bool = False) -> Any:
    meta: dict[str, Any] = {
        "name": f"r-{ordinal}",
        "labels": {"controller-revision-hash": revision},
    }
    if gone:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cond = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": meta, "status": {"conditions": [cond]}}


def user_secret(password: bytes, key: str = "password") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pw"},
        "data": {key: base64.b64encode(password).decode()},
    }


class FakeApi:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects, self.reads = objects, []

    def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Any:
        self.reads.append(name)
        obj = self.objects.get(name)
        return copy.deepcopy(obj) if obj is not None else None


class FakeContext:
    """Secrets by name; the cache (``child``) sees them as the core does: hashed."""

    def __init__(self, spec: dict[str, Any], objects: dict[str, dict[str, Any]]) -> None:
        self.spec, self.name, self.namespace = spec, "r", "ns"
        self.objects = objects
        self.api = FakeApi(objects)
        self.applied: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []
        self.logger = logging.getLogger("test")

    def related_hash(self, kind: Kind, name: str) -> str | None:
        obj = self.objects.get(name)
        return None if obj is None else content_hash({"data": obj.get("data")})

    def child(self, kind: Kind, name: str) -> Any:
        obj = self.objects.get(name)
        return None if obj is None else hash_only(copy.deepcopy(obj))

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        live = hash_only(copy.deepcopy(obj))
        cached = self.child(Kind("", "v1", "Secret", "secrets"), obj["metadata"]["name"])
        if cached is None or cached != live:
            self.applied.append(obj)
        self.objects[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj

    def event(self, etype: str, reason: str, message: str) -> None:
        self.events.append((etype, reason, message))
