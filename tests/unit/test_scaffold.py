"""`python -m minop new`: the package it writes installs, registers and passes its own unit
tests as written; bad names are refused naming them, and no file is ever overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from minop.cli import main

from .scaffolding import environ, run, scaffold_and_install


def test_the_new_package_installs_lists_prints_its_crd_and_passes_its_unit_tests(
    tmp_path: Path,
) -> None:
    pkg, python = scaffold_and_install(tmp_path, "greeting", "Greeting")
    plugins = run(python, "-m", "minop", "plugins", "--plugin", "greeting")
    assert plugins.split("\t")[:3] == [
        "greeting",
        "0.1.0",
        "Greeting.greeting.example.com/v1alpha1",
    ]
    crds = run(python, "-m", "minop", "crds", "--plugin", "greeting")
    assert "name: greetings.greeting.example.com" in crds
    # no KUBECONFIG: the e2e test skips, every unit test runs
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=pkg, env=environ())
    assert "7 passed, 1 skipped" in out, out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["Greeting", "--kind", "Greeting"], "name: 'Greeting'"),
        (["my_plugin", "--kind", "Greeting"], "name: 'my_plugin'"),
        (["greeting", "--kind", "greeting"], "kind: 'greeting'"),
        (["greeting", "--kind", "Greet-ing"], "kind: 'Greet-ing'"),
        (["greeting", "--kind", "Greeting", "--group", "example"], "group: 'example'"),
        (["greeting", "--kind", "Greeting", "--api-version", "1"], "version: '1'"),
    ],
)
def test_an_invalid_name_kind_group_or_version_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    assert main(["new", *args, "--dir", str(tmp_path / "pkg")]) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


def test_an_existing_file_is_never_overwritten_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("mine")
    assert main(["new", "greeting", "--kind", "Greeting", "--dir", str(tmp_path)]) == 2
    assert f"{readme}: exists" in capsys.readouterr().err
    assert readme.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
