"""``minop.kit.testing.FakeContext``: a hook sees what it would see in the operator."""

from __future__ import annotations

import base64

import pytest

import minop
from minop import kinds
from minop.kit.testing import FakeContext

KIND = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")
RESOURCE = minop.Resource(
    kind=KIND,
    children=(kinds.CONFIGMAP, kinds.SECRET),
    related=(minop.Related(kinds.SECRET, lambda body: [body["spec"]["secret"]]),),
)
PASSWORD = {"password": base64.b64encode(b"hunter2").decode()}


def secret(name: str, data: dict[str, str]) -> minop.Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


def configmap(value: str) -> minop.Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "w"},
        "data": {"v": value},
    }


def test_a_child_is_applied_with_owner_and_labels_and_not_sent_again_unchanged() -> None:
    ctx = FakeContext(RESOURCE, {"secret": "pw"}, name="w")
    ctx.apply(configmap("1"))
    live = ctx.get(kinds.CONFIGMAP, "w")
    assert live is not None and live["metadata"]["namespace"] == "ns"
    assert live["metadata"]["ownerReferences"][0]["name"] == "w"
    assert live["metadata"]["labels"] == ctx.labels
    ctx.apply(configmap("1"))
    assert len(ctx.applied) == 1  # the cache already holds it: nothing sent
    ctx.apply(configmap("2"))
    assert [c["data"] for c in ctx.applied] == [{"v": "1"}, {"v": "2"}]
    assert ctx.get(kinds.CONFIGMAP, "w")["data"] == {"v": "2"}  # type: ignore[index]


def test_secrets_are_cached_as_a_hash_and_read_from_the_api_server() -> None:
    ctx = FakeContext(RESOURCE, {"secret": "pw"}, objects=[secret("pw", PASSWORD)])
    assert ctx.related_hash(kinds.SECRET, "pw") == minop.data_hash({"data": PASSWORD})
    assert "data" not in (ctx.child(kinds.SECRET, "pw") or {"data": 1})
    assert ctx.reads == []
    assert ctx.api.get(kinds.SECRET, "pw", ctx.namespace)["data"] == PASSWORD
    assert ctx.reads == ["pw"]
    ctx.put(secret("pw", {"password": "b3RoZXI="}))  # the user changes it
    assert ctx.related_hash(kinds.SECRET, "pw") == minop.data_hash(
        {"data": {"password": "b3RoZXI="}}
    )
    assert ctx.related_hash(kinds.SECRET, "missing") is None


def test_events_faults_and_kinds_the_resource_does_not_involve() -> None:
    ctx = FakeContext(RESOURCE, {"secret": "pw"})
    ctx.event(minop.WARNING, "Broken", "it broke")
    assert ctx.events == [("Warning", "Broken", "it broke")]
    ctx.server.faults.append(409)
    with pytest.raises(minop.Conflict):
        ctx.apply(configmap("1"))
    assert ctx.get(kinds.CONFIGMAP, "w") is None
    with pytest.raises(ValueError, match=r"Pod .*Secret, Widget"):
        ctx.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
