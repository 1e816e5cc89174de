"""minop.schema: stored objects checked against the current CRD schema."""

from __future__ import annotations

import pytest

from minop import schema
from minop.kit import crd as kc
from minop.resource import Kind

KIND = Kind("test.minop.dev", "v1", "Thing", "things")
CRD = kc.definition(
    KIND,
    description="A thing.",
    spec=kc.obj(
        "Desired.",
        {
            "size": kc.integer("N.", minimum=1, maximum=10),
            "mode": kc.string("M.", enum=["A", "B"]),
            "name": kc.string("Name.", pattern="^[a-z]+$", max_length=8),
            "size2": kc.quantity("Q."),
            "ref": kc.obj("R.", {"name": kc.string("N.")}, required=["name"]),
            "tags": kc.string_map("Tags."),
            "free": kc.free_form("Anything."),
        },
    ),
    status=kc.obj("Observed.", {"conditions": kc.conditions()}),
)


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ({"size": 50}, "spec.size: must be at most 10, got 50"),
        ({"size": 0}, "spec.size: must be at least 1, got 0"),
        ({"size": "3"}, "spec.size: must be of type integer, got '3'"),
        ({"size": True}, "spec.size: must be of type integer"),
        ({"mode": "C"}, "spec.mode: must be one of A, B, got 'C'"),
        ({"name": "UPPER"}, "spec.name: must match ^[a-z]+$"),
        ({"name": "abcdefghij"}, "spec.name: must be at most 8 characters long"),
        ({"size2": True}, "spec.size2: must be of type integer or string"),
        ({"ref": {}}, "spec.ref.name: required"),
        ({"tags": {"a": 1}}, "spec.tags.a: must be of type string, got 1"),
    ],
)
def test_each_violation_names_the_field_and_the_value(spec, expect):
    msg = schema.check(CRD, {"spec": spec}, ("spec",))
    assert msg.startswith("invalid under the current CRD schema: ")
    assert expect in msg


def test_valid_and_free_form_specs_pass():
    spec = {"size": 3, "mode": "A", "name": "abc", "size2": "1Gi", "ref": {"name": "x"}}
    spec["free"] = {"deep": [{"x": {"y": 1}}]}
    assert schema.check(CRD, {"spec": spec}, ("spec",)) == ""
    assert schema.check(None, {"spec": {"size": 99}}, ("spec",)) == ""


def test_many_violations_are_summarised():
    spec = {"tags": {f"k{i}": i for i in range(8)}}
    msg = schema.check(CRD, {"spec": spec}, ("spec",))
    assert msg.count("must be of type string") == 5 and msg.endswith("(and 3 more)")
