"""AdmissionReview and ConversionReview bodies in, plugin hook calls, responses out.

Every answer carries a message a user can act on: a hook that raises or runs out
of time refuses the object (or fails the conversion) saying which plugin and hook,
never an empty 500.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from minop.admission import AdmissionRequest, ConversionError, FieldError, Validation
from minop.diff import diff
from minop.invoke import call_with_timeout
from minop.plugin.manager import PluginManager
from minop.resource import IGNORE, Kind, Resource

VALIDATE, MUTATE, CONVERT = "validate", "mutate", "convert"
HOOKS = {VALIDATE: "minop_validate", MUTATE: "minop_mutate", CONVERT: "minop_convert"}
# Of the API server's 30 s wait for a conversion, what the hook gets.
CONVERSION_TIMEOUT = 20.0
# The share of a Webhook.timeout an admission hook gets: the answer must reach the
# API server before it gives up, or the user sees a bare timeout.
HOOK_SHARE = 0.8

Json = dict[str, Any]


class HookFailed(Exception):
    """A hook raised or ran out of time; the message says which and why."""


class Reviews:
    """Routes reviews to the plugin that owns the kind."""

    def __init__(self, plugins: PluginManager) -> None:
        self.plugins = plugins
        self.owners: dict[tuple[str, str], tuple[str, Resource]] = {
            (r.kind.group, r.kind.kind): (name, r) for name, r in plugins.resources()
        }

    def _call(self, plugin: str, mode: str, timeout: float, **kwargs: Any) -> list[Any]:
        hook = HOOKS[mode]
        out = []
        for impl in self.plugins.impls(hook, plugin):
            run = functools.partial(PluginManager.call_impl, impl, **kwargs)
            call = call_with_timeout(f"webhook-{plugin}-{mode}", run, timeout)
            if call.is_alive():
                raise HookFailed(f"{hook} of plugin {plugin} still running after {timeout:g}s")
            if isinstance(call.error, ConversionError):
                raise call.error
            if call.error is not None:
                raise HookFailed(f"{hook} of plugin {plugin} failed: {call.error!r}")
            out.append(call.value)
        return out

    # -- admission -------------------------------------------------------------------

    def admit(self, mode: str, review: Mapping[str, Any]) -> Json:
        """The AdmissionReview answering ``review`` (``mode``: validate or mutate)."""
        req = review.get("request") or {}
        uid = str(req.get("uid", ""))
        try:
            response = self._admit(mode, req)
        except HookFailed as e:
            response = _refused(500, "InternalError", f"minop: {e}")
        response["uid"] = uid
        return {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": response,
        }

    def _admit(self, mode: str, req: Mapping[str, Any]) -> Json:
        gvk = req.get("kind") or {}
        owner = self.owners.get((gvk.get("group", ""), gvk.get("kind", "")))
        if owner is None:  # a configuration pointing at kinds no plugin here serves
            return _refused(404, "NotFound", f"minop serves no {gvk.get('kind')} webhook here")
        plugin, resource = owner
        webhook = resource.validating if mode == VALIDATE else resource.mutating
        if webhook is None or req.get("operation") not in webhook.operations:
            return {"allowed": True}
        request = AdmissionRequest(
            uid=str(req.get("uid", "")),
            operation=str(req.get("operation")),
            kind=Kind(
                resource.kind.group,
                gvk.get("version", resource.kind.version),
                resource.kind.kind,
                resource.kind.plural,
                resource.kind.namespaced,
            ),
            namespace=str(req.get("namespace") or ""),
            name=str(req.get("name") or ""),
            object=req.get("object"),
            old_object=req.get("oldObject"),
            dry_run=bool(req.get("dryRun")),
            user=str((req.get("userInfo") or {}).get("username", "")),
        )
        timeout = webhook.timeout * HOOK_SHARE
        try:
            results = self._call(plugin, mode, timeout, request=request)
        except HookFailed as e:
            if webhook.failure_policy != IGNORE:
                raise
            # what the API server would do had the call failed: admit, unchanged
            return {"allowed": True, "warnings": [f"minop: {e}; admitted unchecked"]}
        return _validated(results) if mode == VALIDATE else _mutated(request, results)

    # -- conversion ------------------------------------------------------------------

    def convert(self, review: Mapping[str, Any]) -> Json:
        """The ConversionReview answering ``review``: every object or none."""
        req = review.get("request") or {}
        desired = str(req.get("desiredAPIVersion", ""))
        response: Json = {"uid": req.get("uid", "")}
        try:
            response["convertedObjects"] = [
                self._convert_one(o, desired) for o in req.get("objects") or []
            ]
            response["result"] = {"status": "Success"}
        except (ConversionError, HookFailed) as e:
            response["result"] = {"status": "Failure", "message": f"minop: {e}"}
        return {
            "apiVersion": review.get("apiVersion", "apiextensions.k8s.io/v1"),
            "kind": "ConversionReview",
            "response": response,
        }

    def _convert_one(self, body: Mapping[str, Any], desired: str) -> Json:
        if body.get("apiVersion") == desired:
            return dict(body)
        group, _, version = desired.rpartition("/")
        owner = self.owners.get((group, str(body.get("kind", ""))))
        if owner is None:
            raise ConversionError("kind", f"minop serves no {body.get('kind')} in {group}")
        plugin, resource = owner
        if version not in resource.versions:
            raise ConversionError("apiVersion", f"{desired} is not a served version")
        name = (body.get("metadata") or {}).get("name", "")
        results = self._call(
            plugin, CONVERT, CONVERSION_TIMEOUT, body=copy.deepcopy(body), version=version
        )
        if not results:
            raise HookFailed(f"plugin {plugin} serves {resource.versions} but has no minop_convert")
        out = dict(results[-1])
        out["apiVersion"] = desired
        _check_metadata(str(name), body.get("metadata") or {}, out.get("metadata") or {})
        return out


def _check_metadata(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """The API server refuses a conversion that touches metadata beyond labels and
    annotations; saying which key changed is the useful part."""
    for key in sorted(set(old) | set(new)):
        if key not in ("labels", "annotations") and old.get(key) != new.get(key):
            raise ConversionError(f"metadata.{key}", f"conversion of {name} changed it")


def _refused(code: int, reason: str, message: str, causes: Sequence[FieldError] = ()) -> Json:
    status: Json = {"status": "Failure", "code": code, "reason": reason, "message": message}
    if causes:
        status["details"] = {
            "causes": [
                {"field": e.field, "message": e.message, "reason": "FieldValueInvalid"}
                for e in causes
            ]
        }
    return {"allowed": False, "status": status}


def _validated(results: list[Validation | None]) -> Json:
    errors = [e for r in results if r for e in r.errors]
    warnings = [w for r in results if r for w in r.warnings]
    out = _refused(422, "Invalid", "; ".join(map(str, errors)), errors) if errors else {}
    out.setdefault("allowed", True)
    if warnings:
        out["warnings"] = warnings
    return out


def _mutated(request: AdmissionRequest, results: list[Mapping[str, Any] | None]) -> Json:
    original = request.object or {}
    changed: Mapping[str, Any] = original
    for r in results:
        if r is not None:
            changed = r
    ops = json_patch(original, changed)
    if not ops:
        return {"allowed": True}
    patch = base64.b64encode(json.dumps(ops).encode()).decode()
    return {"allowed": True, "patchType": "JSONPatch", "patch": patch}


def json_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Json]:
    """RFC 6902 operations turning ``old`` into ``new`` (lists are replaced whole)."""
    kinds: dict[str, Callable[[Any], Json]] = {
        "add": lambda v: {"op": "add", "value": v},
        "change": lambda v: {"op": "replace", "value": v},
        "remove": lambda v: {"op": "remove"},
    }
    out = []
    for c in diff(old, new):
        op = kinds[c.op](c.new)
        op["path"] = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in c.path)
        out.append(op)
    return out
