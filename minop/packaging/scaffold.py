"""``python -m minop new``: a plugin package for a new kind that installs, lists, prints its
CRD and passes its own tests as generated. The generated hooks publish the spec's message
as a ConfigMap: the smallest reconcile that shows every part (CRD, child, status) and runs
on any cluster, KWOK included (no pod has to run)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from minop import __version__
from minop.packaging import scaffold_templates as t

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")


class ScaffoldError(ValueError):
    """A bad name, kind, group or version, or a file that exists; the message names it."""


def plural(kind: str) -> str:
    """English plural of a kind, lowercased, as Kubernetes resources are named."""
    k = kind.lower()
    if re.search(r"(s|x|z|ch|sh)$", k):
        return k + "es"
    if re.search(r"[^aeiou]y$", k):
        return k[:-1] + "ies"
    return k + "s"


@dataclass(frozen=True)
class Spec:
    name: str  # plugin (entry point) name, e.g. "greeting"
    kind: str  # e.g. "Greeting"
    group: str  # e.g. "greeting.example.com"
    version: str = "v1alpha1"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or len(self.name) > 40:
            raise ScaffoldError(
                f"name: {self.name!r} is not a valid plugin name (lowercase letters, digits "
                "and single hyphens, starting with a letter, at most 40 characters)"
            )
        if not _KIND.match(self.kind) or len(self.kind) > 63:
            raise ScaffoldError(
                f"kind: {self.kind!r} is not a valid kind (CamelCase letters and digits, "
                "starting with an upper-case letter, at most 63 characters)"
            )
        if not _GROUP.match(self.group) or len(self.group) > 253:
            raise ScaffoldError(
                f"group: {self.group!r} is not a valid API group (a DNS name with at least "
                "one dot, e.g. example.com)"
            )
        if not _VERSION.match(self.version):
            raise ScaffoldError(
                f"version: {self.version!r} is not a valid API version (v1, v1beta1, v1alpha1, ...)"
            )

    @property
    def package(self) -> str:
        return "minop_" + self.name.replace("-", "_")

    @property
    def plural(self) -> str:
        return plural(self.kind)

    @property
    def project(self) -> str:
        return "minop-" + self.name


def files(s: Spec) -> dict[str, str]:
    """Relative path -> content of the package."""
    subs = {
        "NAME": s.name,
        "PROJECT": s.project,
        "PACKAGE": s.package,
        "KIND": s.kind,
        "LOWER": s.kind.lower(),
        "PLURAL": s.plural,
        "GROUP": s.group,
        "VERSION": s.version,
        "MINOP_VERSION": __version__,
    }

    def fill(text: str) -> str:
        return re.sub(r"@(\w+)@", lambda m: subs[m.group(1)], text)

    return {
        "pyproject.toml": fill(t.PYPROJECT),
        "README.md": fill(t.README),
        f"{s.package}/__init__.py": fill(t.INIT),
        f"{s.package}/py.typed": "",
        f"{s.package}/crd.py": fill(t.CRD),
        f"{s.package}/hooks.py": fill(t.HOOKS),
        "conftest.py": fill(t.CONFTEST),
        f"tests/test_{s.package}.py": fill(t.UNIT_TEST),
        f"tests/test_{s.package}_e2e.py": fill(t.E2E_TEST),
    }


def write(target: Path, s: Spec) -> list[Path]:
    """Write the package into ``target`` (created if missing). Refuses, writing nothing,
    when any of its files exists already."""
    contents = files(s)
    existing = [target / rel for rel in contents if (target / rel).exists()]
    if existing:
        raise ScaffoldError(
            f"{existing[0]}: exists; minop new never overwrites a file (choose another directory)"
        )
    written = []
    for rel, text in contents.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x") as f:  # "x": a file created meanwhile is not overwritten either
            f.write(text)
        written.append(path)
    return written
