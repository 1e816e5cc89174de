"""The Helm chart (charts/minop), generated from the installed plugins by the same source
as the OLM bundle and config/: the CRDs, the RBAC rules and the Deployment's defaults
(image, probes, resources, security contexts) come from bundle.py and rbac.py, so the
three never drift. Fixed template text is in chart_templates.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import yaml

from minop.packaging import bundle, rbac
from minop.packaging import chart_templates as tpl
from minop.packaging import chart_webhooks as hooks
from minop.resource import Resource

NAME = "minop"
# DNS-1123 label: what a namespace name may be
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def _split_image(image: str) -> tuple[str, str]:
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image: {image!r} has no tag (expected repository:tag)")
    return repo, tag


def values(plugins: Mapping[str, list[Resource]], image: str) -> list[tuple[str, str, Any]]:
    """(key, comment, default) of every top-level value, in the order values.yaml lists them."""
    container = bundle.deployment(image)["template"]["spec"]["containers"][0]
    pod = bundle.deployment(image)["template"]["spec"]
    repository, tag = _split_image(image)
    return [
        ("image", "the operator image", {
            "repository": repository, "tag": tag, "pullPolicy": "IfNotPresent",
        }),
        ("imagePullSecrets", "e.g. [{name: my-registry}]", []),
        ("replicas", "more than 1 needs leaderElection.enabled: the others stand by (or, "
         "with sharding.enabled, each reconciles its share)", 1),
        ("leaderElection", "a Lease in the release namespace (leaseName default: the "
         "release's full name); its durations in seconds serve sharding's Leases too",
         {"enabled": True, "leaseName": "", "leaseDuration": 15, "renewDeadline": 10,
          "retryPeriod": 2}),
        ("sharding", "every replica reconciles a share of the objects (--shards auto; "
         "needs leaderElection.enabled)", {"enabled": False}),
        ("watchNamespaces", "namespaces to watch, with a Role in each; [] watches all "
         "namespaces with a ClusterRole", []),
        ("plugins", "the plugins the operator serves; a disabled plugin's kinds are not "
         "reconciled and get no RBAC (its CRD is still installed)",
         dict.fromkeys(sorted(plugins), True)),
        ("workers", "concurrent reconciles per kind", 8),
        ("logFormat", "json or text", "json"),
        ("logLevel", "DEBUG, INFO, WARNING or ERROR", "INFO"),
        ("env", "extra environment variables, e.g. a plugin's default operand image",
         []),
        ("resources", "the operator container's requests and limits", container["resources"]),
        ("livenessProbe", "on the health port (8081)", container["livenessProbe"]),
        ("readinessProbe", "on the health port (8081)", container["readinessProbe"]),
        ("podSecurityContext", "restricted Pod Security Standard", pod["securityContext"]),
        ("securityContext", "the container's; the root filesystem is read-only but for /tmp",
         container["securityContext"]),
        ("tmpSizeLimit", "the /tmp emptyDir (plugins write candidate configurations there)",
         pod["volumes"][0]["emptyDir"]["sizeLimit"]),
        ("terminationGracePeriodSeconds", "above the 30 s in-flight hooks get on SIGTERM",
         pod["terminationGracePeriodSeconds"]),
        ("podAnnotations", "", {}),
        ("podLabels", "", {}),
        ("nodeSelector", "", {}),
        ("tolerations", "", []),
        ("affinity", "", {}),
        ("priorityClassName", "", ""),
        ("serviceAccount", "name default: the release's full name",
         {"create": True, "name": "", "annotations": {}}),
        ("rbac", "least-privilege rules derived from the enabled plugins", {"create": True}),
        ("metrics", "/metrics on port 8080 and a Service for it; a ServiceMonitor needs the "
         "Prometheus Operator's CRD", {
             "enabled": True,
             "serviceMonitor": {"enabled": False, "interval": "30s", "labels": {}},
         }),
        ("fullnameOverride", "name of every object (default: <release>-minop, or the "
         "release name when it contains minop)", ""),
        *(hooks.values() if hooks.needed(plugins) else []),
    ]  # fmt: skip


def all_options(plugins: Mapping[str, list[Resource]]) -> dict[str, Any]:
    """Values that turn every option on (Helm's ci/ convention: `helm lint` and the tests
    render the chart with them too)."""
    on = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    webhook = {"webhook": {"enabled": True, "certMode": "cert-manager"}, "crds": {"install": True}}
    return {
        "image": {"repository": "registry.example.com/minop", "tag": "dev", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry"}],
        "replicas": 2,
        "leaderElection": {
            "enabled": True, "leaseName": "minop-ci", "leaseDuration": 20, "renewDeadline": 12,
            "retryPeriod": 3,
        },
        "sharding": {"enabled": True},
        "watchNamespaces": ["team-a", "team-b"],
        "plugins": dict.fromkeys(sorted(plugins), True),
        "workers": 4,
        "logFormat": "text",
        "logLevel": "DEBUG",
        "env": [{"name": "MINOP_QPS", "value": "50"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"},
        },
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"example.com/tier": "operators"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [on],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            }},
        ]}},
        "priorityClassName": "system-cluster-critical",
        "serviceAccount": {
            "create": True, "name": "minop-ci", "annotations": {"example.com/a": "b"},
        },
        "metrics": {"enabled": True, "serviceMonitor": {
            "enabled": True, "interval": "15s", "labels": {"release": "prometheus"},
        }},
        "fullnameOverride": "minop-ci",
        **(webhook if hooks.needed(plugins) else {}),
    }  # fmt: skip


def _obj(props: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props, **kw}


def schema(plugins: Mapping[str, list[Resource]]) -> dict[str, Any]:
    """values.schema.json: Helm refuses a wrong value naming its path. Closed objects, so a
    misspelt key is refused too; Kubernetes structures (resources, probes, ...) stay open."""
    string = {"type": "string"}
    k8s = {"type": "object"}
    str_map = {"type": "object", "additionalProperties": string}
    props: dict[str, Any] = {
        "image": _obj(
            {
                "repository": {"type": "string", "minLength": 1},
                "tag": {"type": "string", "minLength": 1},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            required=["repository", "tag"],
        ),
        "imagePullSecrets": {"type": "array", "items": k8s},
        "replicas": {"type": "integer", "minimum": 0},
        "leaderElection": _obj(
            {
                "enabled": {"type": "boolean"},
                "leaseName": string,
                "leaseDuration": {"type": "number", "exclusiveMinimum": 0},
                "renewDeadline": {"type": "number", "exclusiveMinimum": 0},
                "retryPeriod": {"type": "number", "exclusiveMinimum": 0},
            }
        ),
        "sharding": _obj({"enabled": {"type": "boolean"}}),
        "watchNamespaces": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "pattern": _DNS_LABEL},
        },
        "plugins": _obj({p: {"type": "boolean"} for p in sorted(plugins)}),
        "workers": {"type": "integer", "minimum": 1},
        "logFormat": {"enum": ["json", "text"]},
        "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "env": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "resources": k8s,
        "livenessProbe": k8s,
        "readinessProbe": k8s,
        "podSecurityContext": k8s,
        "securityContext": k8s,
        "tmpSizeLimit": string,
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
        "podAnnotations": str_map,
        "podLabels": str_map,
        "nodeSelector": str_map,
        "tolerations": {"type": "array", "items": k8s},
        "affinity": k8s,
        "priorityClassName": string,
        "serviceAccount": _obj(
            {"create": {"type": "boolean"}, "name": string, "annotations": str_map}
        ),
        "rbac": _obj({"create": {"type": "boolean"}}),
        "metrics": _obj(
            {
                "enabled": {"type": "boolean"},
                "serviceMonitor": _obj(
                    {
                        "enabled": {"type": "boolean"},
                        "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                        "labels": str_map,
                    }
                ),
            }
        ),
        "fullnameOverride": string,
        **(hooks.schema() if hooks.needed(plugins) else {}),
    }
    return {"$schema": "https://json-schema.org/draft-07/schema#", **_obj(props)}


def _rules_yaml(rules: list[dict[str, Any]]) -> str:
    return "".join("\n" + yaml.safe_dump([r], sort_keys=False).rstrip() for r in rules)


def _define(name: str, body: str) -> str:
    """A named template whose output starts with a newline (each of its lines does)."""
    return f'{{{{- define "{name}" }}}}{body}\n{{{{- end -}}}}\n'


def helpers(plugins: Mapping[str, list[Resource]]) -> str:
    """_helpers.tpl: the fixed helpers plus the rules and examples of each plugin, each
    behind its `plugins.<name>` switch."""
    common = rbac.rules([])  # what every operator needs (Events)
    namespaced, cluster, examples = _rules_yaml(common), "", ""
    for name, resources in sorted(plugins.items()):
        own = [r for r in rbac.rules(resources) if r not in common]
        ns_rules, cl_rules = rbac.split_rules(own)
        on = f'\n{{{{- if index .Values.plugins "{name}" }}}}'
        namespaced += on + _rules_yaml(ns_rules) + "\n{{- end }}"
        if cl_rules:
            cluster += on + _rules_yaml(cl_rules) + "\n{{- end }}"
        for r in resources:
            if r.examples:
                # unindented, so the here-document pastes into a shell as it is
                doc = yaml.safe_dump(dict(r.examples[0]), sort_keys=False).rstrip()
                examples += (
                    f"{on}\n\nkubectl apply -n <namespace> -f - <<'EOF'\n{doc}\nEOF\n{{{{- end }}}}"
                )
    webhook = ("", "")
    if hooks.needed(plugins):
        webhook = hooks.rules(plugins)
        cluster += webhook[1]
    return (
        tpl.HELPERS
        + "\n"
        + _define("minop.namespacedRules", namespaced)
        + _define("minop.clusterRules", cluster)
        + _define("minop.leaseRules", _rules_yaml(rbac.lease_rules()))
        + _define("minop.webhookRules", webhook[0])
        + _define("minop.examples", examples)
    )


def chart_yaml(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "v2",
        "name": NAME,
        "description": "minop: Memcached, NGINX and Redis operators on one small Python framework",
        "type": "application",
        "version": version,
        "appVersion": version,
        "kubeVersion": ">=1.30.0-0",
        "home": "https://github.com/minop-dev/minop",
        "sources": ["https://github.com/minop-dev/minop"],
        "keywords": ["operator", "memcached", "nginx", "redis"],
        # the CSV's icon, inline: the chart names no web server of its own
        "icon": "data:image/svg+xml;base64," + base64.b64encode(bundle.ICON_SVG.encode()).decode(),
        "maintainers": [{"name": "minop maintainers", "email": "maintainers@minop.dev"}],
    }


README = """\
# minop Helm chart

Generated by `make bundle` (`python -m minop bundle --chart charts/minop`) from the
installed plugins, like `bundle/` (OLM) and `config/` (kustomize); `make test` fails when
it is stale. Do not edit it by hand.

```sh
helm install minop charts/minop -n minop-system --create-namespace
helm install minop charts/minop -n minop-system --set 'watchNamespaces={team-a,team-b}'
```

Every value is listed, with its default and meaning, in `values.yaml`; `values.schema.json`
refuses a wrong or misspelt one naming it (`helm install ... --set replicas=two`: "at
'/replicas': got string, want integer").

## CRDs: what Helm does and does not do

The CRDs are in `crds/`, Helm's convention for them, which means:

- `helm install` creates each CRD that does not exist yet (an existing one is left as it
  is, with no error); `--skip-crds` skips them.
- `helm upgrade` **never** creates or updates CRDs. Before upgrading to a chart with new
  or changed kinds, apply them yourself:
  `kubectl apply --server-side --force-conflicts -f charts/minop/crds/`.
- `helm uninstall` **never** deletes CRDs, so it never deletes your objects either: the
  operator, its ServiceAccount, RBAC and metrics Service go; the CRDs, the custom
  resources and their children (Deployments, StatefulSets, Services, PVCs) stay running,
  unreconciled. To remove them, delete the custom resources *before* uninstalling (the
  operator's finalizers run), or afterwards run `python -m minop remove-finalizers`, then
  delete the objects and finally the CRDs (`kubectl delete -f charts/minop/crds/`).
- Helm does not template files in `crds/`: they are the same for every release.

A disabled plugin (`--set plugins.redis=false`) keeps its CRD but gets no RBAC and is not
reconciled.
"""


def files(
    resources_by_plugin: Mapping[str, list[Resource]], version: str, image: str
) -> dict[str, str]:
    """Relative path -> content of every chart file."""
    plugins = {n: [r for r in rs if r.crd] for n, rs in resources_by_plugin.items()}
    plugins = {n: rs for n, rs in plugins.items() if rs}
    out = {"Chart.yaml": yaml.safe_dump(chart_yaml(version), sort_keys=False)}
    text = "# Default values of the minop chart (generated: see README.md).\n"
    for key, comment, default in values(plugins, image):
        text += "\n" + (f"# {comment}\n" if comment else "")
        text += yaml.safe_dump({key: default}, sort_keys=False, width=100)
    out["values.yaml"] = text
    out["values.schema.json"] = json.dumps(schema(plugins), indent=2) + "\n"
    converted = hooks.conversion(plugins)
    out["README.md"] = README
    if hooks.needed(plugins):
        out["README.md"] += hooks.readme(plugins)
    for rs in plugins.values():
        for r in rs:
            assert r.crd is not None
            if r in converted:
                continue  # in templates/crds.yaml
            out[f"crds/{r.kind.group}_{r.kind.plural}.yaml"] = yaml.safe_dump(
                dict(r.crd), sort_keys=False, width=100
            )
    out["ci/all-options-values.yaml"] = yaml.safe_dump(all_options(plugins), sort_keys=False)
    out["templates/_helpers.tpl"] = helpers(plugins)
    out["templates/serviceaccount.yaml"] = tpl.SERVICE_ACCOUNT
    out["templates/rbac.yaml"] = tpl.RBAC
    out["templates/deployment.yaml"] = _deployment(hooks.needed(plugins))
    out["templates/metrics.yaml"] = tpl.METRICS
    out["templates/NOTES.txt"] = tpl.NOTES
    if hooks.needed(plugins):
        out.update(hooks.templates(plugins))
    return out


def _deployment(webhook: bool) -> str:
    """The Deployment's template; with a webhook, its port, settings and certificate."""
    text = tpl.DEPLOYMENT
    if webhook:
        for anchor, add in (
            ("              value: {{ .Values.logLevel | quote }}", hooks.ENV),
            ("            - name: health\n              containerPort: 8081", hooks.PORT),
            ("              mountPath: /tmp", hooks.MOUNT),
            ("            sizeLimit: {{ .Values.tmpSizeLimit }}", hooks.VOLUME),
        ):
            assert text.count(anchor) == 1, anchor
            text = text.replace(anchor, anchor + add)
    return text
