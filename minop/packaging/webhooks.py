"""The admission webhook configurations derived from what the plugins declare.

One ValidatingWebhookConfiguration and one MutatingWebhookConfiguration, named
``--webhook-config`` (the self-managed certificate writes its CA bundle into them),
with an entry per resource that declares ``validating`` / ``mutating``. ``client``
says how the API server reaches the operator: the Service in a cluster, a URL on a
local control plane.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from minop.resource import Resource
from minop.webhook.lifecycle import MUTATING, VALIDATING

Client = Callable[[str], dict[str, Any]]  # the webhook's path -> its clientConfig


def service_client(name: str, namespace: str, port: int = 443) -> Client:
    return lambda path: {
        "service": {"name": name, "namespace": namespace, "path": path, "port": port}
    }


def configurations(
    resources: Iterable[Resource], name: str, client: Client
) -> list[dict[str, Any]]:
    out = []
    resources = list(resources)
    for kind, attr, path in (
        (VALIDATING, "validating", "/validate"),
        (MUTATING, "mutating", "/mutate"),
    ):
        hooks = []
        for r in resources:
            webhook = getattr(r, attr)
            if webhook is None:
                continue
            hooks.append(
                {
                    "name": f"{attr[0]}.{r.kind.plural}.{r.kind.group}",
                    "clientConfig": client(path),
                    "rules": [
                        {
                            "apiGroups": [r.kind.group],
                            "apiVersions": [r.kind.version],
                            "operations": list(webhook.operations),
                            "resources": [r.kind.plural],
                            "scope": "Namespaced" if r.kind.namespaced else "Cluster",
                        }
                    ],
                    "failurePolicy": webhook.failure_policy,
                    # a request in any served version reaches the hook converted to
                    # the operator's own (kind.version): hooks see one shape only
                    "matchPolicy": "Equivalent",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": webhook.timeout,
                }
            )
        if hooks:
            out.append(
                {
                    "apiVersion": kind.api_version,
                    "kind": kind.kind,
                    "metadata": {"name": name},
                    "webhooks": hooks,
                }
            )
    return out


# -- what the generators add when a plugin declares webhooks or several versions --------

PORT = 9443
SERVICE = "minop-webhook"
DEPLOYMENT = "minop-operator"
CERT_MANAGER = "cert-manager"
_ADMISSION = "admissionregistration.k8s.io"


def needed(resources: Iterable[Resource]) -> bool:
    return any(r.validating or r.mutating or len(r.versions) > 1 for r in resources)


def conversion_crds(resources: Iterable[Resource]) -> list[str]:
    return [r.crd["metadata"]["name"] for r in resources if r.crd and len(r.versions) > 1]


def rules(
    resources: list[Resource], mode: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rules in the operator's namespace, cluster rules): the self-managed certificate
    (its Secret, the caBundles) and the storage version migration."""
    ns: list[dict[str, Any]] = []
    cluster: list[dict[str, Any]] = []
    crds = conversion_crds(resources)
    if mode == "self-managed" and needed(resources):
        ns.append({"apiGroups": [""], "resources": ["secrets"],
                   "verbs": ["get", "create", "update"]})  # fmt: skip
        cluster.append(
            {
                "apiGroups": [_ADMISSION],
                "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
                "verbs": ["get", "update"],
            }
        )
    if crds:
        verbs = ["get", "patch", "update"] if mode == "self-managed" else ["get", "patch"]
        cluster.append({"apiGroups": ["apiextensions.k8s.io"],
                        "resources": ["customresourcedefinitions"], "verbs": verbs})  # fmt: skip
        cluster.append({"apiGroups": ["apiextensions.k8s.io"],
                        "resources": ["customresourcedefinitions/status"],
                        "verbs": ["patch"]})  # fmt: skip
    return ns, cluster


def crd(r: Resource, namespace: str, mode: str) -> dict[str, Any]:
    """The CRD as installed: its conversion webhook's Service in ``namespace``;
    cert-manager's CA injector annotation in that mode."""
    assert r.crd is not None
    out = copy.deepcopy(dict(r.crd))
    conversion = out["spec"].get("conversion") or {}
    service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
    if service is not None:
        service.update({"name": SERVICE, "namespace": namespace})
        if mode == CERT_MANAGER:
            out["metadata"].setdefault("annotations", {})[INJECT] = f"{namespace}/{SERVICE}"
    return out


INJECT = "cert-manager.io/inject-ca-from"


def manifests(resources: list[Resource], namespace: str, mode: str) -> list[dict[str, Any]]:
    """The Service, the webhook configurations and, for cert-manager, its Issuer and
    Certificate (whose Secret the operator mounts: see ``deployment``)."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": namespace},
            "spec": {
                "selector": {"app.kubernetes.io/name": "minop"},
                "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook"}],
            },
        }
    ]
    configs = configurations(resources, "minop", service_client(SERVICE, namespace))
    if mode == CERT_MANAGER:
        for c in configs:
            c["metadata"]["annotations"] = {INJECT: f"{namespace}/{SERVICE}"}
        dns = [f"{SERVICE}.{namespace}.svc", f"{SERVICE}.{namespace}.svc.cluster.local"]
        docs += [
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Issuer",
                "metadata": {"name": SERVICE, "namespace": namespace},
                "spec": {"selfSigned": {}},
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": SERVICE, "namespace": namespace},
                "spec": {
                    "secretName": f"{SERVICE}-cert",
                    "dnsNames": dns,
                    "issuerRef": {"kind": "Issuer", "name": SERVICE},
                },
            },
        ]
    return docs + configs


def deployment(spec: dict[str, Any], mode: str) -> None:
    """The operator's pod template: the webhook port, the certificate mode and, for
    cert-manager, its Secret mounted where the operator reads it."""
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    container["ports"].append({"name": "webhook", "containerPort": PORT})
    container["env"].append({"name": "MINOP_WEBHOOK_CERT_MODE", "value": mode})
    if mode == CERT_MANAGER:
        container["volumeMounts"].append(
            {"name": "webhook-cert", "mountPath": CERT_DIR, "readOnly": True}
        )
        pod["volumes"].append({"name": "webhook-cert", "secret": {"secretName": f"{SERVICE}-cert"}})


CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"  # controller-runtime's, where OLM mounts


def csv_definitions(resources: list[Resource]) -> list[dict[str, Any]]:
    """The CSV's ``webhookdefinitions``: OLM issues the certificate, mounts it in
    ``CERT_DIR`` and injects the caBundle (conversion needs AllNamespaces installs)."""
    common = {"admissionReviewVersions": ["v1"], "containerPort": PORT, "targetPort": PORT,
              "deploymentName": DEPLOYMENT, "sideEffects": "None"}  # fmt: skip
    out: list[dict[str, Any]] = []
    for doc in configurations(resources, "minop", lambda path: {"path": path}):
        typ = "ValidatingAdmissionWebhook" if doc["kind"] == VALIDATING.kind else (
            "MutatingAdmissionWebhook")  # fmt: skip
        for h in doc["webhooks"]:
            out.append({**common, "type": typ, "generateName": h["name"],
                        "failurePolicy": h["failurePolicy"], "rules": h["rules"],
                        "timeoutSeconds": h["timeoutSeconds"],
                        "webhookPath": h["clientConfig"]["path"]})  # fmt: skip
    crds = conversion_crds(resources)
    if crds:
        out.append({**common, "type": "ConversionWebhook", "generateName": "c.minop.dev",
                    "conversionCRDs": crds, "webhookPath": "/convert"})  # fmt: skip
    return out
