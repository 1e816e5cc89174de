"""Storage version migration against the fake API server: what gets written, resumed."""

from __future__ import annotations

import minop
from minop import kinds
from minop.kit.fakeapi import FakeApi
from minop.migration import PROGRESS, StorageMigration

KIND = minop.Kind("test.minop.dev", "v2", "Shelf", "shelves")
CRD = {
    "metadata": {"name": "shelves.test.minop.dev"},
    "spec": {"versions": [{"name": "v1", "storage": False}, {"name": "v2", "storage": True}]},
}
RESOURCE = minop.Resource(KIND, crd=CRD)
NAMES = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "w")]


def cluster(stored=("v1", "v2")):
    api = FakeApi([KIND, kinds.CRD])
    api.put(kinds.CRD, {**CRD, "status": {"storedVersions": list(stored)}})
    for ns, name in NAMES:
        api.put(KIND, {"metadata": {"name": name, "namespace": ns}, "spec": {}})
    return api


def patched(api):
    return [path.rsplit("/", 3)[-3] + "/" + path.rsplit("/", 1)[-1]
            for method, path, result, _ in api.writes
            if method == "PATCH" and "/shelves/" in path and result == "ok"]  # fmt: skip


def crd(api):
    return api.get(kinds.CRD, "", CRD["metadata"]["name"])


def test_every_object_is_rewritten_then_stored_versions_trimmed():
    api = cluster()
    assert StorageMigration(api.kube(), [RESOURCE]).migrate(RESOURCE) is True
    assert patched(api) == ["a/x", "a/y", "b/x", "b/z", "c/w"]
    assert crd(api)["status"]["storedVersions"] == ["v2"]
    assert PROGRESS not in (crd(api)["metadata"].get("annotations") or {})


def test_an_interrupted_migration_resumes_after_its_checkpoint():
    api = cluster()
    api.faults.extend([None, None, None, 500])  # the 4th write (b/x, after a checkpoint) fails
    migration = StorageMigration(api.kube(), [RESOURCE], checkpoint_every=2)
    migration.run()  # logged, not raised: the next start resumes
    assert crd(api)["metadata"]["annotations"][PROGRESS] == "v2 a/y"
    assert crd(api)["status"]["storedVersions"] == ["v1", "v2"]
    api.writes.clear()
    StorageMigration(api.kube(), [RESOURCE], checkpoint_every=2).run()
    assert patched(api) == ["b/x", "b/z", "c/w"]
    assert crd(api)["status"]["storedVersions"] == ["v2"]


def test_nothing_is_written_once_only_the_storage_version_is_stored():
    api = cluster(stored=("v2",))
    StorageMigration(api.kube(), [RESOURCE]).run()
    assert api.writes == []


def test_a_scoped_operator_migrates_its_namespaces_but_keeps_stored_versions():
    api = cluster()
    assert StorageMigration(api.kube(), [RESOURCE], namespaces=("b",)).migrate(RESOURCE) is False
    assert patched(api) == ["b/x", "b/z"]
    assert crd(api)["status"]["storedVersions"] == ["v1", "v2"]
