"""Referenced Secrets are cached as a content hash: nothing of their data stays in memory."""

import json

from minop.objects import HASH_KEY, hash_only

APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def kubectl_applied_secret(password: str) -> dict:
    """A Secret as ``kubectl apply -f`` leaves it: the manifest, data included, is
    copied into an annotation."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "auth", "namespace": "ns"},
        "stringData": {"password": password},
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "auth",
            "namespace": "ns",
            "resourceVersion": "5",
            "annotations": {APPLIED: json.dumps(manifest), "team": "a"},
        },
        "data": {"password": "aHVudGVyMg=="},
    }


def test_a_kubectl_applied_secret_keeps_no_data_only_its_hash():
    cached = hash_only(kubectl_applied_secret("hunter2"))
    text = json.dumps(cached)
    assert "hunter2" not in text and "aHVudGVyMg==" not in text
    assert cached["metadata"]["annotations"] == {"team": "a"}
    other = hash_only(kubectl_applied_secret("other") | {"data": {"password": "b3RoZXI="}})
    assert cached[HASH_KEY] != other[HASH_KEY]
