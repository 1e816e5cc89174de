"""Finding cluster credentials: in-cluster service account or merged KUBECONFIG files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Kubeconfig keys that hold file paths, resolved relative to their own file.
_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


class ConfigError(Exception):
    """No usable cluster configuration; the message says what to do."""


def in_cluster_doc(sa_dir: Path = SA_DIR) -> dict[str, Any]:
    """A kubeconfig for the pod's service account; the token is re-read as it rotates."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("KUBERNETES_SERVICE_HOST is not set")
    if ":" in host:
        host = f"[{host}]"
    ns_file = sa_dir / "namespace"
    context: dict[str, Any] = {"cluster": "in-cluster", "user": "in-cluster"}
    if ns_file.exists():
        context["namespace"] = ns_file.read_text().strip()
    return {
        "clusters": [
            {
                "name": "in-cluster",
                "cluster": {
                    "server": f"https://{host}:{port}",
                    "certificate-authority": str(sa_dir / "ca.crt"),
                },
            }
        ],
        "users": [{"name": "in-cluster", "user": {"tokenFile": str(sa_dir / "token")}}],
        "contexts": [{"name": "in-cluster", "context": context}],
        "current-context": "in-cluster",
    }


def merged_kubeconfig(paths: list[Path], context: str | None = None) -> dict[str, Any]:
    """Merge kubeconfig files the way kubectl does: the first file to name a thing wins."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": [], "current-context": ""}
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    found = False
    for path in paths:
        if not path.is_file():
            continue
        found = True
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"kubeconfig {path} is not valid YAML: {e}") from e
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", None)):
            for entry in doc.get(section) or []:
                if entry.get("name") in seen[section]:
                    continue
                seen[section].add(entry["name"])
                if inner:
                    _absolutize(entry.get(inner) or {}, _PATH_KEYS[inner], path.parent)
                merged[section].append(entry)
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise ConfigError(
            f"no kubeconfig found (looked at {names}); set KUBECONFIG, pass --kubeconfig, "
            "or run `make cluster-up` for a local cluster"
        )
    if context:
        merged["current-context"] = context
    if not merged["current-context"]:
        raise ConfigError("kubeconfig has no current-context; pass --context")
    if merged["current-context"] not in seen["contexts"]:
        raise ConfigError(f"context {merged['current-context']!r} not found in kubeconfig")
    return merged


def _absolutize(entry: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    for key in keys:
        value = entry.get(key)
        if value and not os.path.isabs(os.path.expanduser(value)):
            entry[key] = str(base / value)


def load(kubeconfig: str | None = None, context: str | None = None) -> dict[str, Any]:
    """Explicit path, then $KUBECONFIG (a path list), then in-cluster, then ~/.kube/config."""
    if kubeconfig:
        return merged_kubeconfig([Path(kubeconfig).expanduser()], context)
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
        return merged_kubeconfig(paths, context)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").exists():
        return in_cluster_doc()
    return merged_kubeconfig([Path("~/.kube/config").expanduser()], context)
