"""Invalid objects generated from the CRDs' OpenAPI schemas (``python -m minop crds``).

For every field of ``spec``: a value of the wrong type, one past each bound (minimum,
maximum, minLength, maxLength), one outside the enum, one that breaks the pattern, and
each required sibling left out; map values and list items are walked like fields. The
cross-field CEL rules cannot be inverted mechanically, so each has a written case in
``CEL_CASES``, keyed by its message; ``uncovered_rules`` names any rule without one (a new
rule must come with its case). Every case says which field path the API server's
message has to name.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Case:
    crd: str  # plural.group
    id: str
    spec: dict[str, Any]
    field: str  # the field path the rejection must name
    old_spec: dict[str, Any] | None = None  # transition rules: created with this, then updated
    message: str = ""  # text the rejection must contain besides the field (CEL rules)


def crds() -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "minop", "crds"], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


# Strings tried, in order, as a valid value for a pattern / as one that breaks it.
_VALID_STRINGS = ("a", "a1", "1Gi", "/a")
_INVALID_STRINGS = ("Not Valid!", "-x-", "x y", "lots")


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def valid(schema: dict[str, Any]) -> Any:
    """A minimal value the schema accepts (defaults first)."""
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("x-kubernetes-int-or-string"):
        return "1"
    t = schema.get("type")
    if t == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if t == "boolean":
        return True
    if t == "string":
        return next(
            s for s in _VALID_STRINGS if not schema.get("pattern") or _matches(schema["pattern"], s)
        )
    if t == "array":
        return []
    props = schema.get("properties") or {}
    return {k: valid(props[k]) for k in schema.get("required") or []}


def _type_violation(schema: dict[str, Any]) -> Any:
    if schema.get("x-kubernetes-int-or-string"):
        return True  # neither an integer nor a string
    return {
        "integer": "not-a-number",
        "string": 12345,
        "boolean": "yes",
        "object": "not-an-object",
        "array": "not-a-list",
    }[schema["type"]]


def violations(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(what, value) pairs the schema rejects at this node."""
    if "type" in schema or schema.get("x-kubernetes-int-or-string"):
        yield "type", _type_violation(schema)
    if "minimum" in schema:
        yield "minimum", int(schema["minimum"]) - 1
    if "maximum" in schema:
        yield "maximum", int(schema["maximum"]) + 1
    if schema.get("minLength"):
        yield "minLength", ""
    if "maxLength" in schema:
        yield "maxLength", "9" * (int(schema["maxLength"]) + 1)
    if "enum" in schema:
        yield "enum", "NotOneOfTheValues"
    if "pattern" in schema:
        bad = next(s for s in _INVALID_STRINGS if not _matches(schema["pattern"], s))
        yield "pattern", bad


def _place(
    root: dict[str, Any], path: list[tuple[str, dict[str, Any]]], value: Any
) -> dict[str, Any]:
    """``root``-level spec with ``value`` at ``path`` (segments of (key, schema of the
    node)), every ancestor made valid (its required fields filled in)."""
    spec = valid(root)
    node: Any = spec
    for i, (key, schema) in enumerate(path):
        last = i == len(path) - 1
        child = value if last else valid(schema)
        if isinstance(node, list):
            node.append(child)
            node = node[-1]
        else:
            node[key] = child
            node = node[key]
    return dict(spec)


def _render(path: list[tuple[str, dict[str, Any]]]) -> str:
    out = "spec"
    for key, _ in path:
        out += "[0]" if key == "[]" else f".{key}"
    return out


def field_cases(crd: dict[str, Any]) -> Iterator[Case]:
    name = crd["metadata"]["name"]
    root = spec_schema(crd)

    def walk(schema: dict[str, Any], path: list[tuple[str, dict[str, Any]]]) -> Iterator[Case]:
        field = _render(path)
        if path:
            for what, value in violations(schema):
                yield Case(name, f"{field}:{what}", _place(root, path, value), field)
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if path:
                parent = valid(schema)
                del parent[req]
                yield Case(
                    name, f"{field}.{req}:required", _place(root, path, parent), f"{field}.{req}"
                )
        for key, sub in props.items():
            yield from walk(sub, [*path, (key, sub)])
        if isinstance(schema.get("items"), dict):
            yield from walk(schema["items"], [*path, ("[]", schema["items"])])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield from walk(extra, [*path, ("k", extra)])

    yield from walk(root, [])


NGINX_LISTEN = "server { listen 8080; location / { return 200; } }"

# Cross-field and transition rules (x-kubernetes-validations), by CRD and message.
QUANTITY = "must be a quantity such as 1Gi or 500m"
REDIS_OWNED = (
    "the operator sets this directive: bind, port, dir, daemonize, logfile, protected-mode, "
    "include, rename-command, user, aclfile, requirepass, masteruser, masterauth, replicaof, "
    "slaveof, replica-announce-ip, slave-announce-ip, replica-read-only, slave-read-only, "
    "appendonly, appenddirname, appendfsync, save, maxmemory, maxmemory-policy, "
    "min-replicas-to-write, min-replicas-max-lag, min-slaves-to-write, min-slaves-max-lag and "
    "tls-* cannot be set here"
)
PLATFORM_IDS = (
    "assignedByPlatform leaves runAsUser, runAsGroup and fsGroup to the platform: set none of them"
)
CEL_CASES: dict[tuple[str, str], Case] = {
    (c.crd, c.message): c
    for c in [
        *(
            Case(
                crd,
                "cel:assignedByPlatform-with-ids",
                {**base, "podSecurityContext": {"assignedByPlatform": True, "runAsUser": 5}},
                "spec.podSecurityContext.assignedByPlatform",
                message=PLATFORM_IDS,
            )
            for crd, base in (
                ("redises.cache.minop.dev", {}),
                ("memcacheds.cache.minop.dev", {}),
                ("nginxservers.web.minop.dev", {"config": NGINX_LISTEN}),
            )
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:serviceMonitor-without-metrics",
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "spec.metrics.serviceMonitor.enabled",
            message="serviceMonitor.enabled needs metrics.enabled: it scrapes the sidecar",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:prometheusRule-without-metrics",
            {"metrics": {"enabled": False, "prometheusRule": {"enabled": True}}},
            "spec.metrics.prometheusRule.enabled",
            message="prometheusRule.enabled needs metrics.enabled: its alerts read the "
            "sidecar's metrics",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:podManagementPolicy-immutable",
            {"podManagementPolicy": "Parallel"},
            "spec.podManagementPolicy",
            old_spec={"podManagementPolicy": "OrderedReady"},
            message="podManagementPolicy is immutable: a StatefulSet cannot change it",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:storageClassName-immutable",
            {"storage": {"storageClassName": "other"}},
            "spec.storage.storageClassName",
            old_spec={"storage": {"storageClassName": "standard"}},
            message="storage.storageClassName is immutable: a StatefulSet's "
            "volumeClaimTemplates cannot change",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:storage-size-shrinks",
            {"storage": {"size": "1Gi"}},
            "spec.storage.size",
            old_spec={"storage": {"size": "2Gi"}},
            message="storage.size cannot shrink: a PersistentVolumeClaim can only grow",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:storage-size-zero",
            {"storage": {"size": "0"}},
            "spec.storage.size",
            message="storage.size must be a positive quantity such as 1Gi",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:rollingUpdate-with-OnDelete",
            {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
            "spec.updateStrategy.rollingUpdate",
            message="rollingUpdate is only allowed with type RollingUpdate",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:memory-limit-below-items",
            {"memoryLimitMB": 64, "resources": {"limits": {"memory": "64Mi"}}},
            "spec.resources.limits[memory]",  # a CEL fieldPath renders map keys so
            message="resources.limits.memory must be larger than memoryLimitMB (in MiB): "
            "memcached needs memory beyond its items for connections and its hash table",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:warmRestart-below-64",
            {"warmRestart": True, "memoryLimitMB": 32},
            "spec.warmRestart",
            message="warmRestart needs memoryLimitMB of at least 64: memcached preallocates "
            "its memory file's slab pages and refuses less",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:metrics-port-is-port",
            {"port": 11211, "metrics": {"enabled": True, "port": 11211}},
            "spec.metrics.port",
            message="metrics.port must differ from port",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:metrics-with-sasl",
            {"sasl": {"secretName": "auth"}, "metrics": {"enabled": True}},
            "spec.metrics.enabled",
            message="metrics.enabled cannot be combined with sasl: memcached_exporter speaks "
            "the text protocol, which memcached refuses under SASL",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:serviceMonitor-without-metrics",
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "spec.metrics.serviceMonitor.enabled",
            message="serviceMonitor.enabled needs metrics.enabled: it scrapes the sidecar",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:metrics-port-is-port",
            {"port": 8080, "metrics": {"enabled": True, "port": 8080}},
            "spec.metrics.port",
            message="metrics.port must differ from port, statusPort and httpRedirectPort",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:serviceMonitor-without-metrics",
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "spec.metrics.serviceMonitor.enabled",
            message="serviceMonitor.enabled needs metrics.enabled: it scrapes the sidecar",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:config-and-configMapRef",
            {"config": NGINX_LISTEN, "configMapRef": {"name": "cm"}},
            "spec.configMapRef",
            message="config and configMapRef are mutually exclusive",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:config-without-port",
            {"config": NGINX_LISTEN.replace("8080", "9090")},
            "spec.config",
            message="config must contain a listen directive for spec.port (default 8080)",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:tls-without-ssl",
            {"config": NGINX_LISTEN, "tls": {"secretName": "cert"}},
            "spec.config",
            message="with tls, config must listen on spec.port with ssl (the probes use HTTPS)",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:serviceType-and-service-type",
            {"serviceType": "NodePort", "service": {"type": "NodePort"}},
            "spec.serviceType",
            message="serviceType is deprecated: set service.type only",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:content-both-sources",
            {
                "content": {
                    "configMapRef": {"name": "site"},
                    "persistentVolumeClaim": {"claimName": "site"},
                }
            },
            "spec.content",
            message="content needs exactly one of configMapRef and persistentVolumeClaim",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:config-on-statusPort",
            {"config": NGINX_LISTEN.replace("listen 8080;", "listen 8080; listen 8081;")},
            "spec.config",
            message="config must not listen on spec.statusPort (default 8081): nginx's own "
            "status server answers the liveness probe there",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:statusPort-is-port",
            {"statusPort": 8080},
            "spec.statusPort",
            message="statusPort must differ from port",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:worker_connections-in-eventsSnippet",
            {"eventsSnippet": "worker_connections 10;"},
            "spec.eventsSnippet",
            message="set worker_connections with workerConnections, not in eventsSnippet",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:certificates-without-tls",
            {"certificates": [{"secretName": "b", "serverNames": ["b.example"]}]},
            "spec.certificates",
            message="certificates needs tls (the certificate for every other name)",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:certificate-without-names",
            {"tls": {"secretName": "a"}, "certificates": [{"secretName": "b", "serverNames": []}]},
            "spec.certificates[0].serverNames",
            message="serverNames needs at least one name",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:httpRedirectPort-without-tls",
            {"httpRedirectPort": 8082},
            "spec.httpRedirectPort",
            message="httpRedirectPort needs tls: it redirects to HTTPS",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:httpRedirectPort-is-statusPort",
            {"tls": {"secretName": "a"}, "httpRedirectPort": 8081},
            "spec.httpRedirectPort",
            message="httpRedirectPort must differ from port and statusPort",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:httpRedirectPort-and-service-port-80",
            {"tls": {"secretName": "a"}, "httpRedirectPort": 8082, "service": {"port": 80}},
            "spec.service.port",
            message="with httpRedirectPort the Service's port 80 redirects: service.port must "
            "not be 80",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:extraVolumes-twice",
            {"extraVolumes": [{"name": "a", "configMap": {"name": "c"}}] * 2},
            "spec.extraVolumes",
            message="extraVolumes names must be unique",
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:extraVolume-without-source",
            {"extraVolumes": [{"name": "a"}]},
            "spec.extraVolumes[0]",
            message="an extra volume needs exactly one of configMap and secret",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:item-size-over-half-the-memory",
            {"memoryLimitMB": 64, "maxItemSizeMB": 33},
            "spec.maxItemSizeMB",
            message="maxItemSizeMB must be at most half of memoryLimitMB",
        ),
        Case(
            "memcacheds.cache.minop.dev",
            "cel:limits-not-a-quantity",
            {"resources": {"limits": {"cpu": "1e1.5"}}},
            "spec.resources.limits[cpu]",
            message=QUANTITY,
        ),
        Case(
            "nginxservers.web.minop.dev",
            "cel:requests-not-a-quantity",
            {"config": NGINX_LISTEN, "resources": {"requests": {"memory": "1e1.5"}}},
            "spec.resources.requests[memory]",
            message=QUANTITY,
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:maxMemory-not-a-quantity",
            {"maxMemory": "1e1.5"},
            "spec.maxMemory",
            message=QUANTITY,
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:maxMemory-below-1Mi",
            {"maxMemory": "1023Ki"},
            "spec.maxMemory",
            message="must be at least 1Mi",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:minReplicasToWrite-not-below-replicas",
            {"replicas": 2, "minReplicasToWrite": 2},
            "spec.minReplicasToWrite",
            message="minReplicasToWrite must be below replicas: "
            "the primary itself is not a replica",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:sentinel-needs-3-replicas",
            {"replicas": 2, "sentinel": {"enabled": True}},
            "spec.replicas",
            message="sentinel.enabled needs at least 3 replicas: with 2, losing one pod "
            "leaves no majority of Sentinels to fail over",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:sentinel-quorum-at-most-replicas",
            {"replicas": 3, "sentinel": {"enabled": True, "quorum": 4}},
            "spec.sentinel.quorum",
            message="sentinel.quorum must be at most replicas: there is one Sentinel per pod",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:auth-clientCommands-not-acl-rules",
            {"auth": {"clientCommands": "+@all >clear-password"}},
            "spec.auth.clientCommands",
            message="auth.clientCommands must be ACL command rules separated by spaces, such as "
            "'+@all -@admin' or '+get -flushall +client|setname': no passwords, users, key or "
            "channel patterns",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:auth-generatePassword-with-passwordSecretRef",
            {"passwordSecretRef": {"name": "pw"}, "auth": {"generatePassword": True}},
            "spec.auth.generatePassword",
            message="auth.generatePassword applies only without passwordSecretRef",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:config-directive-name",
            {"config": {"Not A Directive": "yes"}},
            "spec.config",
            message="directive names are lower-case words such as notify-keyspace-events",
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:config-operator-directive",
            {"config": {"port": "6380"}},
            "spec.config",
            message=REDIS_OWNED,
        ),
        Case(
            "redises.cache.minop.dev",
            "cel:config-multi-line-value",
            {"config": {"notify-keyspace-events": "Ex\nrename-command FLUSHALL x"}},
            "spec.config",
            message="a value is one line",
        ),
    ]
}


def rules(crd: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from schema.get("x-kubernetes-validations") or []
        for sub in (schema.get("properties") or {}).values():
            yield from walk(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                yield from walk(schema[key])

    yield from walk(spec_schema(crd))


def uncovered_rules(docs: list[dict[str, Any]]) -> list[str]:
    return [
        f"{d['metadata']['name']}: {r['message']}"
        for d in docs
        for r in rules(d)
        if (d["metadata"]["name"], r["message"]) not in CEL_CASES
    ]


def all_cases(docs: list[dict[str, Any]]) -> list[Case]:
    return [c for d in docs for c in field_cases(d)] + list(CEL_CASES.values())
