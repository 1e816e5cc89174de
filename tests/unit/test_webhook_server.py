"""The webhook server over real HTTPS, and the self-managed certificate's rotation."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time

import pytest

from minop.kit.testing import wait_for
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.settings import Settings
from minop.webhook import certs
from minop.webhook.review import Reviews
from minop.webhook.server import WebhookServer
from tests.unit.test_webhook_review import Shelves, admission, release

HOSTS = ("127.0.0.1", "webhook.minop.svc")
DAY = 86400.0


@pytest.fixture(scope="module")
def material():
    fresh = certs.renew(None, "webhook", HOSTS, time.time())
    assert fresh is not None
    return fresh


@pytest.fixture
def server(material):
    pm = PluginManager()
    pm.register(Shelves(), "shelves")
    pm.startup(Settings())
    metrics = Metrics()
    s = WebhookServer(("127.0.0.1", 0), Reviews(pm), metrics, max_in_flight=2)
    s.metrics = metrics  # type: ignore[attr-defined]
    assert s.ready() == (False, "webhook server: no certificate loaded yet")
    s.load(material.tls_crt, material.tls_key)
    s.start()
    release.clear()
    yield s
    release.set()
    s.stop()


def client(port, ca_bundle):
    context = ssl.create_default_context(cadata=ca_bundle)
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def test_serves_reviews_over_tls_and_counts_them(server, material):
    assert server.ready() == (True, "")
    conn = client(server.port, material.ca_bundle)
    code, out = post(conn, "/validate", admission({"config": {"a": ""}}))
    assert code == 200 and out["response"]["allowed"] is False
    code, out = post(conn, "/mutate", admission({"legacy": 1}))  # same kept-alive connection
    assert code == 200 and out["response"]["patchType"] == "JSONPatch"
    code, out = post(conn, "/nowhere", {})
    assert code == 404 and out == {"message": "no webhook at /nowhere"}
    text = server.metrics.render()
    assert 'controller_runtime_webhook_requests_total{webhook="/validate",code="200"} 1' in text
    assert 'controller_runtime_webhook_latency_seconds_count{webhook="/mutate"} 1' in text
    assert 'controller_runtime_webhook_requests_in_flight{webhook="/validate"} 0' in text


def test_bad_bodies_get_a_400_with_the_reason(server, material):
    conn = client(server.port, material.ca_bundle)
    conn.request("POST", "/validate", b"[1]", {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 400
    assert json.loads(r.read()) == {
        "message": "minop webhook: not a review: the body is not a JSON object"
    }


def test_requests_over_the_bound_get_a_429_with_a_message(server, material):
    # two slow requests (their body never comes) hold both slots
    context = ssl.create_default_context(cadata=material.ca_bundle)
    slow = []
    for _ in range(2):
        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)),
                                   server_hostname="127.0.0.1")  # fmt: skip
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        slow.append(sock)
    in_flight = server.metrics.webhook_in_flight
    wait_for(lambda: in_flight.value(webhook="/validate") == 2, 10, "both slots taken")
    code, out = post(client(server.port, material.ca_bundle), "/validate", admission({}))
    assert code == 429 and out == {"message": "minop webhook: more than 2 requests in flight"}
    for sock in slow:
        sock.close()


def test_rotation_while_requests_flow_fails_none(server, material):
    """Clients on kept-alive and on new connections keep posting while the serving
    certificate is renewed and loaded; every request succeeds and new connections
    see the new certificate."""
    failures: list[BaseException] = []
    done = threading.Event()
    counts = [0, 0]

    def flow(i: int, keep: bool) -> None:
        conn = client(server.port, material.ca_bundle)
        while not done.is_set() or counts[i] < 5:
            try:
                if not keep:
                    conn = client(server.port, material.ca_bundle)
                code, _ = post(conn, "/validate", admission({}))
                assert code == 200
                counts[i] += 1
            except BaseException as e:
                failures.append(e)
                return

    threads = [threading.Thread(target=flow, args=(i, i == 0)) for i in range(2)]
    for t in threads:
        t.start()
    renewed = certs.renew(material, "webhook", HOSTS, time.time() + 70 * DAY)
    assert renewed is not None and renewed.tls_crt != material.tls_crt
    assert renewed.ca_bundle == material.ca_bundle  # the CA is not due: same trust
    server.load(renewed.tls_crt, renewed.tls_key)
    done.set()
    for t in threads:
        t.join()
    assert failures == [] and min(counts) >= 5
    conn = client(server.port, material.ca_bundle)
    conn.connect()
    served = ssl.DER_cert_to_PEM_cert(conn.sock.getpeercert(binary_form=True))
    assert served.split() == renewed.tls_crt.split()


def test_a_certificate_still_good_is_kept(material):
    assert certs.renew(material, "webhook", HOSTS, time.time() + DAY) is None


def test_a_ca_due_joins_the_bundle_and_the_old_one_stays_trusted(material):
    later = time.time() + 2500 * DAY  # the CA has less than a third of its 10 years left
    renewed = certs.renew(material, "webhook", HOSTS, later)
    assert renewed is not None
    bundle = certs.certificates(renewed.ca_bundle)
    assert len(bundle) == 2 and bundle[1] == certs.certificates(material.ca_bundle)[0]
    assert renewed.ca_key != material.ca_key
    # the serving certificate (long expired by then) is reissued by the new CA
    assert renewed.tls_crt != material.tls_crt
    ctx = ssl.create_default_context(cadata=renewed.ca_bundle)
    assert ctx.cert_store_stats()["x509_ca"] == 2


def test_secret_data_round_trips_and_incomplete_data_is_no_material(material):
    assert certs.Material.from_secret(material.secret_data()) == material
    partial = {k: v for k, v in material.secret_data().items() if k != "tls.key"}
    assert certs.Material.from_secret(partial) is None
