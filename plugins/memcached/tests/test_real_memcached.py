"""The generated command line on a real memcached (Debian's), as a non-root user."""

import shutil
import socket
import subprocess
import time

import pytest
from minop_memcached import children

pytestmark = pytest.mark.skipif(not shutil.which("memcached"), reason="needs memcached (make unit)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stats(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += s.recv(4096)
    return dict(line.split()[1:3] for line in data.decode().splitlines() if line.startswith("STAT"))


def test_generated_command_serves_stats_with_the_configured_limits():
    port = free_port()
    spec = {"memoryLimitMB": 96, "maxConnections": 321, "port": port}
    pod = children.deployment("mc", spec, "img", {}, {})["spec"]["template"]["spec"]
    container = pod["containers"][0]
    uid = pod["securityContext"]["runAsUser"]
    # The container's command as the pod's numeric user (+ -l: stay on loopback).
    cmd = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        *container["command"],
        "-l",
        "127.0.0.1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        probe_port = container["readinessProbe"]["tcpSocket"]["port"]
        deadline = time.monotonic() + 10
        while True:  # the readiness probe: a TCP connect to the probe port
            try:
                socket.create_connection(("127.0.0.1", probe_port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "memcached never listened"
                time.sleep(0.1)
        s = stats(port)
        assert int(s["limit_maxbytes"]) == 96 * 1024 * 1024
        assert int(s["max_connections"]) == 321
    finally:
        proc.terminate()
        proc.wait(5)
