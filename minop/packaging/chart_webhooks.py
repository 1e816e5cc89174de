# ruff: noqa: E501  (template text: its lines are what Helm renders, not Python)
"""The Helm chart's webhook support, generated only when a plugin declares a hook or
serves several versions (today's chart without them is unchanged).

Certificates: ``self-managed`` (the operator's Secret, its CA written into every
caBundle) or ``cert-manager`` (an Issuer and a Certificate, the CA injector's
annotation). A CRD with a conversion webhook names the release's Service and
namespace, which Helm never templates in ``crds/``: such CRDs are rendered from
``templates/`` (behind ``crds.install``, kept on uninstall like the others), so
``helm upgrade`` also brings their new versions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from minop.packaging import webhooks
from minop.resource import Resource

SERVICE = '{{ include "minop.fullname" . }}-webhook'
_CERT_MANAGER = 'eq .Values.webhook.certMode "cert-manager"'
_INJECT = f"{webhooks.INJECT}: {{{{ .Release.Namespace }}}}/{SERVICE}"


def needed(plugins: Mapping[str, list[Resource]]) -> bool:
    return webhooks.needed(r for rs in plugins.values() for r in rs)


def conversion(plugins: Mapping[str, list[Resource]]) -> list[Resource]:
    return [r for rs in plugins.values() for r in rs if r.crd and len(r.versions) > 1]


def values() -> list[tuple[str, str, Any]]:
    return [
        ("webhook", "admission and conversion webhooks, served by every replica on port "
         f"{webhooks.PORT} behind the Service <fullname>-webhook; certMode: self-managed (the "
         "operator keeps a CA and certificate in a Secret and every caBundle current) or "
         "cert-manager (its Issuer and Certificate; cert-manager must be installed)",
         {"enabled": True, "certMode": "self-managed"}),
        ("crds", "the CRDs that serve several versions are in templates/ (their conversion "
         "webhook names this release's Service); false if you apply them yourself",
         {"install": True}),
    ]  # fmt: skip


def schema() -> dict[str, Any]:
    def closed(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "properties": props}

    return {
        "webhook": closed(
            {"enabled": {"type": "boolean"}, "certMode": {"enum": ["self-managed", "cert-manager"]}}
        ),
        "crds": closed({"install": {"type": "boolean"}}),
    }


def _dump(rules: list[dict[str, Any]]) -> str:
    return "".join("\n" + yaml.safe_dump([r], sort_keys=False).rstrip() for r in rules)


def _rules(resources: list[Resource], mode: str) -> tuple[str, str]:
    ns, cluster = webhooks.rules(resources, mode)
    return _dump(ns), _dump(cluster)


def rules(plugins: Mapping[str, list[Resource]]) -> tuple[str, str]:
    """(the Role's rules in the release namespace, the cluster rules), per certMode."""
    resources = [r for rs in plugins.values() for r in rs]
    own_self, cluster_self = _rules(resources, "self-managed")
    own_cm, cluster_cm = _rules(resources, webhooks.CERT_MANAGER)

    def choose(self_managed: str, cert_manager: str) -> str:
        return (
            "\n{{- if .Values.webhook.enabled }}"
            f"\n{{{{- if {_CERT_MANAGER} }}}}{cert_manager}\n{{{{- else }}}}{self_managed}"
            "\n{{- end }}\n{{- end }}"
        )

    return choose(own_self, own_cm), choose(cluster_self, cluster_cm)


# Spliced into chart_templates.DEPLOYMENT by chart._deployment (ENV before the user's
# `env`, which may override it).
ENV = f"""
            {{{{- if .Values.webhook.enabled }}}}
            - name: MINOP_WEBHOOK_ADDR
              value: ":{webhooks.PORT}"
            - name: MINOP_WEBHOOK_CERT_MODE
              value: {{{{ .Values.webhook.certMode | quote }}}}
            - name: MINOP_WEBHOOK_SERVICE
              value: "{SERVICE}"
            - name: MINOP_WEBHOOK_SECRET
              value: "{SERVICE}-cert"
            - name: MINOP_WEBHOOK_CONFIG
              value: {{{{ include "minop.fullname" . | quote }}}}
            {{{{- else }}}}
            - name: MINOP_WEBHOOK_ADDR
              value: "0"
            {{{{- end }}}}"""
PORT = f"""
            {{{{- if .Values.webhook.enabled }}}}
            - name: webhook
              containerPort: {webhooks.PORT}
            {{{{- end }}}}"""
MOUNT = f"""
            {{{{- if and .Values.webhook.enabled ({_CERT_MANAGER}) }}}}
            - name: webhook-cert
              mountPath: {webhooks.CERT_DIR}
              readOnly: true
            {{{{- end }}}}"""
VOLUME = f"""
        {{{{- if and .Values.webhook.enabled ({_CERT_MANAGER}) }}}}
        - name: webhook-cert
          secret:
            secretName: {SERVICE}-cert
        {{{{- end }}}}"""

_CHECK = """\
{{- if not .Values.webhook.enabled }}
{{- fail "webhook.enabled: the CRDs %s serve several versions: the API server needs the conversion webhook" }}
{{- end }}
"""

_SERVICE = f"""\
{{{{- if .Values.webhook.enabled }}}}
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    {{{{- include "minop.labels" . | nindent 4 }}}}
    app.kubernetes.io/component: webhook
spec:
  type: ClusterIP
  selector:
    {{{{- include "minop.selectorLabels" . | nindent 4 }}}}
  ports:
    - name: webhook
      port: 443
      targetPort: webhook
{{{{- if {_CERT_MANAGER} }}}}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: {SERVICE}
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    {{{{- include "minop.labels" . | nindent 4 }}}}
spec:
  selfSigned: {{}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {SERVICE}
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    {{{{- include "minop.labels" . | nindent 4 }}}}
spec:
  secretName: {SERVICE}-cert
  dnsNames:
    - {SERVICE}.{{{{ .Release.Namespace }}}}.svc
    - {SERVICE}.{{{{ .Release.Namespace }}}}.svc.cluster.local
  issuerRef:
    kind: Issuer
    name: {SERVICE}
{{{{- end }}}}
{{{{- end }}}}
"""


def _client(path: str) -> dict[str, Any]:
    return {
        "service": {
            "name": SERVICE,
            "namespace": "{{ .Release.Namespace }}",
            "path": path,
            "port": 443,
        }
    }


def _owner(plugins: Mapping[str, list[Resource]], hook_name: str) -> str:
    """The plugin whose resource a generated hook (``v.<plural>.<group>``) is for."""
    return next(
        name
        for name, rs in plugins.items()
        for r in rs
        if hook_name.endswith(f".{r.kind.plural}.{r.kind.group}")
    )


def _configurations(plugins: Mapping[str, list[Resource]]) -> str:
    """One configuration per kind of hook, each hook behind its plugin's switch (a
    disabled plugin is not served: its failing-closed hook would refuse every write)."""
    resources = [r for rs in plugins.values() for r in rs]
    out = ""
    for doc in webhooks.configurations(resources, "minop", _client):
        out += f"""
---
apiVersion: {doc["apiVersion"]}
kind: {doc["kind"]}
metadata:
  name: {{{{ include "minop.fullname" . }}}}
  labels:
    {{{{- include "minop.labels" . | nindent 4 }}}}
  {{{{- if {_CERT_MANAGER} }}}}
  annotations:
    {_INJECT}
  {{{{- end }}}}
webhooks:"""
        for hook in doc["webhooks"]:
            body = yaml.safe_dump([hook], sort_keys=False, width=1000).rstrip()
            out += f'\n{{{{- if index .Values.plugins "{_owner(plugins, hook["name"])}" }}}}\n{body}\n{{{{- end }}}}'
    return "{{- if .Values.webhook.enabled }}" + out + "\n{{- end }}\n" if out else ""


def _crds(resources: list[Resource]) -> str:
    out = "{{- if .Values.crds.install }}"
    for r in resources:
        assert r.crd is not None
        body = copy.deepcopy(dict(r.crd))
        service = body["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
        service.update({"name": SERVICE, "namespace": "{{ .Release.Namespace }}"})
        meta = body.pop("metadata")
        spec = yaml.safe_dump({"spec": body.pop("spec")}, sort_keys=False, width=1000)
        head = yaml.safe_dump(body, sort_keys=False).rstrip()
        out += f"""
---
{head}
metadata:
  name: {meta["name"]}
  labels:
    {{{{- include "minop.labels" . | nindent 4 }}}}
  annotations:
    # like crds/: helm uninstall leaves the CRD, hence your objects
    helm.sh/resource-policy: keep
    {{{{- if {_CERT_MANAGER} }}}}
    {_INJECT}
    {{{{- end }}}}
{spec.rstrip()}"""
    return out + "\n{{- end }}\n"


def templates(plugins: Mapping[str, list[Resource]]) -> dict[str, str]:
    out = {"templates/webhook.yaml": _SERVICE + _configurations(plugins)}
    converted = conversion(plugins)
    if converted:
        names = ", ".join(r.crd["metadata"]["name"] for r in converted if r.crd)
        out["templates/crds.yaml"] = _CHECK % names + _crds(converted)
    return out


_README = """
## Webhooks

Some kinds have admission hooks or serve several versions, so the operator serves a
webhook (HTTPS on port %(port)d, every replica, behind the Service `<fullname>-webhook`):

- `webhook.certMode: self-managed` (default): the operator creates a CA and serving
  certificate in the Secret `<fullname>-webhook-cert`, renews them before expiry and
  writes the CA into the webhook configurations and the CRDs' conversion sections
  (the chart grants it that Secret and those objects, nothing more).
- `webhook.certMode: cert-manager`: the chart adds a self-signed Issuer and a
  Certificate; cert-manager's CA injector fills every caBundle. Install cert-manager first.

A hook that fails closed (`failurePolicy: Fail`) refuses writes while no replica
answers: run `replicas: 2` or more. A disabled plugin's hooks are left out.
"""

_README_CRDS = """
## CRDs with several versions

A CRD whose versions are converted by the webhook must name this release's Service and
namespace, which Helm cannot do in `crds/`. Those CRDs (%(names)s) are therefore
rendered from `templates/crds.yaml`:

- `helm upgrade` updates them (new versions arrive with the operator that converts them);
- `helm uninstall` still leaves them (`helm.sh/resource-policy: keep`), hence your objects;
- `crds.install: false` if you manage them yourself: point their
  `spec.conversion.webhook.clientConfig.service` at `<fullname>-webhook` in the release
  namespace.

A CRD created by an older chart from `crds/` is not Helm's yet: before `helm upgrade`,
let the release adopt it:

```sh
kubectl label crd <name> app.kubernetes.io/managed-by=Helm
kubectl annotate crd <name> meta.helm.sh/release-name=<release> meta.helm.sh/release-namespace=<namespace>
```
"""


def readme(plugins: Mapping[str, list[Resource]]) -> str:
    text = _README % {"port": webhooks.PORT}
    names = ", ".join(f"`{r.crd['metadata']['name']}`" for r in conversion(plugins) if r.crd)
    return text + (_README_CRDS % {"names": names} if names else "")
