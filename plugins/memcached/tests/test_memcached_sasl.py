"""SASL on the real memcached: the pod's command line (-S) refuses every client that has
not authenticated, and the pod's init container writes the password file from the
Secret as the pod's user.

Debian's memcached is built with SASL but without --enable-sasl-pwdb (the official
image's password file, MEMCACHED_SASL_PWDB): here the same user and password come from
a sasldb made with Debian's saslpasswd2 instead; the command line and the refusal are
the pod's."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minop_memcached import children

from minop.kit import localpod
from minop.kit import workloads as wl
from minop.kit.testing import free_port

pytestmark = [
    pytest.mark.skipif(not shutil.which("memcached"), reason="needs memcached (make unit)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running as the pod's user needs root"),
]
SPEC = {"sasl": {"secretName": "creds"}}
GET, SET, SASL_AUTH = 0x00, 0x01, 0x21
AUTH_ERROR = 0x20


def pod_of(spec: dict) -> dict:
    inst = wl.Instance("mc", "ns", spec, {}, {}, "memcached")
    return children.workload(inst)["spec"]["template"]["spec"]


def call(s: socket.socket, op: int, key: bytes = b"", value: bytes = b"", extras: bytes = b""):
    """One binary-protocol request: (status, body), or None when memcached hung up."""
    body = extras + key + value
    s.sendall(struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, len(body), 0, 0))
    s.sendall(body)
    header = s.recv(24)
    if len(header) < 24:
        return None
    status, length = struct.unpack(">6xHI12x", header)
    data = b""
    while len(data) < length:
        data += s.recv(length - len(data))
    return status, data


@pytest.fixture
def sasl_memcached() -> Iterator[int]:
    """The pod's memcached (user alice, password wonder) on a free port."""
    if not shutil.which("saslpasswd2"):
        pytest.skip("needs saslpasswd2 (Debian's sasl2-bin)")
    pod = pod_of(SPEC)
    container = pod["containers"][0]
    conf = Path(tempfile.mkdtemp(prefix="minop-mc-sasl-"))
    proc = None
    try:
        conf.chmod(0o755)
        (conf / "memcached.conf").write_text(f"mech_list: plain\nsasldb_path: {conf}/sasldb2\n")
        subprocess.run(
            ["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", f"{conf}/sasldb2", "alice"],
            input="wonder",
            text=True,
            check=True,
        )
        os.chown(conf / "sasldb2", 11211, 11211)
        port = free_port()
        argv = [*localpod.container_argv(container)[:-1], "-S"]
        argv[argv.index("-p") + 1] = str(port)
        assert argv[1:] == [*children.command({**SPEC, "port": port})[1:]]
        proc = subprocess.Popen(
            [*localpod.run_as(pod, container), shutil.which("memcached") or "memcached", *argv[1:]],
            env={**os.environ, "SASL_CONF_PATH": str(conf)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"memcached exited {proc.returncode}"
                assert time.monotonic() < deadline, "memcached never listened"
                time.sleep(0.05)
        yield port
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(conf, ignore_errors=True)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_client_without_credentials_is_refused(sasl_memcached):
    port = sasl_memcached
    with connect(port) as anonymous:
        assert call(anonymous, GET, b"k") == (AUTH_ERROR, b"Auth failure.")
    with connect(port) as wrong:
        assert call(wrong, SASL_AUTH, b"PLAIN", b"\0alice\0nope") == (AUTH_ERROR, b"Auth failure.")
    # the refusals were the authentication's: the same requests pass once authenticated
    with connect(port) as alice:
        assert call(alice, SASL_AUTH, b"PLAIN", b"\0alice\0wonder") == (0, b"Authenticated")
        assert call(alice, SET, b"k", b"v", struct.pack(">II", 0, 0)) == (0, b"")
        assert call(alice, GET, b"k") == (0, b"\0\0\0\0v")


def test_the_init_container_writes_the_password_file_for_the_pods_user_only():
    pod = pod_of(SPEC)
    [init] = pod["initContainers"]
    root = Path(tempfile.mkdtemp(prefix="minop-mc-init-"))
    try:
        secret = {"username": "alice", "password": "won der:'$x"}
        paths = localpod.stage_mounts(pod, init, root, {"sasl-secret": secret})
        subprocess.run(
            [*localpod.run_as(pod, init), *localpod.container_argv(init, paths)],
            check=True,
            timeout=10,
        )
        pwdb = Path(localpod.relocate(children.PWDB, paths))
        assert pwdb.read_text() == "alice:won der:'$x\n"
        st = pwdb.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (children.UID, 0o600)
        conf = Path(localpod.relocate(f"{children.SASL_DIR}/memcached.conf", paths))
        assert conf.read_text() == "mech_list: plain\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)
