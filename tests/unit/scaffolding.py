"""A package from `python -m minop new`, pip-installed (editable) into a throwaway venv that
sees this venv's packages (minop, pytest, ruff, mypy) but installs into its own
site-packages, so the new plugin never leaks into the venv other tests run the operator in."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from minop.cli import main


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, (
        f"{' '.join(map(str, args))}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    )
    return p.stdout


def scaffold_and_install(tmp: Path, name: str, kind: str) -> tuple[Path, Path]:
    """(package directory, the throwaway venv's python) for a new plugin ``name``."""
    pkg = tmp / f"minop-{name}"
    assert main(["new", name, "--kind", kind, "--dir", str(pkg)]) == 0
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    # the parent venv's packages after the throwaway's own, with the parent's own .pth
    # files (minop's editable install) processed too
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "parent-venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    # --no-deps: minop is the parent's
    run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", pkg)
    return pkg, python


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PYTHONPATH")}
    return {**env, **extra}
