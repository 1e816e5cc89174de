"""Admission and conversion reviews through a plugin's hooks, as the API server sends them."""

from __future__ import annotations

import base64
import json
import threading

import pytest

import minop
from minop import AdmissionRequest, ConversionError, Validation, Webhook
from minop.plugin.manager import PluginManager
from minop.settings import Settings
from minop.webhook.review import Reviews, json_patch

KIND = minop.Kind("test.minop.dev", "v2", "Shelf", "shelves")
CRD = {
    "spec": {
        "versions": [
            {"name": "v1", "served": True, "storage": False},
            {"name": "v2", "served": True, "storage": True},
        ]
    }
}
release = threading.Event()


class Shelves:
    """v1 has ``spec.size``; v2 calls it ``spec.replicas``."""

    @minop.hookimpl
    def minop_resources(self):
        return [
            minop.Resource(
                KIND,
                crd=CRD,
                validating=Webhook(timeout=1),
                mutating=Webhook(operations=("CREATE",), timeout=1, failure_policy="Ignore"),
            )
        ]

    @minop.hookimpl
    def minop_validate(self, request: AdmissionRequest):
        spec = (request.object or {}).get("spec", {})
        if spec.get("hang"):
            release.wait(5)
        if spec.get("explode"):
            raise RuntimeError("boom")
        v = Validation()
        for key, value in sorted(spec.get("config", {}).items()):
            if not value:
                v.error(f"spec.config.{key}", "must not be empty")
        if spec.get("replicas", 1) > 5:
            v.warn("more than 5 replicas cost a lot")
        return v

    @minop.hookimpl
    def minop_mutate(self, request: AdmissionRequest):
        if request.object["spec"].get("explode"):
            raise RuntimeError("boom")
        body = json.loads(json.dumps(request.object))
        body["metadata"].setdefault("labels", {})["size/class"] = "small"
        body["spec"].pop("legacy", None)
        return body

    @minop.hookimpl
    def minop_convert(self, body, version):
        spec = dict(body["spec"])
        if version == "v1":
            if "replicas" not in spec:
                raise ConversionError("spec.replicas", "missing")
            spec["size"] = spec.pop("replicas")
        else:
            spec["replicas"] = spec.pop("size")
        if spec.get("touch"):
            return {**body, "spec": spec, "metadata": {**body["metadata"], "name": "other"}}
        return {**body, "spec": spec}


@pytest.fixture
def reviews():
    pm = PluginManager()
    pm.register(Shelves(), "shelves")
    pm.startup(Settings())
    release.clear()
    yield Reviews(pm)
    release.set()


def admission(spec, operation="CREATE", version="v2"):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": KIND.group, "version": version, "kind": "Shelf"},
            "operation": operation,
            "namespace": "ns",
            "name": "s",
            "object": {
                "apiVersion": f"{KIND.group}/{version}",
                "kind": "Shelf",
                "metadata": {"name": "s"},
                "spec": spec,
            },
        },
    }


def test_validation_returns_every_error_at_once_each_naming_its_field(reviews):
    out = reviews.admit("validate", admission({"config": {"a": "", "b": "x", "c": ""}}))
    response = out["response"]
    assert response["uid"] == "u-1" and response["allowed"] is False
    assert response["status"]["code"] == 422
    causes = response["status"]["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.config.a", "spec.config.c"]
    assert "spec.config.a: must not be empty" in response["status"]["message"]


def test_warnings_admit_the_object(reviews):
    response = reviews.admit("validate", admission({"replicas": 7}))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["more than 5 replicas cost a lot"]


def test_operations_not_declared_are_admitted_without_a_call(reviews):
    # mutating is declared for CREATE only: an UPDATE comes back untouched
    response = reviews.admit("mutate", admission({"legacy": 1}, "UPDATE"))["response"]
    assert response == {"allowed": True, "uid": "u-1"}


def test_mutation_is_sent_as_a_json_patch_that_yields_the_hook_result(reviews):
    review = admission({"legacy": 1, "replicas": 2})
    response = reviews.admit("mutate", review)["response"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    assert {"op": "remove", "path": "/spec/legacy"} in ops
    assert {"op": "add", "path": "/metadata/labels", "value": {"size/class": "small"}} in ops


def test_json_patch_escapes_path_segments():
    ops = json_patch({"a": {"x/y": 1, "t~": 2}}, {"a": {"x/y": 3}})
    assert ops == [
        {"op": "remove", "path": "/a/t~0"},
        {"op": "replace", "path": "/a/x~1y", "value": 3},
    ]


def test_a_raising_hook_refuses_with_a_message_naming_plugin_and_hook(reviews):
    response = reviews.admit("validate", admission({"explode": True}))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    msg = response["status"]["message"]
    assert "minop_validate of plugin shelves failed" in msg and "boom" in msg


def test_a_raising_hook_under_failure_policy_ignore_admits_with_a_warning(reviews):
    response = reviews.admit("mutate", admission({"explode": True}))["response"]
    assert response["allowed"] is True and "patch" not in response
    (warning,) = response["warnings"]
    assert "minop_mutate of plugin shelves failed" in warning and "admitted unchecked" in warning


def test_a_hook_past_its_share_of_the_webhook_timeout_refuses_in_time(reviews):
    response = reviews.admit("validate", admission({"hang": True}))["response"]
    assert response["allowed"] is False
    assert "still running after 0.8s" in response["status"]["message"]


def test_a_kind_no_plugin_serves_is_refused_naming_it(reviews):
    review = admission({})
    review["request"]["kind"]["kind"] = "Other"
    response = reviews.admit("validate", review)["response"]
    assert response["allowed"] is False and "no Other webhook" in response["status"]["message"]


def conversion(objects, desired):
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "c-1", "desiredAPIVersion": desired, "objects": objects},
    }


def shelf(version, spec):
    return {"apiVersion": f"{KIND.group}/{version}", "kind": "Shelf",
            "metadata": {"name": "s", "uid": "x"}, "spec": spec}  # fmt: skip


def test_conversion_converts_every_object_and_sets_the_api_version(reviews):
    out = reviews.convert(
        conversion([shelf("v1", {"size": 3}), shelf("v2", {"replicas": 4})], f"{KIND.group}/v2")
    )
    response = out["response"]
    assert response["uid"] == "c-1" and response["result"] == {"status": "Success"}
    assert response["convertedObjects"] == [
        shelf("v2", {"replicas": 3}),
        shelf("v2", {"replicas": 4}),
    ]


def test_a_conversion_that_cannot_be_done_fails_naming_the_field(reviews):
    out = reviews.convert(conversion([shelf("v2", {})], f"{KIND.group}/v1"))
    result = out["response"]["result"]
    assert result == {"status": "Failure", "message": "minop: spec.replicas: missing"}
    assert "convertedObjects" not in out["response"]


def test_a_conversion_changing_metadata_fails_naming_the_key(reviews):
    out = reviews.convert(conversion([shelf("v1", {"size": 1, "touch": 1})], f"{KIND.group}/v2"))
    assert (
        out["response"]["result"]["message"] == "minop: metadata.name: conversion of s changed it"
    )


def test_conversion_to_a_version_not_served_names_it(reviews):
    out = reviews.convert(conversion([shelf("v1", {"size": 1})], f"{KIND.group}/v9"))
    assert "test.minop.dev/v9 is not a served version" in out["response"]["result"]["message"]
