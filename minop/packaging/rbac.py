"""Least-privilege RBAC derived from what the plugins declare: nothing wildcard."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from minop import kinds
from minop.resource import Kind, Resource

READ = ("get", "list", "watch")
CLUSTER_SCOPED = {
    "storageclasses",
    "persistentvolumes",
    "nodes",
    "namespaces",
    "customresourcedefinitions",
}
WRITE = ("create", "patch", "update", "delete")
_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


def rules(resources: Iterable[Resource]) -> list[dict[str, Any]]:
    """PolicyRules for reconciling ``resources`` (Leases are separate: see lease_rules)."""
    verbs: dict[tuple[str, str], set[str]] = {}

    def allow(kind: Kind, sub: str | None, *vs: str) -> None:
        resource = f"{kind.plural}/{sub}" if sub else kind.plural
        verbs.setdefault((kind.group, resource), set()).update(vs)

    extra: list[dict[str, Any]] = []
    for r in resources:
        allow(r.kind, None, *READ, "patch", "update")  # finalizer and last-handled annotation
        allow(r.kind, "status", "get", "patch", "update")
        # blockOwnerDeletion on children needs update on the owner's finalizers
        allow(r.kind, "finalizers", "update")
        for k in r.children:
            allow(k, None, *READ, *WRITE)
        for k in r.observes:
            allow(k, None, *READ)
        for rel in r.related:
            allow(rel.kind, None, *READ)
        for x in r.extra_rules:
            rule = copy.deepcopy(dict(x))
            if rule not in extra:  # plugins share some (minop.kit.monitoring's)
                extra.append(rule)
    allow(kinds.EVENT, None, "create", "patch", "get")
    out = [
        {"apiGroups": [group], "resources": [res], "verbs": sorted(v, key=_ORDER.index)}
        for (group, res), v in sorted(verbs.items())
    ]
    return out + extra


def split_rules(rules: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(namespaced, cluster-scoped): a Role (or OLM's namespace-scoped `permissions`)
    cannot grant a cluster-scoped resource."""
    ns: list[dict[str, Any]] = []
    cluster: list[dict[str, Any]] = []
    for rule in rules:
        (cluster if set(rule["resources"]) & CLUSTER_SCOPED else ns).append(rule)
    return ns, cluster


def lease_rules() -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            # list and delete: sharding's member Leases (minop.membership)
            "verbs": ["get", "list", "create", "update", "delete"],
        }
    ]


def manifests(
    resources: list[Resource],
    name: str,
    namespace: str,
    service_account: str,
    watch_namespaces: tuple[str, ...] = (),
    own: Sequence[dict[str, Any]] = (),
    cluster_extra: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Role(s)/ClusterRole and bindings for the operator's ServiceAccount.

    All namespaces: one ClusterRole. Listed namespaces: a Role per namespace, and a
    ClusterRole for the cluster-scoped rules, if any.
    The Lease always lives in the operator's own namespace, with ``own`` (rules there,
    e.g. the webhook certificate's Secret); ``cluster_extra`` joins the cluster rules.
    The startup checks (/version, API discovery for the CRDs) need nothing: every
    authenticated user may read discovery.
    """
    subject = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    docs: list[dict[str, Any]] = []

    def role(kind: str, ns: str | None, role_name: str, rs: list[dict[str, Any]]) -> None:
        meta: dict[str, Any] = {"name": role_name}
        if ns:
            meta["namespace"] = ns
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": dict(meta),
                "rules": rs,
            }
        )
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": f"{kind}Binding",
                "metadata": dict(meta),
                "subjects": subject,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": kind,
                    "name": role_name,
                },
            }
        )

    reconcile = rules(resources)
    if watch_namespaces:
        namespaced, cluster = split_rules(reconcile)
        for ns in watch_namespaces:
            role("Role", ns, name, namespaced)
        if cluster or cluster_extra:
            role("ClusterRole", None, name, [*cluster, *cluster_extra])
    else:
        role("ClusterRole", None, name, [*reconcile, *cluster_extra])
    role("Role", namespace, f"{name}-leader-election", [*lease_rules(), *own])
    return docs
