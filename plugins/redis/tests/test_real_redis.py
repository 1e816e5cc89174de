"""Generated redis.conf, init script and probes on Debian's redis-server, as uid 999.

Three "pods" run on free 127.0.0.1 ports. What the pod's mounts provide is laid
out in a scratch directory (paths swapped accordingly), the stable DNS name of
pod 0 is replaced by 127.0.0.1:<its port>, and `bind` by 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from minop_redis import auth, children

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
UID = children.UID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_pod_user(cmd: list[str], **kw) -> list[str]:
    return [
        "setpriv",
        f"--reuid={UID}",
        f"--regid={UID}",
        "--clear-groups",
        "--inh-caps=-all",
        *cmd,
    ]


class Pod:
    def __init__(self, root: Path, name: str, ordinal: int, primary_port: int | None):
        self.root, self.ordinal, self.name = root, ordinal, f"{name}-{ordinal}"
        self.port = primary_port if ordinal == 0 and primary_port else free_port()
        self.etc, self.data = root / f"etc-{ordinal}", root / f"data-{ordinal}"
        for d in (self.etc, self.data):
            d.mkdir(exist_ok=True)
            shutil.chown(d, UID, UID)
        self.proc: subprocess.Popen | None = None

    def paths(self, text: str) -> str:
        for old, new in (
            (children.CONFIG_DIR + "/", f"{self.root}/config/"),
            (children.ETC_DIR + "/", f"{self.etc}/"),
            (children.AUTH_DIR + "/", f"{self.root}/auth/"),
            (f'"{children.AUTH_DIR}', f'"{self.root}/auth'),
            (f'"{children.CONFIG_DIR}', f'"{self.root}/config'),
            (f'"{children.ETC_DIR}', f'"{self.etc}'),
        ):
            text = text.replace(old, new)
        return text

    def start(self, primary_port: int) -> None:
        env = {
            **os.environ,
            "POD_NAME": self.name,
            "REDIS_PRIMARY": "127.0.0.1",
            "REDIS_PRIMARY_PORT": str(primary_port),
        }
        script = self.etc / "init.sh"  # the init container's script, paths swapped
        script.write_text(self.paths((self.root / "config" / "init.sh").read_text()))
        subprocess.run(as_pod_user(["sh", str(script)]), env=env, check=True)
        conf = self.etc / "redis.conf"
        text = conf.read_text().replace(f"port {children.PORT}", f"port {self.port}")
        text = text.replace("bind * -::*", "bind 127.0.0.1").replace(
            f"dir {children.DATA_DIR}", f"dir {self.data}"
        )
        conf.write_text(text)
        self.proc = subprocess.Popen(
            as_pod_user(["redis-server", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.probe():
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, f"{self.name} never passed its probe"
            time.sleep(0.1)

    def probe(self) -> bool:
        """The pod's readiness probe, with the port swapped."""
        cmd = [a.replace(f"-p {children.PORT}", f"-p {self.port}") for a in children.PROBE]
        cmd = [self.paths(a) for a in cmd]
        return subprocess.run(as_pod_user(cmd), capture_output=True).returncode == 0

    def cli(self, *args: str, password: str | None) -> str:
        env = {**os.environ}
        if password:
            env["REDISCLI_AUTH"] = password
        r = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
        return (r.stdout + r.stderr).strip()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def write_config(root: Path, spec: dict, state: auth.Auth | None) -> None:
    (root / "config").mkdir(exist_ok=True)
    for key, value in children.configmap("r", spec)["data"].items():
        (root / "config" / key).write_text(value)
    authdir = root / "auth"
    shutil.rmtree(authdir, ignore_errors=True)
    if state is not None:
        authdir.mkdir()
        secret = children.auth_secret("r", state.masterauth, state.accept)
        for key, value in secret["data"].items():
            (authdir / key).write_bytes(base64.b64decode(value))
            shutil.chown(authdir / key, UID, UID)


def wait(fn, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="minop-redis-test-"))
    root.chmod(0o755)
    pods: list[Pod] = []
    yield root, pods
    for p in pods:
        p.stop()
    shutil.rmtree(root, ignore_errors=True)


def replicating(pods: list[Pod], password: str | None) -> bool:
    return all(
        "master_link_status:up" in p.cli("info", "replication", password=password) for p in pods[1:]
    )


def test_primary_and_replicas_replicate_with_a_password_and_survive_rotation(cluster):
    root, pods = cluster
    spec = {"persistence": {"appendOnly": True}}
    state = auth.step(None, "first-pw", rolled=False)
    write_config(root, spec, state)
    primary = Pod(root, "r", 0, None)
    pods.extend([primary, Pod(root, "r", 1, None), Pod(root, "r", 2, None)])
    for p in pods:
        p.start(primary.port)
    wait(lambda: replicating(pods, "first-pw"), "replication up")

    assert "NOAUTH" in primary.cli("get", "k", password=None)  # the password is required
    assert primary.cli("set", "k", "v1", password="first-pw") == "OK"
    for replica in pods[1:]:
        wait(lambda r=replica: r.cli("get", "k", password="first-pw") == "v1", "replicated")

    def roll(new_state: auth.Auth) -> None:
        """As a RollingUpdate does: highest ordinal first, each back before the next."""
        write_config(root, spec, new_state)
        for p in reversed(pods):
            p.stop()
            p.start(primary.port)
            # replication holds after every single pod restart
            wait(lambda: replicating(pods, new_state.masterauth), f"replication after {p.name}")

    phase1 = auth.step(state, "second-pw", rolled=False)
    assert phase1.accept == ["first-pw", "second-pw"] and phase1.masterauth == "first-pw"
    roll(phase1)
    for pw in ("first-pw", "second-pw"):  # the window where both work
        assert primary.cli("ping", password=pw) == "PONG"
    phase2 = auth.step(phase1, "second-pw", rolled=True)
    assert phase2 == auth.Auth("second-pw", ["second-pw"])
    roll(phase2)
    assert "WRONGPASS" in primary.cli("ping", password="first-pw")
    assert primary.cli("set", "k", "v2", password="second-pw") == "OK"
    for replica in pods[1:]:
        wait(lambda r=replica: r.cli("get", "k", password="second-pw") == "v2", "after rotation")
    aof = root / "data-0" / "appendonlydir"
    assert aof.is_dir() and any(aof.iterdir())


def test_rotation_waits_for_every_pod_before_dropping_the_old_password():
    s = auth.step(None, "a", rolled=False)
    p1 = auth.step(s, "b", rolled=False)
    assert auth.step(p1, "b", rolled=False) == p1  # partition held / OnDelete: stay
    assert auth.step(p1, "c", rolled=True) == auth.Auth("a", ["a", "c"])  # changed again
    assert auth.step(p1, "b", rolled=True) == auth.Auth("b", ["b"])
