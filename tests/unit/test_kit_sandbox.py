"""minop.kit.sandbox: a confined program reads and writes only where it was allowed,
reaches no network, gets an empty environment and a time bound."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from minop.kit import sandbox

pytestmark = pytest.mark.skipif(
    not sandbox.available(), reason="this kernel cannot confine (Landlock, seccomp)"
)


def confined(tmp_path: Path, *argv: str, read=(), write=()) -> subprocess.CompletedProcess[str]:
    return sandbox.run(argv, read=[str(tmp_path), *read], write=write, timeout=30)


def test_files_outside_the_allowed_directories_are_refused(tmp_path: Path, tmp_path_factory):
    secret = tmp_path_factory.mktemp("operator") / "token"
    secret.write_text("TOKEN-Zq7\n")
    inside = tmp_path / "conf"
    inside.write_text("fine\n")
    r = confined(tmp_path, "sh", "-c", f'cat "{inside}" >&2; cat "{secret}"')
    assert r.returncode != 0
    assert "fine" in r.stderr and "Permission denied" in r.stderr
    assert "TOKEN-Zq7" not in r.stderr
    # granted, the same file is read: the refusal above was the confinement's
    r = confined(tmp_path, "sh", "-c", f'cat "{secret}" >&2', read=[str(secret.parent)])
    assert r.returncode == 0 and r.stderr == "TOKEN-Zq7\n"


def test_only_the_writable_directories_take_writes(tmp_path: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    r = confined(tmp_path, "sh", "-c", f'echo x > "{tmp_path}/a"')
    assert r.returncode != 0 and not (tmp_path / "a").exists()  # readable is not writable
    r = confined(tmp_path, "sh", "-c", f'echo x > "{out}/a"', write=[str(out)])
    assert r.returncode == 0 and (out / "a").read_text() == "x\n"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_no_connection_reaches_a_listener(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"
        r = confined(tmp_path, *python(code), read=[sys.prefix, sys.base_prefix])
        assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr
        # the first connection the listener sees is the one made after, unconfined
        with socket.create_connection(("127.0.0.1", port), timeout=5) as after:
            server.settimeout(5)
            conn, peer = server.accept()
            conn.close()
            assert peer == after.getsockname()


def test_no_datagram_leaves_so_no_dns_query(tmp_path: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns:
        dns.bind(("127.0.0.1", 0))
        port = dns.getsockname()[1]
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.sendto(b'query', ('127.0.0.1', {port}))"
        )
        r = confined(tmp_path, *python(code), read=[sys.prefix, sys.base_prefix])
        assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as after:
            after.sendto(b"after", ("127.0.0.1", port))
        dns.settimeout(5)
        assert dns.recv(64) == b"after"  # the confined query never arrived


def test_the_environment_is_empty_and_the_time_bounded(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MINOP_TEST_SECRET", "x")
    r = confined(tmp_path, "sh", "-c", "env >&2")
    names = {line.split("=")[0] for line in r.stderr.splitlines()}
    assert "MINOP_TEST_SECRET" not in names and "PATH" in names
    with pytest.raises(subprocess.TimeoutExpired):
        sandbox.run(["sh", "-c", "sleep 60 & wait"], read=[], write=["/dev/null"], timeout=1)
