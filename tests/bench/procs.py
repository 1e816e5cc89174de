"""The three contenders as real processes: how each starts, is probed and measured."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Contender:
    name: str
    agent: str  # the User-Agent prefix its requests carry (how the audit log tells it apart)
    probe: str  # the readiness path on its health port

    def command(
        self, namespace: str, kubeconfig: str, port: int, metrics_port: int = 0
    ) -> list[str]:
        py = sys.executable
        if self.name == "minop":
            return [
                py, "-m", "minop", "run", "--plugin", "memcached", "-n", namespace,
                "--no-leader-elect", "--health-addr", f"127.0.0.1:{port}",
                "--metrics-addr", f"127.0.0.1:{metrics_port or free_port()}",
                "--kubeconfig", kubeconfig,
            ]  # fmt: skip
        if self.name == "kopf":
            return [
                str(Path(py).with_name("kopf")), "run", "--standalone", "-n", namespace,
                f"--liveness=http://127.0.0.1:{port}/healthz", "-m", "tests.bench.kopf_operator",
            ]  # fmt: skip
        return [
            py, "-m", "tests.bench.floor", "--kubeconfig", kubeconfig, "-n", namespace,
            "--health-port", str(port),
        ]  # fmt: skip


CONTENDERS = {
    c.name: c
    for c in (
        Contender("minop", "minop/", "/readyz"),
        Contender("kopf", "kopf/", "/healthz"),
        Contender("floor", "bench-floor/", "/readyz"),
    )
}


class Operator:
    """One running contender: started, probed until ready, measured from /proc, stopped."""

    def __init__(
        self,
        contender: Contender,
        namespace: str,
        kubeconfig: str,
        log: Path,
        profile: Path | None = None,
    ) -> None:
        self.contender, self.namespace, self.kubeconfig, self.log = (
            contender,
            namespace,
            kubeconfig,
            log,
        )
        self.profile = profile  # py-spy's collapsed stacks of the whole process life
        self.proc: subprocess.Popen[bytes] | None = None
        self.spy: subprocess.Popen[bytes] | None = None
        self.port = self.metrics_port = 0
        self.started = 0.0

    def start(self) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),  # `kopf run -m tests.bench...` runs from .venv/bin
        }
        out = self.log.open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.contender.command(self.namespace, self.kubeconfig, self.port, self.metrics_port),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        if self.profile is not None:
            spy = str(Path(sys.executable).with_name("py-spy"))
            target = ["--pid", str(self.proc.pid), "--nonblocking", "--output", str(self.profile)]
            self.spy = subprocess.Popen(
                [spy, "record", "--format", "raw", "--rate", "100", *target],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the process start until its readiness probe answered 200."""
        assert self.proc is not None
        url = f"http://127.0.0.1:{self.port}{self.contender.probe}"
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.contender.name} exited ({self.log})")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self.started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.contender.name} not ready after {timeout:.0f}s ({self.log})")

    def transport(self) -> str:
        """minop's API transport, as its /metrics reports it ("" for the others)."""
        if self.contender.name != "minop":
            return ""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        found = re.search(r'^minop_rest_transport\{[^}]*transport="([^"]+)"[^}]*\} 1', text, re.M)
        return found.group(1) if found else "unknown"

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads) from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def wait_idle(self, quiet: float = 1.0, limit: float = 0.03, timeout: float = 60.0) -> float:
        """Wait until the process used under ``limit`` of a core for ``quiet`` seconds;
        returns how long that took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            c0 = self.cpu_seconds()
            time.sleep(quiet)
            if self.cpu_seconds() - c0 < limit * quiet:
                return time.monotonic() - t0
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.spy is not None:  # it writes its file once the process is gone
            self.spy.wait(60)
