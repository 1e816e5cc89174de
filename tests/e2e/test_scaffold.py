"""`python -m minop new` end to end: the generated package, pip-installed, is clean for ruff
and mypy and passes all of its own tests, its e2e test included, against this cluster."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.unit.scaffolding import environ, run, scaffold_and_install


def test_a_new_plugin_passes_its_own_unit_and_e2e_tests(kubeconfig: str, tmp_path: Path) -> None:
    pkg, python = scaffold_and_install(tmp_path, "hello-world", "HelloWorld")
    bin_dir = Path(sys.executable).parent  # ruff and mypy of this venv
    run(bin_dir / "ruff", "check", ".", cwd=pkg)
    run(bin_dir / "ruff", "format", "--check", ".", cwd=pkg)
    run(python, "-m", "mypy", "minop_hello_world", cwd=pkg)
    kubectl = os.environ.get("MINOP_KUBECTL") or shutil.which("kubectl") or "kubectl"
    env = environ(KUBECONFIG=kubeconfig, MINOP_KUBECTL=kubectl)
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=pkg, env=env)
    assert "8 passed" in out, out  # the 7 unit tests and the e2e test
