"""Real operator processes for the chaos scenarios: ``python -m minop run`` started,
killed with SIGKILL and restarted, at DEBUG level, every run's log kept for the
secret scan; plus what the scenarios count in the API server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from widgets import install_entry_points

from minop.kit.e2e.api import Api
from minop.kit.e2e.fixtures import AuditLog, http_get
from minop.kit.testing import free_port, wait_for

HERE = Path(__file__).resolve().parent

# Entry points of the chaos test plugins (chaos_plugins.py), by name.
PLUGINS = {
    "chaos-memcached": "chaos_plugins:MEMCACHED",
    "chaos-redis": "chaos_plugins:REDIS",
    "chaos-nocache": "chaos_plugins:NOCACHE",
    "chaos-finalizing": "chaos_plugins:FINALIZING",
    "chaos-double": "chaos_plugins:DOUBLE",
}


def plugin_env(workdir: Path) -> dict[str, str]:
    """Environment of an operator process that can load the chaos test plugins and
    records their create calls in ``workdir/creates.log``."""
    path = install_entry_points(workdir / "ep", PLUGINS)
    return {
        "PYTHONPATH": os.pathsep.join([path, str(HERE)]),
        "MINOP_CHAOS_CREATES": str(workdir / "creates.log"),
    }


class OperatorProcess:
    """One operator, as a user runs it; ``kill()`` is SIGKILL, ``start()`` starts it
    again with the same arguments (a new PID, so the audit log tells runs apart)."""

    def __init__(
        self, workdir: Path, args: Iterable[str], env: dict[str, str] | None = None
    ) -> None:
        self.workdir, self.args, self.env = workdir, list(args), dict(env or {})
        self.runs: list[tuple[int, Path]] = []  # (pid, log) of every start
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_healthy: bool = True) -> OperatorProcess:
        self.health, self.metrics_port = free_port(), free_port()
        log = self.workdir / f"operator-{len(self.runs)}.log"
        cmd = [
            sys.executable,
            "-m",
            "minop",
            "run",
            "--log-format",
            "json",
            "--log-level",
            "DEBUG",
            "--health-addr",
            f"127.0.0.1:{self.health}",
            "--metrics-addr",
            f"127.0.0.1:{self.metrics_port}",
            *self.args,
        ]
        with log.open("w") as f:
            self.proc = subprocess.Popen(
                cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        self.runs.append((self.proc.pid, log))
        if wait_healthy:
            wait_for(lambda: self.get("/healthz")[0] == 200 or self.exited(), 60, "probes up")
            assert not self.exited(), f"operator exited: {self.log_text()[-3000:]}"
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def get(self, path: str) -> tuple[int, str]:
        port = self.metrics_port if path == "/metrics" else self.health
        return http_get(f"http://127.0.0.1:{port}{path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, in-flight writes are cut where they are."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(30)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for _, p in self.runs)

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # the line a SIGKILL cut short
                    out.append(json.loads(line))
        return out


def writes_by(audit: AuditLog, pid: int, ns: str | None = None) -> list[dict[str, Any]]:
    """Completed writes of the operator process ``pid`` (its User-Agent carries it)."""
    tag = f"/{pid})"
    return audit.entries(
        lambda e: (
            e.get("stage") == "ResponseComplete"
            and e.get("userAgent", "").startswith("minop/")
            and e.get("userAgent", "").endswith(tag)
            and (ns is None or (e.get("objectRef") or {}).get("namespace") == ns)
        )
    )


def items(api: Api, resource: str, ns: str, **query: str) -> list[dict[str, Any]]:
    return list(api.request("GET", api.resource_path(resource, ns), **query)["items"])


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}


def ready(obj: dict[str, Any]) -> bool:
    c = condition(obj, "Ready")
    return c.get("status") == "True" and c.get(
        "observedGeneration", obj["metadata"].get("generation")
    ) == obj["metadata"].get("generation")


def not_ready(api: Api, resource: str, ns: str) -> list[str]:
    return [o["metadata"]["name"] for o in items(api, resource, ns) if not ready(o)]


def wait_converged(api: Api, resources: Iterable[str], ns: str, timeout: float) -> None:
    resources = list(resources)

    def pending() -> bool:
        left = {r: not_ready(api, r, ns) for r in resources}
        if any(left.values()):
            raise AssertionError({r: (len(v), v[:5]) for r, v in left.items()})
        return True

    wait_for(pending, timeout, f"every {'/'.join(resources)} in {ns} Ready", interval=1.0)


def children_census(
    api: Api, ns: str, owners: dict[str, str], kinds: Iterable[str]
) -> tuple[Counter[tuple[str, str]], list[str]]:
    """(children per (kind, owner name), orphans): children labelled managed-by minop,
    counted per owning object; an orphan's owner uid matches no object in ``owners``
    (uid -> name)."""
    per: Counter[tuple[str, str]] = Counter()
    orphans = []
    for kind in kinds:
        for o in items(api, kind, ns, labelSelector="app.kubernetes.io/managed-by=minop"):
            refs = [r for r in o["metadata"].get("ownerReferences") or [] if r.get("controller")]
            owner = owners.get(refs[0]["uid"]) if refs else None
            if owner is None:
                orphans.append(f"{kind}/{o['metadata']['name']}")
            else:
                per[(kind, owner)] += 1
    return per, orphans


def creates(workdir: Path) -> list[tuple[str, str, int]]:
    """(uid, verdict, pid) of every hook call the chaos plugins recorded. Creates of the
    counting plugins: ``first``, ``again`` (an earlier call did not get as far as
    recording the spec) or ``double`` (the object's handled spec was already recorded: a
    double create); of the Memcached copies: ``create``, ``deleted`` and ``finalized``."""
    f = workdir / "creates.log"
    if not f.exists():
        return []
    out = []
    for line in f.read_text().splitlines():
        uid, verdict, pid = line.split()
        out.append((uid, verdict, int(pid)))
    return out


def double_creates(workdir: Path) -> list[tuple[str, str, int]]:
    """The recorded creates of objects whose handled spec was already recorded."""
    return [c for c in creates(workdir) if c[1] == "double"]


def until(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    return wait_for(fn, timeout, what, interval)
