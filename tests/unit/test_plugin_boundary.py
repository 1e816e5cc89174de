"""Plugins (their code and their tests) use minop's public API only: ``minop`` and
``minop.kit``. Anything else is an internal that may change under them."""

from __future__ import annotations

import ast
from pathlib import Path

import minop
from minop.packaging import scaffold

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _public(module: str) -> bool:
    return module == "minop" or module == "minop.kit" or module.startswith("minop.kit.")


def internal_uses(source: str, name: str) -> list[str]:
    """Every import of (or attribute reached through ``minop.``) a minop internal."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "minop" and not _public(a.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "minop":
                continue
            if not _public(node.module):
                found.append(f"{where}: from {node.module} import ...")
            elif node.module == "minop":
                found += [
                    f"{where}: from minop import {a.name}"
                    for a in node.names
                    if a.name not in minop.__all__ and a.name != "kit"
                ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "minop"
            and node.attr not in minop.__all__
            and node.attr != "kit"
        ):
            found.append(f"{where}: minop.{node.attr}")
    return found


def test_plugins_import_only_the_public_api() -> None:
    files = sorted(PLUGINS.glob("*/**/*.py"))
    assert any("tests" in f.parts for f in files) and any("minop_" in str(f) for f in files)
    uses = [u for f in files for u in internal_uses(f.read_text(), str(f.relative_to(PLUGINS)))]
    assert uses == []


def test_the_check_sees_every_way_in() -> None:
    probe = (
        "import minop.kube\n"
        "from minop.apply import prepare\n"
        "from minop import kinds, Context, HASH_KEY\n"
        "import minop\n"
        "minop.apply.prepare\n"
        "from minop.kit.testing import free_port\n"
        "import minop.kit.crd\n"
    )
    uses = [u.split(": ", 1)[1] for u in internal_uses(probe, "probe.py")]
    assert uses == [
        "import minop.kube",
        "from minop.apply import ...",
        "from minop import HASH_KEY",
        "minop.apply",
    ]


def test_a_plugin_made_by_minop_new_starts_on_the_public_api() -> None:
    spec = scaffold.Spec("greeting", "Greeting", "greeting.example.com")
    written = {path: text for path, text in scaffold.files(spec).items() if path.endswith(".py")}
    assert any("hooks" in path for path in written)
    assert [u for path, text in written.items() for u in internal_uses(text, path)] == []
