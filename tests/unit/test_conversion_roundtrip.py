"""Property: every valid object of each version round-trips unchanged through every
other version, by ConversionReviews as the API server sends them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minop
from minop.kit import conversion
from minop.kit.strategies import objects
from minop.plugin.manager import PluginManager
from minop.settings import Settings
from minop.webhook.review import Reviews
from tests.e2e import shelves

KIND = minop.Kind("s.test.minop.dev", "v2", "Shelf", "shelves")
PLUGIN = shelves.Shelves(KIND, "https://127.0.0.1:1/convert")


def reviews() -> Reviews:
    pm = PluginManager()
    pm.register(PLUGIN, "shelves")
    pm.startup(Settings())
    return Reviews(pm)


REVIEWS = reviews()


def convert(body: dict, version: str) -> dict:
    review = {
        "request": {"uid": "1", "desiredAPIVersion": f"{KIND.group}/{version}", "objects": [body]}
    }
    response = REVIEWS.convert(review)["response"]
    assert response["result"] == {"status": "Success"}, response["result"]
    (out,) = response["convertedObjects"]
    return out


def any_object() -> st.SearchStrategy[tuple[str, dict]]:
    return st.sampled_from(["v1", "v2"]).flatmap(
        lambda v: objects(PLUGIN.crd, v).map(lambda o: (v, o))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_object(), st.sampled_from(["v1", "v2"]))
def test_every_valid_object_round_trips_unchanged(start, through):
    version, body = start
    assert convert(convert(body, through), version) == body


def test_a_stored_v2_only_field_lives_in_the_annotation_in_v1():
    v2 = {"apiVersion": f"{KIND.group}/v2", "kind": "Shelf",
          "metadata": {"name": "x"}, "spec": {"replicas": 2, "zone": "eu"}}  # fmt: skip
    v1 = convert(v2, "v1")
    assert v1["spec"] == {"size": 2}
    assert v1["metadata"]["annotations"] == {conversion.ANNOTATION: '{"spec.zone":"eu"}'}


def test_a_broken_kept_annotation_fails_the_conversion_naming_it():
    v1 = {"apiVersion": f"{KIND.group}/v1", "kind": "Shelf",
          "metadata": {"name": "x", "annotations": {conversion.ANNOTATION: "[1]"}},
          "spec": {"size": 2}}  # fmt: skip
    review = {"request": {"uid": "1", "desiredAPIVersion": f"{KIND.group}/v2", "objects": [v1]}}
    result = REVIEWS.convert(review)["response"]["result"]
    assert result["status"] == "Failure"
    assert f"metadata.annotations.{conversion.ANNOTATION}: not a JSON object" in result["message"]


@pytest.mark.parametrize("path", ["spec.zone", "spec.deep.er"])
def test_keep_and_restore_are_inverse(path):
    body = {"metadata": {}, "spec": {"zone": "eu", "deep": {"er": 1}}}
    before = {"metadata": {}, "spec": {"zone": "eu", "deep": {"er": 1}}}
    conversion.keep(body, path)
    assert conversion.ANNOTATION in body["metadata"]["annotations"]
    conversion.restore(body)
    assert body == before
