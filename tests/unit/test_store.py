"""The store: the watch's view, our own writes only while newer, index lookups."""

from minop.cache import BY_INSTANCE, INDEXERS
from minop.kinds import CONFIGMAP
from minop.objects import Key
from minop.store import Store


def obj(name, rv, **labels):
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv), "labels": labels},
    }


POD = {"app.kubernetes.io/name": "widget", "app.kubernetes.io/instance": "w1"}


def test_our_write_is_seen_until_the_watch_delivers_as_new_and_never_goes_backwards():
    """Defect 3: an older watch event overwrote a newer remembered write."""
    s = Store(CONFIGMAP)
    s.upsert(obj("a", 10))
    s.mutated(obj("a", 12))
    s.upsert(obj("a", 11))  # the watch delivers an older version, late
    assert s.get(Key(CONFIGMAP, "ns", "a"))["metadata"]["resourceVersion"] == "12"
    s.upsert(obj("a", 13))
    assert s.get(Key(CONFIGMAP, "ns", "a"))["metadata"]["resourceVersion"] == "13"
    s.mutated(obj("a", 12))  # a write response older than what the watch holds
    assert s.get(Key(CONFIGMAP, "ns", "a"))["metadata"]["resourceVersion"] == "13"


def test_a_write_to_a_deleted_object_never_resurrects_it():
    s = Store(CONFIGMAP)
    s.upsert(obj("a", 10))
    s.remove(Key(CONFIGMAP, "ns", "a"))
    s.mutated(obj("a", 12), only_if_present=True)
    assert s.get(Key(CONFIGMAP, "ns", "a")) is None
    s.mutated(obj("b", 3))  # a child we just created: seen before its ADDED event
    assert s.get(Key(CONFIGMAP, "ns", "b")) is not None


def test_index_finds_exactly_one_instances_objects_and_follows_label_changes():
    looked_at: list[str] = []  # objects the index function ran on

    def counting(o):
        looked_at.append(o["metadata"]["name"])
        return INDEXERS[BY_INSTANCE](o)

    s = Store(CONFIGMAP, {BY_INSTANCE: counting})
    for i in range(50):
        s.upsert(obj(f"other-{i}", i, **{**POD, "app.kubernetes.io/instance": f"w{i + 2}"}))
    s.upsert(obj("p1", 100, **POD))
    s.mutated(obj("p2", 101, **POD))
    key = "ns/widget/w1"
    looked_at.clear()
    assert [o["metadata"]["name"] for o in s.by_index(BY_INSTANCE, key)] == ["p1", "p2"]
    # a lookup costs the size of its answer: a scan would have looked at all 52
    assert sorted(looked_at) == ["p1", "p2"]
    s.upsert(obj("p1", 102))  # its labels removed
    assert [o["metadata"]["name"] for o in s.by_index(BY_INSTANCE, key)] == ["p2"]
    s.remove(Key(CONFIGMAP, "ns", "p2"))
    looked_at.clear()
    assert s.by_index(BY_INSTANCE, key) == []
    assert looked_at == []
