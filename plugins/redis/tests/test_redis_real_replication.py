"""The generated init script, redis.conf and probes replicate, persist and keep a
loading replica alive on every supported server (see redis_pods.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from minop_redis import auth
from redis_pod import Pod, refused, wait
from redis_pods import FIRST


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
    # protected mode on with a password: clients from other pods still need it even
    # after an ACL SETUSER default nopass
    assert c.primary.admin("config", "get", "protected-mode").split() == [
        "protected-mode",
        "yes",
    ]
    for p in c.pods:  # the append-only files: a directory from 7.0, one file before
        if c.server.at_least(7, 0):
            aof = p.data / "appendonlydir"
            assert any(f.name.endswith(".manifest") for f in aof.iterdir()), p.name
        else:
            assert (p.data / "appendonly.aof").is_file(), p.name
    c.pods[2].stop()
    assert not c.pods[2].probe()  # a decisive probe: fails when Redis is down


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
    # without one protected mode is off: clients of other pods could not connect at all
    assert c.primary.admin("config", "get", "protected-mode").split() == ["protected-mode", "no"]
    wait(lambda: c.pods[1].cli("get", "k") == "v", "replicated")
    assert c.primary.admin("config", "get", "maxmemory").split() == ["maxmemory", str(64 << 20)]
    policy = c.primary.admin("config", "get", "maxmemory-policy").split()
    assert policy == ["maxmemory-policy", "allkeys-lru"]
    assert not (c.primary.data / "appendonlydir").exists()
    assert not (c.primary.data / "appendonly.aof").exists()
    # the replication user still guards replication
    assert refused(c.primary.cli("ping", user="replication", password=b"guess"))


def test_liveness_accepts_a_replica_loading_its_full_resync_readiness_does_not(make_cluster):
    c = make_cluster({"replicas": 2, "minReplicasToWrite": 0})  # data before the replica
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    # 16 MB: a loading server answers (LOADING) only between chunks (6.x: of 2 MB),
    # so every command asked during the load waits for the end of the current chunk
    fill = "for i = 1, 8000 do redis.call('set', 'k' .. i, string.rep('x', 2048)) end"
    assert c.primary.cli("eval", fill, "0") == ""
    assert c.primary.admin("config", "set", "rdbcompression", "no") == "OK"  # keep the 16 MB
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


def test_a_replica_is_not_ready_while_it_syncs_or_its_link_to_the_primary_is_down(make_cluster):
    """It answers PING all the while (alive, started) but serves no client: without
    this a rollout moves on, and a failover may promote it, before it has the data."""
    c = make_cluster({"replicas": 2, "minReplicasToWrite": 0})  # data before the replica
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    assert c.primary.cli("set", "k", "v") == "OK"
    # the primary sends its data 5 s after the replica asks: the sync is watchable
    assert c.primary.admin("config", "set", "repl-diskless-sync", "yes") == "OK"
    assert c.primary.admin("config", "set", "repl-diskless-sync-delay", "5") == "OK"
    c.pods.append(Pod(c, 1))
    c.pods[1].start(slow_load=True)  # does not wait for its probes
    replica = c.pods[1]
    log = c.root / "r-1-redis.log"
    wait(lambda: "Partial resynchronization not possible" in log.read_text(), "a full sync")
    assert replica.cli("ping") == "PONG"
    assert replica.probe("livenessProbe") and replica.probe("startupProbe")
    assert not replica.probe("readinessProbe")
    assert replica.cli("get", "k") == ""  # and indeed, it has no data yet
    wait(replica.probe, "the replica ready once synced", 30)
    assert replica.cli("get", "k") == "v"
    c.primary.stop()
    wait(
        lambda: "master_link_status:down" in replica.cli("info", "replication"),
        "the replica's link down",
    )
    assert replica.probe("livenessProbe") and not replica.probe("readinessProbe")


def test_persistence_knobs_and_extra_directives(make_cluster):
    spec = {
        "replicas": 2,
        "persistence": {
            "appendFsync": "always",
            "save": [{"seconds": 3600, "changes": 1}, {"seconds": 300, "changes": 100}],
        },
        "config": {"notify-keyspace-events": "Ex", "hz": "20"},
    }
    c = make_cluster(spec)
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0, 1)
    wait(lambda: c.replicating(None), "replication")
    for p in c.pods:

        def conf(name: str, p: Pod = p) -> str:
            return " ".join(p.admin("config", "get", name).splitlines()[1:])

        assert conf("save") == "3600 1 300 100", p.name
        assert conf("appendfsync") == "always" and conf("hz") == "20"
        assert sorted(conf("notify-keyspace-events")) == ["E", "x"]
    c.stop()
    # no snapshots at all: an empty schedule
    c = make_cluster({"replicas": 1, "persistence": {"save": []}})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    assert c.primary.admin("config", "get", "save").splitlines()[1:] in ([""], [])
