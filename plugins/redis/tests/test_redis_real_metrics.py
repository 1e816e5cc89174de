"""spec.metrics with the real programs: the sidecar's redis_exporter (hack/exporters.sh,
built from the module proxy), as the pod spec runs it, against the pods' servers
started by the generated init.sh (redis_pods.py), on every supported server."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from minop_redis import auth, metrics, tls
from redis_pod import Pod, wait
from redis_pods import FIRST, Cluster

from minop.kit import localpod
from minop.kit.testing import free_port, tls_secret_data


@pytest.fixture(scope="session")
def redis_exporter() -> Iterator[str]:
    with localpod.exporter_program("redis_exporter") as program:
        yield str(program)


@contextmanager
def exporter(c: Cluster, pod: Pod, program: str, **override: str) -> Iterator[tuple[int, str]]:
    """The pod's metrics container as the pod's user: its environment with the
    node-specific values swapped as for the other containers (the pod's port, its run
    volume) and a metrics port of its own per "pod"; yields that port and its pid."""
    sidecar = next(x for x in c.pod_spec["containers"] if x["name"] == "metrics")
    swap = {
        "POD_NAME": pod.name,
        "REDIS_PORT": str(pod.port),
        "REDIS_PASSWORD_FILE": str(pod.run / metrics.PASSWORD_FILE),
        **override,
    }
    env: dict[str, str] = {}
    for var in sidecar["env"]:  # in order: the kubelet expands $(VAR) of those before
        value = swap.get(var["name"], var.get("value", ""))
        for k, v in env.items():
            value = value.replace(f"$({k})", v)
        env[var["name"]] = value
    port = free_port()
    args = [
        a if not a.startswith("--web.listen-address=") else f"--web.listen-address=127.0.0.1:{port}"
        for a in localpod.container_argv(sidecar, {tls.DIR: str(c.tls_dir)})
    ]
    argv = c.as_pod_user(["env", "-i", *(f"{k}={v}" for k, v in env.items()), program, *args])
    with localpod.started(argv, lambda: socket.create_connection(("127.0.0.1", port)).close()) as p:
        yield port, str(p.pid)


def scrape(port: int) -> dict[str, float]:
    return localpod.scrape(f"http://127.0.0.1:{port}/metrics")


def one(series: dict[str, float], name: str) -> float:
    """The value of the one series of that metric, whatever its labels."""
    [value] = [v for k, v in series.items() if k == name or k.startswith(name + "{")]
    return value


def role(series: dict[str, float]) -> str:
    info = next(k for k in series if k.startswith("redis_instance_info{"))
    return info.split('role="', 1)[1].split('"', 1)[0]


def alert_rules(c: Cluster) -> list[dict]:
    return [r for g in metrics.alerts(c.inst) for r in g["rules"]]


def secrets_absent(password: bytes, pid: str, text: str) -> None:
    """Neither the scrape nor the exporter's command line or environment holds it."""
    assert password.decode() not in text
    for f in ("cmdline", "environ"):
        assert password not in Path(f"/proc/{pid}/{f}").read_bytes(), f


@pytest.mark.parametrize(
    ("sentinel", "secure"),
    [(False, False), (True, False), (False, True)],
    ids=["plain", "sentinel", "tls"],
)
def test_the_sidecar_exports_each_pods_role_and_replication_as_a_read_only_user(
    make_cluster, redis_exporter, sentinel, secure
):
    spec: dict = {"replicas": 3 if sentinel else 2, "metrics": {"enabled": True}}
    spec["passwordSecretRef"] = {"name": "pw"}
    if sentinel:
        spec["sentinel"] = {"enabled": True}
    if secure:
        spec["tls"] = {"secretName": "r-tls"}
    c = make_cluster(spec)
    if sentinel and not c.server.at_least(6, 2):
        pytest.skip("failover needs Redis 6.2 or later")
    if secure:
        if not c.server.tls:
            pytest.skip(f"this {c.server.version} build has no TLS")
        # the pods' stable names, as the README's Certificate has them: the exporter
        # checks the name (the others only the chain), and dials 127.0.0.1
        c.write_tls(tls_secret_data("r", ("127.0.0.1", "*.r-headless.ns.svc")))
    state = auth.step(None, FIRST, "v1", rolled=False)
    c.write_secret(state)
    c.start(*range(spec["replicas"]))
    wait(lambda: c.replicating(FIRST), "the replicas linked to the primary")
    assert c.primary.cli("set", "k", "v", password=FIRST) == "OK"
    with ExitStack() as stack:
        ports = [stack.enter_context(exporter(c, p, redis_exporter)) for p in c.pods]
        got = [scrape(port) for port, _ in ports]
        for (_, pid), series in zip(ports, got, strict=True):
            text = "\n".join(series)
            secrets_absent(state.replication, pid, text)
            assert FIRST.decode() not in text
        primary, replicas = got[0], got[1:]
    for p in c.pods:  # the pod's user's alone, as redis.conf beside it
        assert (p.run / metrics.PASSWORD_FILE).stat().st_mode & 0o077 == 0
    assert primary["redis_up"] == 1 and role(primary) == "master"
    assert primary["redis_connected_slaves"] == len(c.pods) - 1
    assert primary["redis_memory_max_bytes"] == 0  # no maxMemory: no alert
    lags = [k for k in primary if k.startswith("redis_connected_slave_lag_seconds{")]
    assert len(lags) == len(c.pods) - 1
    for r in replicas:
        assert r["redis_up"] == 1 and role(r) == "slave"
        assert one(r, "redis_master_link_up") == 1
    # every metric the alerts read is exported (by the primary or a replica)
    exported = {k.split("{", 1)[0] for series in got for k in series}
    read = {m for a in alert_rules(c) for m in re.findall(r"(redis_\w+)\{", a["expr"])}
    if not c.server.at_least(7, 0):
        read.discard("redis_max_clients")  # INFO has maxclients from 7.0
    assert read and read <= exported, read - exported
    # its flags keep it to what it may: no scrape left a refusal in the ACL LOG
    log = c.primary.cli("acl", "log", password=FIRST)
    assert metrics.USER not in log, log
    # what the exporter user may not do: write, reconfigure, read keys or the config
    repl = state.replication
    for cmd in (
        ["set", "k", "x"],
        ["get", "k"],
        ["config", "set", "maxmemory", "1"],
        ["config", "get", "masterauth"],
        ["slowlog", "get"],
        ["replicaof", "no", "one"],
    ):
        assert "NOPERM" in c.primary.cli(*cmd, user=metrics.USER, password=repl), cmd
    assert c.primary.cli("ping", user=metrics.USER, password=repl) == "PONG"


def test_the_exporter_user_and_its_password_file_exist_only_with_metrics(make_cluster):
    c = make_cluster({"replicas": 1})
    c.write_secret(auth.step(None, None, "v1", rolled=False))
    c.start(0)
    assert not (c.primary.run / metrics.PASSWORD_FILE).exists()
    assert metrics.USER not in c.primary.cli("acl", "users")


def test_with_tls_the_exporter_checks_the_servers_name(make_cluster, redis_exporter):
    """Its TLS is no formality: a certificate that does not name the pod is refused."""
    c = make_cluster({"replicas": 1, "metrics": {"enabled": True}, "tls": {"secretName": "t"}})
    if not c.server.tls:
        pytest.skip(f"this {c.server.version} build has no TLS")
    c.write_secret(auth.step(None, None, "v1", rolled=False))
    c.start(0)
    name = "REDIS_EXPORTER_TLS_SERVER_NAME"
    with exporter(c, c.primary, redis_exporter, **{name: "r-0.elsewhere.svc"}) as (port, _):
        assert scrape(port)["redis_up"] == 0
    with exporter(c, c.primary, redis_exporter, **{name: "127.0.0.1"}) as (port, _):
        assert scrape(port)["redis_up"] == 1  # what the test's certificate names
