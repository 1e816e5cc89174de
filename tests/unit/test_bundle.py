"""`python -m minop bundle`: what it writes for OLM and operator-sdk (the files a user ships)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from minop.cli import main

SCORECARD_IMAGE = "quay.io/operator-framework/scorecard-test:v1.42.2"


def bundle(tmp_path: Path, *extra: str, scorecard_image: str = SCORECARD_IMAGE) -> int:
    return main(
        ["bundle", "--output", str(tmp_path / "bundle"), "--manifests", str(tmp_path / "config"),
         "--image", "quay.io/minop/minop:v0.1.1", "--created-at", "2026-11-25T07:03:13+00:00",
         "--scorecard-image", scorecard_image, *extra]
    )  # fmt: skip


def load(tmp_path: Path, rel: str) -> dict:
    return yaml.safe_load((tmp_path / "bundle" / rel).read_text())


def test_an_upgrade_bundle_replaces_the_previous_csv_and_skips_older_ones(tmp_path: Path) -> None:
    assert bundle(tmp_path, "--version", "0.1.1", "--replaces", "minop.v0.1.0") == 0
    csv = load(tmp_path, "manifests/minop.clusterserviceversion.yaml")
    assert csv["metadata"]["name"] == "minop.v0.1.1"
    assert csv["spec"]["version"] == "0.1.1"
    assert csv["spec"]["replaces"] == "minop.v0.1.0"
    assert csv["spec"]["skipRange"] == "<0.1.1"
    assert csv["metadata"]["annotations"]["capabilities"] == "Seamless Upgrades"
    deployment = csv["spec"]["install"]["spec"]["deployments"][0]["spec"]
    assert deployment["template"]["spec"]["containers"][0]["image"] == "quay.io/minop/minop:v0.1.1"


def test_the_scorecard_config_runs_the_basic_and_olm_suites(tmp_path: Path) -> None:
    assert bundle(tmp_path, "--version", "0.1.0") == 0
    annotations = load(tmp_path, "metadata/annotations.yaml")["annotations"]
    assert annotations["operators.operatorframework.io.test.config.v1"] == "tests/scorecard/"
    assert annotations["operators.operatorframework.io.test.mediatype.v1"] == "scorecard+v1"
    config = load(tmp_path, "tests/scorecard/config.yaml")
    assert config["kind"] == "Configuration"
    tests = [t for stage in config["stages"] for t in stage["tests"]]
    assert {t["labels"]["suite"] for t in tests} == {"basic", "olm"}
    assert {t["entrypoint"][1] for t in tests} >= {"basic-check-spec", "olm-bundle-validation"}
    assert {t["image"] for t in tests} == {SCORECARD_IMAGE}
    dockerfile = (tmp_path / "bundle" / "bundle.Dockerfile").read_text()
    assert "COPY tests/scorecard /tests/scorecard/" in dockerfile
    assert "LABEL operators.operatorframework.io.test.config.v1=tests/scorecard/" in dockerfile


def test_an_untagged_scorecard_image_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bundle(tmp_path, scorecard_image="localhost:5000/scorecard-test") == 2
    assert "scorecard image" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()
