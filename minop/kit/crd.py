"""Builders for structural CustomResourceDefinitions (OpenAPI v3 + CEL).

Every builder takes the field's description first: a CRD without descriptions
is a CRD users cannot read with ``kubectl explain``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from minop.resource import Kind
from minop.status import LAST_HANDLED_FIELD

Schema = dict[str, Any]


def _base(typ: str, description: str, **kw: Any) -> Schema:
    if not description:
        raise ValueError("every CRD field needs a description")
    out: Schema = {"type": typ, "description": description}
    out.update({_camel(k): v for k, v in kw.items() if v is not None})
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def string(
    description: str,
    *,
    default: str | None = None,
    enum: Sequence[str] | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Schema:
    return _base(
        "string",
        description,
        default=default,
        enum=list(enum) if enum else None,
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
    )


def object_name(description: str) -> Schema:
    """The name of another object in the namespace (a DNS subdomain)."""
    return string(description, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)


def reference(description: str, name_description: str, *, key: str = "name") -> Schema:
    """A reference to another object in the namespace: ``{key: its name}``, required."""
    return obj(description, {key: object_name(name_description)}, required=[key])


def integer(
    description: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Schema:
    return _base("integer", description, default=default, minimum=minimum, maximum=maximum)


def boolean(description: str, *, default: bool | None = None) -> Schema:
    return _base("boolean", description, default=default)


def quantity(description: str, *, default: str | None = None, minimum: str | None = None) -> Schema:
    """A resource quantity such as ``1Gi`` or ``500m`` (kubectl's int-or-string form).

    The pattern (apimachinery's) lets through strings no quantity parser accepts,
    such as ``1e1.5``: a CEL ``isQuantity`` rule refuses them at admission, naming
    the field, so a reconcile never meets one. ``minimum`` (a quantity) is the
    smallest value accepted.
    """
    out: Schema = {
        "description": description,
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
        r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        "maxLength": QUANTITY_MAX_LENGTH,  # bounds the cost of the CEL rules reading it
        "x-kubernetes-validations": [
            Rule("isQuantity(string(self))", "must be a quantity such as 1Gi or 500m").render()
        ],
    }
    if minimum is not None:
        out["x-kubernetes-validations"].append(
            Rule(
                f"!isQuantity(string(self)) || "
                f"quantity(string(self)).compareTo(quantity('{minimum}')) >= 0",
                f"must be at least {minimum}",
            ).render()
        )
    if default is not None:
        out["default"] = default
    return out


QUANTITY_MAX_LENGTH = 32


def array(
    description: str, items: Schema, *, max_items: int | None = None, list_type: str | None = None
) -> Schema:
    out = _base("array", description, max_items=max_items)
    out["items"] = items
    if list_type:
        out["x-kubernetes-list-type"] = list_type
    return out


def string_map(description: str) -> Schema:
    out = _base("object", description)
    out["additionalProperties"] = {"type": "string"}
    return out


def free_form(description: str) -> Schema:
    """An object passed through as is (e.g. ``affinity``), validated by the API server later."""
    out = _base("object", description)
    out["x-kubernetes-preserve-unknown-fields"] = True
    return out


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule; ``field`` (e.g. ``.size``) names the field in errors."""

    rule: str
    message: str
    field: str | None = None
    reason: str | None = None  # FieldValueInvalid (default), FieldValueForbidden, ...

    def render(self) -> Schema:
        out: Schema = {"rule": self.rule, "message": self.message}
        if self.field:
            out["fieldPath"] = self.field
        if self.reason:
            out["reason"] = self.reason
        return out


def obj(
    description: str,
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] = (),
    rules: Sequence[Rule] = (),
    default: Any = None,
) -> Schema:
    out = _base("object", description, default=default)
    out["properties"] = dict(properties)
    if required:
        out["required"] = list(required)
    if rules:
        out["x-kubernetes-validations"] = [r.render() for r in rules]
    return out


def resources(
    description: str = "Compute resources (requests and limits) of the container.",
) -> Schema:
    return obj(
        description,
        {
            "limits": _qmap("Maximum resources, e.g. cpu: 500m, memory: 128Mi."),
            "requests": _qmap("Guaranteed resources, used for scheduling."),
        },
    )


def _qmap(description: str) -> Schema:
    out = _base("object", description)
    out["maxProperties"] = 32  # bounds the cost of the quantity rules on the values
    out["additionalProperties"] = {
        k: v for k, v in quantity("A quantity.").items() if k != "description"
    }
    return out


def conditions() -> Schema:
    """The standard ``status.conditions`` list (metav1.Condition)."""
    cond = obj(
        "A condition of the object.",
        {
            "type": string("Condition type: Ready, Progressing or Degraded."),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": string("CamelCase reason for the last transition."),
            "message": string("Human-readable details."),
            "lastTransitionTime": {
                **string("When the status last changed."),
                "format": "date-time",
            },
            "observedGeneration": integer("The generation this condition reflects."),
        },
        required=["type", "status"],
    )
    out = array("Current conditions of the object.", cond, list_type="map")
    out["x-kubernetes-list-map-keys"] = ["type"]
    return out


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def render(self) -> Schema:
        out: Schema = {"name": self.name, "jsonPath": self.json_path, "type": self.type}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


AGE = Column("Age", ".metadata.creationTimestamp", "date")
READY = Column("Ready", '.status.conditions[?(@.type=="Ready")].status')


@dataclass(frozen=True)
class Scale:
    spec_path: str  # e.g. .spec.size
    # status.replicas, not readyReplicas: an HPA must count starting pods as current
    status_path: str = ".status.replicas"
    selector_path: str | None = ".status.selector"  # declared in the status by ``definition``


@dataclass(frozen=True)
class Version:
    """An older version of a kind, still served beside ``kind.version`` (which is
    stored and the one the operator's hooks see). Objects are converted between them
    by the plugin's ``minop_convert`` through the conversion webhook."""

    name: str
    spec: Schema
    status: Schema | None = None  # None: the same status as the stored version
    columns: Sequence[Column] = ()
    scale: Scale | None = None
    # Shown by kubectl on every use of this version, e.g. what replaces it.
    deprecation_warning: str | None = None
    served: bool = True


# Where the API server sends ConversionReviews; minop.packaging sets the namespace.
CONVERSION_SERVICE = {"name": "minop-webhook", "namespace": "minop-system", "path": "/convert"}


def definition(
    kind: Kind,
    *,
    description: str,
    spec: Schema,
    status: Schema,
    short_names: Sequence[str] = (),
    columns: Sequence[Column] = (),
    scale: Scale | None = None,
    categories: Sequence[str] = ("minop",),
    older: Sequence[Version] = (),
) -> dict[str, Any]:
    """A complete apiextensions.k8s.io/v1 CRD with /status (and /scale).

    The status declares, unless ``status`` does, what the core writes in every one
    (``observedGeneration``, ``conditions``, the spec last handled) and the selector
    ``scale`` points at: an undeclared field would be pruned by the API server.
    ``kind.version`` is the stored version; ``older`` versions are served too, with a
    conversion webhook (``minop_convert``).
    """
    if not kind.group:
        raise ValueError(f"{kind}: a CRD needs an API group")
    names = [v.name for v in older]
    if kind.version in names or len(set(names)) != len(names):
        raise ValueError(f"{kind}: versions must be distinct, got {[*names, kind.version]}")
    versions = [
        _version(
            v.name,
            description,
            v.spec,
            v.status or status,
            v.columns,
            v.scale,
            served=v.served,
            deprecation=v.deprecation_warning,
            storage=False,
        )
        for v in older
    ]
    versions.append(_version(kind.version, description, spec, status, columns, scale))
    crd_spec: dict[str, Any] = {
        "group": kind.group,
        "names": {
            "kind": kind.kind,
            "listKind": f"{kind.kind}List",
            "plural": kind.plural,
            "singular": kind.kind.lower(),
            "shortNames": list(short_names),
            "categories": list(categories),
        },
        "scope": "Namespaced" if kind.namespaced else "Cluster",
        "versions": versions,
    }
    if older:
        crd_spec["conversion"] = {
            "strategy": "Webhook",
            "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {"service": dict(CONVERSION_SERVICE)},
            },
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{kind.group}"},
        "spec": crd_spec,
    }


def _version(
    name: str,
    description: str,
    spec: Schema,
    status: Schema,
    columns: Sequence[Column],
    scale: Scale | None,
    *,
    served: bool = True,
    deprecation: str | None = None,
    storage: bool = True,
) -> dict[str, Any]:
    """One entry of ``spec.versions``."""
    fields = dict(status.get("properties") or {})
    if scale and scale.selector_path == ".status.selector":
        fields.setdefault(
            "selector", string("Label selector of the pods (for the scale subresource).")
        )
    fields.setdefault("observedGeneration", integer("Generation last reconciled."))
    fields.setdefault("conditions", conditions())
    fields[LAST_HANDLED_FIELD] = string(
        "The spec the operator last handled, as compact JSON (written by minop)."
    )
    status = {**status, "properties": fields}
    subresources: Schema = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": scale.spec_path,
            "statusReplicasPath": scale.status_path,
        }
        if scale.selector_path:
            subresources["scale"]["labelSelectorPath"] = scale.selector_path
    schema = obj(
        description,
        {
            "apiVersion": string("API version of this object."),
            "kind": string("Kind of this object."),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    )
    out: dict[str, Any] = {"name": name, "served": served, "storage": storage}
    if deprecation:
        out |= {"deprecated": True, "deprecationWarning": deprecation}
    return out | {
        "schema": {"openAPIV3Schema": schema},
        "subresources": subresources,
        "additionalPrinterColumns": [c.render() for c in (*columns, AGE)],
    }


def undocumented(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Paths of fields without a description (``metadata`` is the API server's)."""
    out = []
    for name, sub in (schema.get("properties") or {}).items():
        here = f"{path}.{name}"
        if name == "metadata" and not path:
            continue
        if not sub.get("description"):
            out.append(here)
        out.extend(undocumented(sub, here))
    items = schema.get("items")
    if isinstance(items, Mapping):
        out.extend(undocumented(items, path + "[]"))
    return out
