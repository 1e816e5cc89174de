"""The operator deployed from its generated plain manifests (rbac.yaml and
deployment.yaml, ``config/`` in this repository), the way a user without OLM installs it,
with the deploy-time settings a user would change: the namespace it runs in and the
namespaces it watches. The image named there must be on the nodes (this repository's
hack/e2e.sh loads it into kind); on KWOK no image is needed.

Several copies can run side by side (one per test namespace): the cluster-scoped
ClusterRole and ClusterRoleBinding get a suffix, everything else moves to the namespace.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}


def scoped(docs: list[dict[str, Any]], watch: list[str]) -> list[dict[str, Any]]:
    """``docs`` with the operator Deployment watching only ``watch`` (MINOP_NAMESPACE): on a
    cluster whose pods run, an operator watching everything would take over the objects
    of every other test."""
    out = copy.deepcopy(docs)
    for doc in out:
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [
                *(container.get("env") or []),
                {"name": "MINOP_NAMESPACE", "value": ",".join(watch)},
            ]
    return out


def manifests(
    config: Path, namespace: str, watch: list[str], suffix: str = ""
) -> list[dict[str, Any]]:
    """``config``/rbac.yaml and ``config``/deployment.yaml, moved to ``namespace``, watching only
    ``watch``, with the cluster-scoped names suffixed with ``suffix``."""
    docs: list[dict[str, Any]] = []
    for name in ("rbac.yaml", "deployment.yaml"):
        docs += [d for d in yaml.safe_load_all((config / name).read_text()) if d]
    out = []
    for doc in map(copy.deepcopy, docs):
        meta = doc["metadata"]
        if doc["kind"] in CLUSTER_SCOPED:
            meta["name"] += suffix
        else:
            meta["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
        out.append(doc)
    return scoped(out, watch)


def deploy(
    kubectl: Callable[..., Any], config: Path, namespace: str, watch: list[str], suffix: str
) -> str:
    """Applies ``manifests`` and waits until the Deployment is Available (its pod passed
    /readyz: caches synced, leader elected). Returns the Deployment's name."""
    docs = manifests(config, namespace, watch, suffix)
    kubectl("apply", "--server-side", "-f", "-", input="\n---\n".join(map(json.dumps, docs)))
    name = str(next(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"))
    wait = ("wait", "-n", namespace, "--for=condition=Available", f"deployment/{name}")
    if kubectl(*wait, "--timeout=120s", check=False, timeout=150).returncode != 0:
        pods = kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        logs = kubectl("logs", "-n", namespace, f"deployment/{name}", "--tail=30", check=False)
        raise AssertionError(f"operator not Available:\n{pods}\n{logs.stdout}{logs.stderr}")
    return name


def remove(kubectl: Callable[..., Any], suffix: str) -> None:
    """Deletes the cluster-scoped objects of a copy (the rest goes with its namespace)."""
    for kind in sorted(CLUSTER_SCOPED):
        kubectl("delete", kind.lower(), f"minop{suffix}", "--ignore-not-found", check=False)
