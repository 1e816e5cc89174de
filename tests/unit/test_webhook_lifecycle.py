"""The self-managed certificate as the API server sees it: the Secret, every caBundle."""

from __future__ import annotations

import base64
import time

from minop import kinds
from minop.kit.fakeapi import FakeApi
from minop.settings import Settings
from minop.webhook import certs
from minop.webhook.lifecycle import MUTATING, VALIDATING, SelfManaged

NS = "minop-system"
CRD_NAME = "shelves.test.minop.dev"
DAY = 86400.0


def cluster():
    api = FakeApi([kinds.SECRET, kinds.CRD, VALIDATING, MUTATING])
    hook = {"name": "v.minop.dev", "clientConfig": {"service": {"name": "minop-webhook"}}}
    for kind in (VALIDATING, MUTATING):
        api.put(kind, {"metadata": {"name": "minop"}, "webhooks": [hook, {**hook, "name": "b"}]})
    conversion = {"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x"}}}
    api.put(kinds.CRD, {"metadata": {"name": CRD_NAME}, "spec": {"conversion": conversion}})
    return api


def replica(api, loaded, now=time.time):
    settings = Settings(webhook_hosts=("127.0.0.1",))
    load = lambda crt, key: loaded.append((crt, key))  # noqa: E731
    return SelfManaged(api.kube(), NS, settings, [CRD_NAME], load, now)


def bundles(api):
    out = [
        h["clientConfig"].get("caBundle")
        for kind in (VALIDATING, MUTATING)
        for h in api.get(kind, "", "minop")["webhooks"]
    ]
    crd = api.get(kinds.CRD, "", CRD_NAME)
    out.append(crd["spec"]["conversion"]["webhook"]["clientConfig"].get("caBundle"))
    return out


def test_first_replica_issues_the_secret_publishes_the_ca_and_serves_it():
    api, loaded = cluster(), []
    replica(api, loaded).sync()
    secret = api.get(kinds.SECRET, NS, "minop-webhook-cert")
    material = certs.Material.from_secret(secret["data"])
    assert material is not None and loaded == [(material.tls_crt, material.tls_key)]
    ca = base64.b64encode(material.ca_bundle.encode()).decode()
    assert bundles(api) == [ca] * 5


def test_a_second_replica_serves_the_same_certificate_and_writes_nothing():
    api, first, second = cluster(), [], []
    replica(api, first).sync()
    writes = len(api.writes)
    replica(api, second).sync()
    assert second == first and len(api.writes) == writes


def test_a_due_serving_certificate_is_renewed_under_the_same_ca():
    api, loaded = cluster(), []
    replica(api, loaded).sync()
    before = bundles(api)
    later = replica(api, loaded, now=lambda: time.time() + 70 * DAY)
    later.sync()
    assert len(loaded) == 2 and loaded[1] != loaded[0]
    assert bundles(api) == before  # same CA: nothing to publish
    secret = certs.Material.from_secret(api.get(kinds.SECRET, NS, "minop-webhook-cert")["data"])
    assert secret is not None and secret.tls_crt == loaded[1][0]


def test_replicas_racing_to_issue_all_serve_the_certificate_written_first():
    api, first, second = cluster(), [], []
    other = replica(api, second)

    def now():  # between this replica's read and its write, the other one issues
        if not second:
            other.sync()
        return time.time()

    replica(api, first, now).sync()
    creates = [result for method, path, result, _ in api.writes if method == "POST"]
    assert creates == ["ok", "409"]
    stored = certs.Material.from_secret(api.get(kinds.SECRET, NS, "minop-webhook-cert")["data"])
    assert stored is not None and first == second == [(stored.tls_crt, stored.tls_key)]


def test_a_namespace_of_63_characters_still_gets_a_certificate():
    # a certificate's CN holds 64 characters at most; the names go in the SANs
    api, loaded = cluster(), []
    settings = Settings(webhook_hosts=("127.0.0.1",))
    load = lambda crt, key: loaded.append((crt, key))  # noqa: E731
    SelfManaged(api.kube(), "n" * 63, settings, [], load).sync()
    assert len(loaded) == 1
