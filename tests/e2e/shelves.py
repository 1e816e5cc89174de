"""A test plugin with two versions and both admission webhooks, one kind per test.

v1 says ``spec.size``; v2 (stored, what the hooks see) renamed it ``spec.replicas``
and added ``spec.zone``, which v1 keeps in the conversion annotation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import minop
from minop.kit import conversion, crd

SPEC_V2 = crd.obj(
    "Desired state.",
    {
        "replicas": crd.integer("Copies.", minimum=0),
        "zone": crd.string("Where the copies live (v2 only)."),
        "config": crd.string_map("Directives; none may be empty (the validating hook)."),
    },
)
SPEC_V1 = crd.obj(
    "Desired state.",
    {
        "size": crd.integer("Copies (v2: replicas).", minimum=0),
        "config": crd.string_map("Directives; none may be empty (the validating hook)."),
    },
)
STATUS = crd.obj("Observed state.", {"replicas": crd.integer("Copies seen.")})
DEPRECATION = "v1 is deprecated: use v2, where spec.size is spec.replicas"


def shipped_definition(kind: minop.Kind) -> dict[str, Any]:
    """As a plugin ships it: its conversion webhook is the operator's Service."""
    return crd.definition(
        kind,
        description="A shelf with two versions.",
        spec=SPEC_V2,
        status=STATUS,
        older=[crd.Version("v1", SPEC_V1, deprecation_warning=DEPRECATION)],
    )


def definition(kind: minop.Kind, convert_url: str) -> dict[str, Any]:
    out = shipped_definition(kind)
    out["spec"]["conversion"]["webhook"]["clientConfig"] = {"url": convert_url}
    return out


class Shelves:
    """``convert_url``: where a local control plane reaches the conversion webhook;
    None: the CRD as shipped (the operator's Service, what the generators rewrite)."""

    def __init__(self, kind: minop.Kind, convert_url: str | None) -> None:
        self.kind = kind
        url = convert_url
        self.crd = shipped_definition(kind) if url is None else definition(kind, url)

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [
            minop.Resource(
                self.kind,
                crd=self.crd,
                validating=minop.Webhook(),
                mutating=minop.Webhook(operations=("CREATE",), failure_policy="Ignore"),
            )
        ]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> dict[str, Any]:
        return {"replicas": ctx.spec.get("replicas", 0)}

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> dict[str, Any]:
        return {"replicas": ctx.spec.get("replicas", 0)}

    @minop.hookimpl
    def minop_validate(self, request: minop.AdmissionRequest) -> minop.Validation:
        v = minop.Validation()
        spec = (request.object or {}).get("spec") or {}
        for key, value in sorted((spec.get("config") or {}).items()):
            if not value.strip():
                v.error(f"spec.config.{key}", "must not be empty")
        if spec.get("replicas", 0) > 5:
            v.warn("spec.replicas: more than 5 copies cost a lot")
        return v

    @minop.hookimpl
    def minop_mutate(self, request: minop.AdmissionRequest) -> Mapping[str, Any]:
        body = copy.deepcopy(dict(request.object or {}))
        body["metadata"].setdefault("labels", {}).setdefault("shelf/zone", "default")
        return body

    @minop.hookimpl
    def minop_convert(self, body: Mapping[str, Any], version: str) -> Mapping[str, Any]:
        out = copy.deepcopy(dict(body))
        if version == "v1":
            conversion.keep(out, "spec.zone")
            conversion.move(out, "spec.replicas", "spec.size")
        else:
            conversion.move(out, "spec.size", "spec.replicas")
            conversion.restore(out)
        return out
