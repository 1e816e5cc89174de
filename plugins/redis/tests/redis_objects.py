"""StatefulSet, pod and Secret bodies for the Redis unit tests."""

from __future__ import annotations

import base64
from typing import Any

from minop_redis.children import AUTH_HASH


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
