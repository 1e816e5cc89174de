"""warmRestart on the real memcached (this machine's, Debian bookworm's 1.6.18): the
container's command line (a shell turning the kubelet's SIGTERM into memcached's SIGUSR1,
memcached -e on the memory volume) as pid 1 of a pid namespace of its own, as the pod's
user; stopped as the kubelet stops it (SIGTERM, after the drain), then started again on
the same volume: the items are still there. Killed instead (a crash, an OOM kill: no
save), it starts empty."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minop_memcached import children

from minop.kit import localpod
from minop.kit import workloads as wl
from minop.kit.testing import free_port, wait_for

pytestmark = [
    pytest.mark.skipif(not shutil.which("memcached"), reason="needs memcached (make unit)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="pid namespaces and the pod's user need root"),
    pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare (util-linux)"),
]


def command(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode())
        data = b""
        while not data.endswith((b"END\r\n", b"STORED\r\n")):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    return data.decode()


@contextlib.contextmanager
def container(pod: dict, paths: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The pod's memcached container as pid 1 of a new pid namespace (unshare --fork:
    the namespace's first process is the container's command) until the block ends,
    then killed with its namespace (pid 1 killed: every process in it), as the kubelet
    does at last. unshare alone would leave it running: its child changes user
    (setpriv), which clears --kill-child's parent-death signal."""
    c = pod["containers"][0]
    argv = [*localpod.run_as(pod, c), *localpod.container_argv(c, paths)]
    port = c["ports"][0]["containerPort"]
    with localpod.started(
        ["unshare", "--pid", "--fork", "--mount-proc", *argv],
        lambda: socket.create_connection(("127.0.0.1", port), 1).close(),
    ) as proc:
        try:
            yield proc
        finally:
            with contextlib.suppress(OSError, ValueError):  # gone already (stopped, killed)
                os.kill(localpod.pid1(proc), signal.SIGKILL)


@pytest.fixture
def pod_and_volume() -> Iterator[tuple[dict, dict[str, str]]]:
    spec = {"port": free_port(), "memoryLimitMB": 64, "warmRestart": True}
    pod = children.workload(wl.Instance("mc", "ns", spec, {}, {}, "memcached"))
    pod = pod["spec"]["template"]["spec"]
    root = Path(tempfile.mkdtemp(prefix="minop-memcached-warm-"))
    try:
        yield pod, localpod.stage_mounts(pod, pod["containers"][0], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_items_survive_a_restart_after_the_kubelets_stop(pod_and_volume):
    pod, paths = pod_and_volume
    port = pod["containers"][0]["ports"][0]["containerPort"]
    meta = Path(localpod.relocate(children.MEMORY_FILE, paths) + ".meta")
    with container(pod, paths) as first:
        assert command(port, "set k 0 0 4\r\nwarm\r\n") == "STORED\r\n"
        os.kill(localpod.pid1(first), signal.SIGTERM)
        assert first.wait(timeout=10) == 0  # a clean exit, the index saved
    # memcached restores only once the wall clock's second has moved past its stop (else
    # "the clock has done something crazy"); a container restart always takes longer
    saved = meta.read_text().split()  # "Kstop_time <seconds>" among its lines
    stopped = int(saved[saved.index("Kstop_time") + 1])
    wait_for(lambda: int(time.time()) > stopped, 5, "a second after the stop")
    with container(pod, paths):
        assert command(port, "get k\r\n") == "VALUE k 0 4\r\nwarm\r\nEND\r\n"
        assert not meta.exists()  # read once: a later crash cannot restore stale items


def test_killed_it_starts_empty(pod_and_volume):
    """What the stop is for: killed (a crash, an OOM kill), memcached saves nothing and
    starts empty on the same memory file."""
    pod, paths = pod_and_volume
    port = pod["containers"][0]["ports"][0]["containerPort"]
    with container(pod, paths) as first:
        assert command(port, "set k 0 0 4\r\nwarm\r\n") == "STORED\r\n"
        os.kill(localpod.pid1(first), signal.SIGKILL)
        first.wait(timeout=10)
    with container(pod, paths):
        assert command(port, "get k\r\n") == "END\r\n"
