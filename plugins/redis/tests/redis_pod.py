"""One Redis pod as local processes (redis_pods.py has the cluster of them and what
the processes stand in for)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minop_redis import children
from partition import Link
from redis_servers import AS_ROOT

from minop.kit.testing import free_port

if TYPE_CHECKING:
    from redis_pods import Cluster

# The harness's own ACL user with every command (redis_pods.py adds it to the shared
# redis.conf): for checks that read or change the server's configuration.
ADMIN_USER, ADMIN_PASSWORD = "minop-test-admin", b"test-admin-password"


def wait(fn: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Pod:
    def __init__(self, cluster: Cluster, ordinal: int) -> None:
        self.c, self.ordinal, self.name = cluster, ordinal, f"r-{ordinal}"
        # its image's server: the cluster's, or another version's (a canary)
        self.server = cluster.pod_servers.get(ordinal, cluster.server)
        self.port = free_port()
        # with a partition: its own address, the source of the connections it opens
        self.address = f"127.0.1.{ordinal + 1}" if cluster.partition else "127.0.0.1"
        self.links = [
            Link(cluster.partition, cluster.announced(ordinal), self.address, port)
            for port in (self.port, cluster.sentinel_ports[ordinal])
            if cluster.partition
        ]
        self.run, self.data = cluster.root / f"run-{ordinal}", cluster.root / f"data-{ordinal}"
        # scaled up again to this ordinal: a new emptyDir, the retained claim
        # (persistentVolumeClaimRetentionPolicy whenScaled: Retain, the default)
        shutil.rmtree(self.run, ignore_errors=True)
        for d in (self.run, self.data):
            d.mkdir(exist_ok=True)
            if AS_ROOT:
                os.chown(d, cluster.uid, cluster.gid)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sentinel: subprocess.Popen[bytes] | None = None
        # a pod an earlier plugin version made, running the new scripts (an upgrade
        # updates the ConfigMap at once, the pods when the StatefulSet rolls them): no
        # REDIS_POD_MANAGEMENT, and an init container without the data volume
        self.earlier = False

    def env(self, pod_env: list[dict[str, Any]]) -> dict[str, str]:
        """The container's environment with the node-specific values swapped (None:
        kept as the pod spec sets it)."""
        # with a partition also on 127.0.0.1: the probes, hooks and the test's clients
        bind = f"{self.address} 127.0.0.1" if self.c.partition else "127.0.0.1"
        swap: dict[str, str | None] = {
            "POD_NAME": self.name,
            "REDIS_BIND": bind,
            "REDIS_PORT": str(self.port),
            "REDIS_PRIMARY_HOST": self.c.announced(0),
            "REDIS_PRIMARY_PORT": str(self.c.primary.port if self.c.pods else self.port),
            "REDIS_CONFIG_DIR": str(self.c.config),
            "REDIS_AUTH_DIR": str(self.c.auth),
            "REDIS_RUN_DIR": str(self.run),
            "REDIS_DATA_DIR": str(self.data),
            "REDIS_ANNOUNCE_HOST": self.c.announced(self.ordinal),
            "REDIS_SENTINEL_PORT": str(self.c.sentinel_ports[self.ordinal]),
            "REDIS_SENTINEL_DOWN_AFTER_MS": None,
            "REDIS_SENTINEL_FAILOVER_TIMEOUT_MS": None,
            "REDIS_MASTER_NAME": None,
            "REDIS_POD_MANAGEMENT": None,
            "REDIS_TLS_DIR": str(self.c.tls_dir),
            "REDIS_TLS_AUTH_CLIENTS": None,
            "REDIS_EXPORTER_USER": None,
        }
        out = {"PATH": self.server.path}
        for var in pod_env:
            assert var["name"] in swap, f"{var['name']} is new: decide what the test swaps"
            out[var["name"]] = swap[var["name"]] or var["value"]
        if self.earlier:
            out.pop("REDIS_POD_MANAGEMENT", None)
        return out

    def paths(self, cmd: list[str]) -> list[str]:
        swap = {children.CONFIG_DIR: str(self.c.config), children.RUN_DIR: str(self.run)}
        out = []
        for arg in cmd:
            for old, new in swap.items():
                if arg.startswith(old + "/"):
                    arg = new + arg[len(old) :]
            out.append(arg)
        return out

    def start(self, slow_load: bool = False) -> None:
        """Init container, then the server; waits for its startup probe unless
        ``slow_load`` (the test's own change to the generated config: loading data
        takes 1 ms per key, so a load is long enough to watch)."""
        init = self.c.pod_spec["initContainers"][0]
        main = self.c.pod_spec["containers"][0]
        cmd = self.c.as_pod_user(self.paths(init["command"]), init)
        mode = self.data.stat().st_mode & 0o777
        if self.earlier:  # its init container cannot write the data volume (not mounted)
            self.data.chmod(0o500)
        try:
            with (self.c.root / f"{self.name}-init.log").open("ab") as log:
                subprocess.run(
                    cmd, env=self.env(init["env"]), check=True, timeout=30, stdout=log, stderr=log
                )
        finally:
            self.data.chmod(mode)
        if slow_load:
            with (self.run / "redis.conf").open("a") as conf:
                conf.write("key-load-delay 1000\n")
                if self.server.at_least(7, 0):  # answers between 64 kB chunks, not 2 MB
                    conf.write("loading-process-events-interval-bytes 65536\n")
        self.proc = self.container(main)
        if self.c.sentinel_container and self.sentinel is None:
            self.sentinel = self.container(self.c.sentinel_container)
        if not slow_load:
            wait(lambda: self.probe("startupProbe"), f"{self.name} to pass its startup probe", 15)

    def container(self, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
        """Starts a container's command (the pod's log gets its output)."""
        with (self.c.root / f"{self.name}-{spec['name']}.log").open("ab") as log:
            return subprocess.Popen(
                self.c.as_pod_user(self.paths(spec["command"]), spec),
                env=self.env(spec["env"]),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a container: its processes go together
            )

    def crash(self) -> None:
        """kill -9 of redis-server; the kubelet restarts the container (not the pod:
        no init container, the Sentinel keeps running)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = self.container(self.c.pod_spec["containers"][0])

    def kill(self) -> None:
        """kill -9 of both containers, not restarted (the node is gone)."""
        for proc in (self.proc, self.sentinel):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.proc = self.sentinel = None

    def crash_sentinel(self) -> None:
        """kill -9 of the Sentinel; the kubelet restarts that container (its file stays)."""
        assert self.sentinel is not None
        os.killpg(self.sentinel.pid, signal.SIGKILL)
        self.sentinel.wait(5)
        self.sentinel = self.container(self.c.sentinel_container)

    def recreate(self) -> None:
        """The pod deleted (its preStop hook first) and created again: its in-memory run
        directory (redis.conf, sentinel.conf) starts empty, its data volume stays."""
        if self.proc is not None:
            self.delete()
        self.wipe_run()
        self.start()

    def wipe_run(self) -> None:
        """The emptyDir of a new pod."""
        shutil.rmtree(self.run)
        self.run.mkdir()
        if AS_ROOT:
            os.chown(self.run, self.c.uid, self.c.gid)

    def restart_sentinel(self, myid: str) -> None:
        """The Sentinel restarted with another ID in its file: what a pod of an
        operator that wrote random IDs comes back as, when recreated."""
        terminate(self.sentinel)
        conf = self.run / "sentinel.conf"
        text = re.sub(r"(?m)^sentinel myid \S+$", "", conf.read_text())
        conf.write_text(f"{text}\nsentinel myid {myid}\n")
        self.sentinel = self.container(self.c.sentinel_container)

    def sentinel_cli(self, *args: str) -> str:
        """Asks this pod's Sentinel, as the operator does (user sentinel)."""
        password = (self.c.auth / "replication").read_bytes()
        port = self.c.sentinel_ports[self.ordinal]
        return self.cli(*args, password=password, user="sentinel", port=port)

    def admin(self, *args: str) -> str:
        """redis-cli as the harness's administrator (CONFIG, REPLICAOF...: not for clients)."""
        return self.cli(*args, password=ADMIN_PASSWORD, user=ADMIN_USER)

    def probe(self, kind: str = "readinessProbe") -> bool:
        """The pod's exec probe, run as the pod's user with the container's environment."""
        main = self.c.pod_spec["containers"][0]
        cmd = self.c.as_pod_user(main[kind]["exec"]["command"], main)
        r = subprocess.run(cmd, env=self.env(main["env"]), capture_output=True, timeout=10)
        return r.returncode == 0

    def cli(
        self,
        *args: str,
        password: bytes | None = None,
        user: str | None = None,
        port: int | None = None,
        tls: list[str] | None = None,
    ) -> str:
        """redis-cli against this pod; ``tls``: its TLS options (default: the cluster's
        client, over TLS with spec.tls)."""
        env = {"PATH": self.server.path}
        if password is not None:
            env["REDISCLI_AUTH"] = password.decode()
        who = ["--user", user] if user else []
        where = ["-h", "127.0.0.1", "-p", str(port or self.port)]
        secure = self.c.client_tls() if tls is None else tls
        r = subprocess.run(
            [str(self.server.cli), *where, *secure, *who, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        return (r.stdout + r.stderr).strip()

    def delete(self) -> float:
        """As the kubelet stops a deleted pod: the redis container's preStop hook,
        while the Sentinel (no hook) gets SIGTERM at once; then SIGTERM. Returns the
        hook's seconds (its output: the pod's ``-prestop.log``)."""
        main = self.c.pod_spec["containers"][0]
        if "lifecycle" not in main:  # no hook without failover: SIGTERM at once
            self.stop()
            return 0.0
        hook = self.c.as_pod_user(self.paths(main["lifecycle"]["preStop"]["exec"]["command"]))
        terminate(self.sentinel)
        started = time.monotonic()
        with (self.c.root / f"{self.name}-prestop.log").open("ab") as log:
            subprocess.run(
                hook,
                env=self.env(main["env"]),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.c.pod_spec["terminationGracePeriodSeconds"],
            )
        took = time.monotonic() - started
        self.stop()
        return took

    def stop(self) -> None:
        """SIGTERM, as the kubelet sends: Redis flushes the AOF and exits."""
        terminate(self.proc)
        terminate(self.sentinel)
        self.proc = self.sentinel = None


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM until it exits. A replica that is still writing its first AOF after a
    full sync ignores it ("Writing initial AOF, can't exit"); the kubelet would
    SIGKILL after the grace period, the test asks again instead."""
    deadline = time.monotonic() + 30
    while proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def refused(out: str) -> bool:
    """The server refused the password (6.0's redis-cli only warns, then gets NOAUTH)."""
    return "WRONGPASS" in out or "AUTH failed" in out
