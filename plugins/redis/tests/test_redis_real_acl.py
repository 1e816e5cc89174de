"""Clients (the default user, with the client password) get data commands, never the
server's administration, on every supported server: they cannot read the internal
password (``CONFIG GET masterauth``) nor repoint replication, and replication and a
Sentinel failover work as before. ``spec.auth.clientCommands`` widens or narrows it."""

from __future__ import annotations

from typing import Any

import pytest
from minop_redis import auth
from redis_pod import Pod, wait
from redis_pods import FIRST
from redis_servers import Server
from test_redis_real_failover import three_with_sentinels
from test_redis_real_sentinel_ids import kill_primary_and_its_sentinel


def refused_commands(server: Server) -> list[tuple[str, ...]]:
    """What a client must not run: read the internal password, change replication, the
    ACLs, persistence or the server itself."""
    out = [
        ("config", "get", "masterauth"),
        ("config", "set", "dir", "/tmp"),
        ("config", "set", "masterauth", "x"),
        ("replicaof", "127.0.0.1", "1"),
        ("slaveof", "no", "one"),
        ("acl", "setuser", "default", "+@all"),
        ("acl", "list"),
        ("debug", "sleep", "0"),
        ("shutdown", "nosave"),
        ("bgsave",),
        ("client", "kill", "127.0.0.1:1"),
        ("client", "pause", "1000"),
        ("module", "list"),
    ]
    if server.at_least(6, 2):
        out.append(("failover",))
    return out


PROTECTED = ("debug", "module")


def client_can_use_data_commands(pod: Pod, server: Server) -> None:
    def cli(*args: str) -> str:
        return pod.cli(*args, password=FIRST)

    role = cli("role").splitlines()[0]  # Sentinel-aware clients check the primary with it
    assert role in {"master", "slave"}
    if role == "master":
        assert cli("set", "acl:k", "v") == "OK"
        assert cli("get", "acl:k") == "v"
        assert cli("wait", "0", "100").isdigit()
        assert cli("eval", "return redis.call('get', KEYS[1])", "1", "acl:k") == "v"
        assert cli("del", "acl:k") == "1"
    else:
        assert "READONLY" in cli("set", "acl:k", "v")  # refused as a replica, not by the ACL
        assert cli("get", "acl:k") == ""
    assert "# Replication" in cli("info", "replication")
    assert cli("client", "setname", "app") == "OK"  # what libraries send on connect
    assert cli("publish", "ch", "m").isdigit()
    assert cli("multi") == "OK"


def assert_least_privilege(pod: Pod, server: Server) -> None:
    for args in refused_commands(server):
        out = pod.cli(*args, password=FIRST)
        # 7.0+ refuses DEBUG and MODULE to everyone by default (enable-*-command no)
        protected = args[0] in PROTECTED and server.at_least(7, 0) and "not allowed" in out
        assert "NOPERM" in out or protected, (server.version, args, out)
    assert FIRST.decode() not in pod.cli("config", "get", "*", password=FIRST)
    client_can_use_data_commands(pod, server)
    assert pod.proc is not None and pod.proc.poll() is None  # SHUTDOWN was refused


def test_clients_cannot_read_the_internal_password_nor_reconfigure_replication(
    make_cluster: Any, server: Server
) -> None:
    c = make_cluster({"replicas": 2, "passwordSecretRef": {"name": "pw"}})
    c.write_secret(auth.step(None, FIRST, "v1", rolled=False))
    c.start(0, 1)
    wait(lambda: c.replicating(FIRST), "replication")
    for p in c.pods:
        assert_least_privilege(p, server)
    assert c.primary.cli("set", "k", "v", password=FIRST) == "OK"
    assert c.primary.cli("wait", "1", "5000", password=FIRST) == "1"
    assert c.pods[1].cli("get", "k", password=FIRST) == "v"
    # the administration is there, for a user that has it (the harness's own)
    assert c.primary.admin("config", "get", "masteruser").split() == ["masteruser", "replication"]


def test_with_sentinel_clients_stay_least_privileged_and_a_failover_happens(
    make_cluster: Any, server: Server
) -> None:
    if not server.at_least(6, 2):
        pytest.skip("failover needs 6.2")
    c = three_with_sentinels(make_cluster)
    for p in c.pods:
        assert_least_privilege(p, server)
    kill_primary_and_its_sentinel(c, server.version)
    promoted = next(p for p in c.pods[1:] if "role:master" in p.admin("info", "replication"))
    # writes again once the other replica follows it (minReplicasToWrite 1)
    wait(lambda: promoted.cli("set", "after", "1", password=FIRST) == "OK", "writes", 30)
    assert_least_privilege(promoted, server)  # the Sentinels' CONFIG REWRITE kept the ACL


def test_client_commands_widen_or_narrow_what_clients_may_run(
    make_cluster: Any, server: Server
) -> None:
    c = make_cluster({"replicas": 1, "auth": {"clientCommands": "+@all"}})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    assert c.primary.cli("config", "get", "appendonly").split() == ["appendonly", "yes"]
    narrow = make_cluster({"replicas": 1, "auth": {"clientCommands": "+@read +ping"}})
    narrow.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    narrow.start(0)
    assert narrow.primary.cli("get", "k") == ""
    assert "NOPERM" in narrow.primary.cli("set", "k", "v")
