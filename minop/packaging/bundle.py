"""The OLM bundle (registry+v1): CSV, CRDs, annotations and bundle.Dockerfile,
generated from the installed plugins so it can never drift from the code."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from minop.packaging import rbac, scorecard, webhooks
from minop.resource import Resource

PACKAGE = "minop"
CHANNEL = "alpha"
SERVICE_ACCOUNT = "minop"
ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    '<rect width="64" height="64" rx="12" fill="#1f5f99"/>'
    '<path d="M14 46V20l18 16 18-16v26" fill="none" stroke="#fff" stroke-width="6" '
    'stroke-linejoin="round"/></svg>'
)
DESCRIPTION = """minop runs Memcached, NGINX and Redis (on a StatefulSet) with one small
Python operator.

* **Memcached**: a Deployment and a Service; scale with `kubectl scale mc/NAME`.
* **NginxServer**: unprivileged nginx with your server block or a ConfigMap, TLS
  from a Secret; configuration changes roll the pods, invalid ones are refused
  with nginx's own message.
* **Redis**: a primary and replicas on a StatefulSet with one PVC per pod,
  ordered or parallel pod management, partitioned rolling updates, volume
  expansion and password rotation without an outage.

Every object reports `Ready`, `Progressing` and `Degraded` conditions
(`kubectl wait --for=condition=Ready` works), the operator exposes
controller-runtime metrics on :8080 and `/healthz` `/readyz` on :8081, and runs
with leader election so a second replica takes over at once.
"""


@dataclass(frozen=True)
class BundleInfo:
    version: str  # semver of the operator
    image: str  # operator image
    created_at: str  # ISO 8601, from the version's commit (reproducible)
    scorecard_image: str  # operator-sdk's scorecard-test image, for tests/scorecard/
    replaces: str | None = None  # previous CSV name, for upgrades
    min_kube_version: str = "1.30.0"


def _title(name: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


_X_DESCRIPTORS = {
    "size": ["urn:alm:descriptor:com.tectonic.ui:podCount"],
    "replicas": ["urn:alm:descriptor:com.tectonic.ui:podCount"],
    "resources": ["urn:alm:descriptor:com.tectonic.ui:resourceRequirements"],
    "image": ["urn:alm:descriptor:com.tectonic.ui:text"],
    "conditions": ["urn:alm:descriptor:io.kubernetes.conditions"],
    "nodes": ["urn:alm:descriptor:com.tectonic.ui:podStatuses"],
}


def _descriptors(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        d: dict[str, Any] = {
            "path": name,
            "displayName": _title(name),
            "description": prop.get("description", ""),
        }
        if name in _X_DESCRIPTORS:
            d["x-descriptors"] = _X_DESCRIPTORS[name]
        out.append(d)
    return out


def _owned(r: Resource) -> dict[str, Any]:
    assert r.crd is not None
    version = r.crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    return {
        "name": r.crd["metadata"]["name"],
        "version": r.kind.version,
        "kind": r.kind.kind,
        "displayName": _title(r.kind.kind),
        "description": version["schema"]["openAPIV3Schema"]["description"],
        "resources": [
            {"kind": k.kind, "name": "", "version": k.version} for k in (*r.children, *r.observes)
        ],
        "specDescriptors": _descriptors(schema["spec"]),
        "statusDescriptors": _descriptors(schema["status"]),
    }


def deployment(image: str) -> dict[str, Any]:
    """The operator's Deployment: leader election on, restricted, read-only but for /tmp,
    probed."""
    probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10}
    return {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "minop"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "minop"}},
            "spec": {
                "serviceAccountName": SERVICE_ACCOUNT,
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "terminationGracePeriodSeconds": 40,
                "containers": [
                    {
                        "name": "operator",
                        "image": image,
                        "args": ["run", "--leader-elect", "--log-format=json"],
                        "env": [
                            # OLM's OperatorGroup picks the namespaces; "" means all
                            {
                                "name": "MINOP_NAMESPACE",
                                "valueFrom": {
                                    "fieldRef": {
                                        "fieldPath": "metadata.annotations['olm.targetNamespaces']"
                                    }
                                },
                            },
                            {
                                "name": "MINOP_LEADER_ELECTION_NAMESPACE",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                            },
                        ],
                        "ports": [
                            {"name": "metrics", "containerPort": 8080},
                            {"name": "health", "containerPort": 8081},
                        ],
                        "livenessProbe": {**probe, "initialDelaySeconds": 15},
                        "readinessProbe": {
                            **probe,
                            "httpGet": {"path": "/readyz", "port": "health"},
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                        },
                        # plugins write temporary files (nginx -t checks a candidate config)
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
    }


def csv(resources: list[Resource], info: BundleInfo) -> dict[str, Any]:
    owned = [r for r in resources if r.crd]
    ns_rules, cluster_rules = rbac.split_rules(rbac.rules(owned))
    images = {"minop": info.image}
    for r in owned:
        images.update(r.images)
    examples = [dict(e) for r in owned for e in r.examples]
    spec: dict[str, Any] = {
        "displayName": "minop",
        "description": DESCRIPTION,
        "version": info.version,
        "minKubeVersion": info.min_kube_version,
        "maturity": CHANNEL,
        "provider": {"name": "minop", "url": "https://github.com/minop-dev/minop"},
        "maintainers": [{"name": "minop maintainers", "email": "maintainers@minop.dev"}],
        "links": [
            {"name": "Source and documentation", "url": "https://github.com/minop-dev/minop"}
        ],
        "keywords": ["memcached", "nginx", "redis", "cache", "web server", "statefulset"],
        "icon": [
            {
                "base64data": base64.b64encode(ICON_SVG.encode()).decode(),
                "mediatype": "image/svg+xml",
            }
        ],
        "installModes": [
            {"type": t, "supported": True}
            for t in ("OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces")
        ],
        "customresourcedefinitions": {"owned": [_owned(r) for r in owned]},
        "relatedImages": [{"name": k, "image": v} for k, v in sorted(images.items())],
        "install": {
            "strategy": "deployment",
            "spec": {
                "permissions": [
                    {"serviceAccountName": SERVICE_ACCOUNT, "rules": ns_rules + rbac.lease_rules()}
                ],
                "deployments": [
                    {
                        "name": "minop-operator",
                        "label": {"app.kubernetes.io/name": "minop"},
                        "spec": deployment(info.image),
                    }
                ],
            },
        },
    }
    if webhooks.needed(owned):  # OLM issues the certificate (webhookdefinitions)
        spec["webhookdefinitions"] = webhooks.csv_definitions(owned)
        if webhooks.conversion_crds(owned):  # OLM converts for the whole cluster
            for mode in spec["installModes"]:
                mode["supported"] = mode["type"] == "AllNamespaces"
        webhooks.deployment(spec["install"]["spec"]["deployments"][0]["spec"], "olm")
        own, cluster_extra = webhooks.rules(owned, "olm")
        spec["install"]["spec"]["permissions"][0]["rules"] += own
        cluster_rules = cluster_rules + cluster_extra
    if cluster_rules:
        spec["install"]["spec"]["clusterPermissions"] = [
            {"serviceAccountName": SERVICE_ACCOUNT, "rules": cluster_rules}
        ]
    if info.replaces:
        spec["replaces"] = info.replaces
    spec["skipRange"] = f"<{info.version}"
    return {
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "ClusterServiceVersion",
        "metadata": {
            "name": f"{PACKAGE}.v{info.version}",
            "namespace": "placeholder",
            "annotations": {
                "alm-examples": json.dumps(examples, indent=2),
                # what the OLM e2e proves: installed from a catalog, upgraded through the
                # channel with the existing objects kept (tests/e2e/olm)
                "capabilities": "Seamless Upgrades",
                "categories": "Database,Networking",
                "containerImage": info.image,
                "createdAt": info.created_at,
                "description": "Memcached, NGINX and Redis operators on one small Python "
                "framework.",
                "repository": "https://github.com/minop-dev/minop",
                "support": "minop maintainers",
                "operatorframework.io/suggested-namespace": "minop-system",
            },
            "labels": {
                "operatorframework.io/arch.amd64": "supported",
                "operatorframework.io/os.linux": "supported",
            },
        },
        "spec": spec,
    }


ANNOTATIONS = {
    "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
    "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
    "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
    "operators.operatorframework.io.bundle.package.v1": PACKAGE,
    "operators.operatorframework.io.bundle.channels.v1": CHANNEL,
    "operators.operatorframework.io.bundle.channel.default.v1": CHANNEL,
    **scorecard.ANNOTATIONS,
}


def files(resources: list[Resource], info: BundleInfo) -> dict[str, str]:
    """Relative path -> content of every bundle file."""

    def dump(doc: Any) -> str:
        return yaml.safe_dump(doc, sort_keys=False, width=100)

    out = {f"manifests/{PACKAGE}.clusterserviceversion.yaml": dump(csv(resources, info))}
    for r in resources:
        if r.crd:
            out[f"manifests/{r.kind.group}_{r.kind.plural}.yaml"] = dump(dict(r.crd))
    out["metadata/annotations.yaml"] = dump({"annotations": ANNOTATIONS})
    out[f"{scorecard.CONFIG_DIR}config.yaml"] = dump(scorecard.config(info.scorecard_image))
    labels = "".join(f"LABEL {k}={v}\n" for k, v in ANNOTATIONS.items())
    copies = [
        f"COPY {d.rstrip('/')} /{d}\n" for d in ("manifests/", "metadata/", scorecard.CONFIG_DIR)
    ]
    out["bundle.Dockerfile"] = "FROM scratch\n\n" + labels + "\n" + "".join(copies)
    return out


def write(root: Path, contents: Mapping[str, str]) -> None:
    """Replace ``root`` by exactly these files (stale CRDs must not linger)."""
    for old in sorted(root.rglob("*"), reverse=True) if root.exists() else []:
        if old.is_file() and str(old.relative_to(root)) not in contents:
            old.unlink()
    for rel, text in contents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def plain_manifests(
    resources: list[Resource], image: str, namespace: str = "minop-system"
) -> dict[str, str]:
    """config/ for users without OLM: ``kubectl apply -k config``."""

    def dump_all(docs: list[Any]) -> str:
        return yaml.safe_dump_all(docs, sort_keys=False, width=100)

    owned = [r for r in resources if r.crd]
    dep = deployment(image)
    # Without OLM there are no target namespaces: watch all of them.
    env = dep["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "MINOP_NAMESPACE"]
    mode = "self-managed"  # config/cert-manager/ would patch it; see docs/operations.md
    own, cluster_extra = webhooks.rules(owned, mode)
    if webhooks.needed(owned):
        webhooks.deployment(dep, mode)
    files = {
        "namespace.yaml": dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": namespace,
                        "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                    },
                }
            ]
        ),
        "crds.yaml": dump_all([webhooks.crd(r, namespace, mode) for r in owned]),
        "rbac.yaml": dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
                },
                *rbac.manifests(
                    owned, "minop", namespace, SERVICE_ACCOUNT, own=own, cluster_extra=cluster_extra
                ),
            ]
        ),
        "deployment.yaml": dump_all(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "minop-operator", "namespace": namespace},
                    "spec": dep,
                }
            ]
        ),
    }
    listed = ["namespace.yaml", "crds.yaml", "rbac.yaml", "deployment.yaml"]
    if webhooks.needed(owned):
        files["webhook.yaml"] = dump_all(webhooks.manifests(owned, namespace, mode))
        listed.append("webhook.yaml")
    files["kustomization.yaml"] = yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": listed,
        },
        sort_keys=False,
    )
    return files
