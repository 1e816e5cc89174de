"""A CRD with older versions served beside the stored one."""

import pytest

from minop import Kind
from minop.kit import crd

KIND = Kind("test.minop.dev", "v2", "Shelf", "shelves")
SPEC_V2 = crd.obj("Desired state.", {"replicas": crd.integer("Copies.", minimum=1)})
SPEC_V1 = crd.obj("Desired state.", {"size": crd.integer("Copies.", minimum=1)})
STATUS = crd.obj("Observed state.", {})


def test_older_versions_are_served_deprecated_and_converted_by_the_webhook():
    out = crd.definition(
        KIND,
        description="A shelf.",
        spec=SPEC_V2,
        status=STATUS,
        older=[crd.Version("v1", SPEC_V1, deprecation_warning="use test.minop.dev/v2")],
    )
    v1, v2 = out["spec"]["versions"]
    assert (v1["name"], v1["served"], v1["storage"]) == ("v1", True, False)
    assert v1["deprecated"] is True and v1["deprecationWarning"] == "use test.minop.dev/v2"
    assert (v2["name"], v2["served"], v2["storage"]) == ("v2", True, True)
    assert "deprecated" not in v2
    v1_spec = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert list(v1_spec["properties"]) == ["size"]
    # both versions carry the status the core writes
    for v in (v1, v2):
        assert (
            "lastHandledSpec"
            in v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        )
    webhook = out["spec"]["conversion"]["webhook"]
    assert out["spec"]["conversion"]["strategy"] == "Webhook"
    assert webhook["conversionReviewVersions"] == ["v1"]
    assert webhook["clientConfig"]["service"]["path"] == "/convert"


def test_one_version_needs_no_conversion():
    out = crd.definition(KIND, description="A shelf.", spec=SPEC_V2, status=STATUS)
    assert "conversion" not in out["spec"] and len(out["spec"]["versions"]) == 1


def test_a_version_declared_twice_is_refused_naming_them():
    with pytest.raises(ValueError, match=r"versions must be distinct, got \['v2', 'v2'\]"):
        crd.definition(
            KIND, description="A shelf.", spec=SPEC_V2, status=STATUS,
            older=[crd.Version("v2", SPEC_V1)],
        )  # fmt: skip
