"""Admission and conversion webhooks as kubectl users meet them, on a real API server
that reaches the in-process operator's webhook server on 127.0.0.1.

Each test has its own API group (CRD and webhook configurations are cluster-wide),
so the tests run in parallel.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import shelves
import yaml

import minop
from minop import kinds
from minop.kit import crd
from minop.kit.e2e.api import Api
from minop.kit.e2e.pods import Kubectl
from minop.kit.testing import OperatorRunner, free_port, wait_for
from minop.packaging.webhooks import configurations
from minop.webhook import certs

# The API server calls the in-process operator on 127.0.0.1: it needs no pod, and on
# kind (an API server in a container) it could not reach it.
pytestmark = pytest.mark.apionly

DAY = 86400.0


@dataclass
class Shelf:
    kind: minop.Kind
    namespace: str
    runner: OperatorRunner
    port: int

    def resource(self, version: str) -> str:
        return f"{self.kind.plural}.{version}.{self.kind.group}"

    def body(self, version: str, name: str, spec: dict) -> str:
        return shelf_body(self.kind, self.namespace, version, name, spec)


def shelf_body(kind: minop.Kind, namespace: str, version: str, name: str, spec: dict) -> str:
    return json.dumps(
        {
            "apiVersion": f"{kind.group}/{version}",
            "kind": "Shelf",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


class Setup:
    """A kind of its own (its own API group), the plugin, and its webhook configurations."""

    def __init__(self, namespace: str, kubectl: Kubectl) -> None:
        self.namespace, self.kubectl = namespace, kubectl
        tag = uuid.uuid4().hex[:6]
        self.kind = minop.Kind(f"s{tag}.test.minop.dev", "v2", "Shelf", "shelves")
        self.port = free_port()
        base = f"https://127.0.0.1:{self.port}"
        self.plugin = shelves.Shelves(self.kind, f"{base}/convert")
        (resource,) = self.plugin.minop_resources()
        self.config = f"minop-e2e-{tag}"
        self.webhooks = configurations([resource], self.config, lambda p: {"url": base + p})
        self.crd_name = f"crd/{self.kind.plural}.{self.kind.group}"

    def install(self, crd: dict | None = None) -> None:
        docs = [crd or self.plugin.crd, *self.webhooks]
        self.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
        self.kubectl("wait", "--for=condition=Established", self.crd_name, "--timeout=60s")

    def runner(self, namespaces: tuple[str, ...] | None = None, **settings) -> OperatorRunner:
        return OperatorRunner(
            {"shelves": self.plugin},
            namespaces=(self.namespace,) if namespaces is None else namespaces,
            webhook_addr=f"127.0.0.1:{self.port}",
            webhook_namespace=self.namespace,
            webhook_hosts=("127.0.0.1",),
            webhook_config=self.config,
            **settings,
        )

    def probe(self) -> bool:
        """Whether the API server can call the webhook (a server-side dry run)."""
        body = shelf_body(self.kind, self.namespace, "v2", "probe", {"replicas": 1})
        r = self.kubectl("create", "--dry-run=server", "-f", "-", input=body, check=False)
        return r.returncode == 0

    @contextlib.contextmanager
    def running(self, namespaces: tuple[str, ...] | None = None) -> Iterator[Shelf]:
        with self.runner(namespaces) as runner:
            # the API server trusts the operator once its informers saw the caBundle
            wait_for(self.probe, 30, "the API server calling the webhook")
            yield Shelf(self.kind, self.namespace, runner, self.port)

    def delete(self) -> None:
        for doc in self.webhooks:
            self.kubectl("delete", doc["kind"].lower(), self.config, "--wait=false", check=False)
        self.kubectl("delete", self.crd_name, "--wait=false", check=False)


@pytest.fixture
def setup(namespace: str, kubectl: Kubectl) -> Iterator[Setup]:
    s = Setup(namespace, kubectl)
    try:
        yield s
    finally:
        s.delete()


@pytest.fixture
def shelf(setup: Setup) -> Iterator[Shelf]:
    setup.install()
    with setup.running() as s:
        yield s


def get(kubectl: Kubectl, shelf: Shelf, version: str, name: str) -> dict:
    out = kubectl("get", shelf.resource(version), name, "-n", shelf.namespace, "-o", "json")
    return json.loads(out.stdout)


def test_created_in_v1_read_and_edited_in_either_version_nothing_lost(shelf, kubectl):
    created = kubectl(
        "create", "-f", "-", input=shelf.body("v1", "a", {"size": 3, "config": {"x": "1"}})
    )
    assert shelves.DEPRECATION in created.stderr  # kubectl shows the deprecationWarning
    v2 = get(kubectl, shelf, "v2", "a")
    assert v2["apiVersion"] == f"{shelf.kind.group}/v2"
    assert v2["spec"] == {"replicas": 3, "config": {"x": "1"}}
    assert v2["metadata"]["labels"] == {"shelf/zone": "default"}  # the mutating hook

    # a v2-only field, then an edit through v1 which has no place for it
    patch = json.dumps({"spec": {"zone": "eu", "replicas": 4}})
    kubectl("patch", shelf.resource("v2"), "a", "-n", shelf.namespace, "--type=merge", "-p", patch)
    v1 = get(kubectl, shelf, "v1", "a")
    assert v1["spec"] == {"size": 4, "config": {"x": "1"}}
    patch = json.dumps({"spec": {"size": 5}})
    kubectl("patch", shelf.resource("v1"), "a", "-n", shelf.namespace, "--type=merge", "-p", patch)
    v2 = get(kubectl, shelf, "v2", "a")
    assert v2["spec"] == {"replicas": 5, "zone": "eu", "config": {"x": "1"}}
    assert "conversion.minop.dev/kept" not in v2["metadata"].get("annotations", {})
    # the operator works in v2 and saw the last edit
    wait_for(
        lambda: get(kubectl, shelf, "v2", "a").get("status", {}).get("replicas") == 5,
        30,
        "status.replicas 5",
    )


def test_validation_refuses_with_every_error_and_mutation_shows_on_dry_run(shelf, kubectl):
    bad = shelf.body("v1", "bad", {"size": 1, "config": {"a": " ", "b": "ok", "c": ""}})
    for dry in (["--dry-run=server"], []):
        r = kubectl("create", *dry, "-f", "-", input=bad, check=False)
        assert r.returncode != 0
        assert "spec.config.a: must not be empty" in r.stderr
        assert "spec.config.c: must not be empty" in r.stderr
        assert "spec.config.b" not in r.stderr
    missing = kubectl("get", shelf.resource("v2"), "bad", "-n", shelf.namespace, check=False)
    assert "NotFound" in missing.stderr  # nothing was stored

    warned = shelf.body("v2", "big", {"replicas": 7})
    r = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=warned)
    assert "Warning: spec.replicas: more than 5 copies cost a lot" in r.stderr
    assert json.loads(r.stdout)["metadata"]["labels"] == {"shelf/zone": "default"}
    missing = kubectl("get", shelf.resource("v2"), "big", "-n", shelf.namespace, check=False)
    assert "NotFound" in missing.stderr


def test_operator_down_follows_each_webhooks_failure_policy(shelf, kubectl):
    kubectl("create", "-f", "-", input=shelf.body("v2", "kept", {"replicas": 1}))
    shelf.runner.stop()
    # validating: Fail, so nothing unchecked gets in while no replica answers
    r = kubectl("create", "-f", "-", input=shelf.body("v2", "new", {"replicas": 1}), check=False)
    assert r.returncode != 0
    assert f'failed calling webhook "v.shelves.{shelf.kind.group}"' in r.stderr
    # what is stored in v2 reads in v2; v1 needs the conversion webhook
    assert get(kubectl, shelf, "v2", "kept")["spec"] == {"replicas": 1}
    r = kubectl("get", shelf.resource("v1"), "kept", "-n", shelf.namespace, check=False)
    assert r.returncode != 0 and "conversion webhook" in r.stderr


def test_certificate_rotated_while_requests_flow_fails_none(shelf, api: Api):
    path = f"/apis/{shelf.kind.group}/v1/namespaces/{shelf.namespace}/{shelf.kind.plural}"
    failures: list[BaseException] = []
    done = threading.Event()
    sent = [0]

    def flow() -> None:  # dry-run creates through v1: validation, mutation, conversion
        while not done.is_set():
            try:
                api.request("POST", path, json.loads(shelf.body("v1", "r", {"size": 1})),
                            dryRun="All")  # fmt: skip
                sent[0] += 1
            except BaseException as e:
                failures.append(e)
                return

    thread = threading.Thread(target=flow)
    thread.start()
    wait_for(lambda: sent[0] >= 5, 30, "requests flowing")
    webhooks = shelf.runner.op.webhooks
    assert webhooks is not None
    before = secret_material(api, shelf)
    webhooks.source.now = lambda: time.time() + 70 * DAY  # the serving certificate is due
    webhooks.source.sync()
    at_rotation = sent[0]
    wait_for(lambda: sent[0] >= at_rotation + 10 or failures, 30, "requests after the rotation")
    done.set()
    thread.join()
    assert failures == []
    after = secret_material(api, shelf)
    assert after.tls_crt != before.tls_crt and after.ca_bundle == before.ca_bundle
    context = ssl.create_default_context(cadata=after.ca_bundle)
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", shelf.port)), server_hostname="127.0.0.1"
    ) as s:
        served = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
    assert served.split() == after.tls_crt.split()


def secret_material(api: Api, shelf: Shelf) -> certs.Material:
    secret = api.request(
        "GET", f"/api/v1/namespaces/{shelf.namespace}/{kinds.SECRET.plural}/minop-webhook-cert"
    )
    material = certs.Material.from_secret(secret["data"])
    assert material is not None
    return material


def test_storage_migration_rewrites_old_objects_and_trims_stored_versions(setup, kubectl):
    # the previous release: v1 only, stored
    old = minop.Kind(setup.kind.group, "v1", "Shelf", "shelves")
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(
        crd.definition(old, description="A shelf.", spec=shelves.SPEC_V1, status=shelves.STATUS)
    ))  # fmt: skip
    kubectl("wait", "--for=condition=Established", setup.crd_name, "--timeout=60s")
    for i in range(5):
        body = shelf_body(setup.kind, setup.namespace, "v1", f"old-{i}", {"size": i})
        kubectl("create", "-f", "-", input=body)
    setup.install()  # this release: v2 stored, v1 served

    def stored() -> list[str]:
        jsonpath = "jsonpath={.status.storedVersions}"
        return json.loads(kubectl("get", setup.crd_name, "-o", jsonpath).stdout)

    assert stored() == ["v1", "v2"]
    with setup.running(namespaces=()):  # all namespaces: only then may it trim
        wait_for(lambda: stored() == ["v2"], 60, "storedVersions [v2]")
    # proof that nothing is stored in v1 any more: drop v1 (the API server allows it
    # now) and its conversion; what was stored in v1 would lose its spec.size to pruning
    current = json.loads(json.dumps(setup.plugin.crd))
    current["spec"]["versions"] = [v for v in current["spec"]["versions"] if v["name"] == "v2"]
    current["spec"]["conversion"] = {"strategy": "None"}
    kubectl("replace", "-f", "-", input=yaml.safe_dump(current))
    resource = f"{setup.kind.plural}.v2.{setup.kind.group}"
    out = kubectl("get", resource, "-n", setup.namespace, "-o", "json")
    specs = {o["metadata"]["name"]: o["spec"] for o in json.loads(out.stdout)["items"]}
    assert specs == {f"old-{i}": {"replicas": i} for i in range(5)}


def test_a_mounted_certificate_cert_manager_or_olm_makes_the_replica_ready(
    setup, kubectl, tmp_path
):
    setup.install()
    with setup.runner(webhook_cert_mode="cert-manager", webhook_cert_dir=str(tmp_path)) as r:
        missing = f"webhook certificate: not mounted in {tmp_path}:"

        def unready() -> bool:
            code, body = r.get("/readyz")
            return code == 503 and missing in body

        wait_for(unready, 30, "not ready, naming the missing certificate")
        # what cert-manager does: the Secret's files, and the CA injected
        material = certs.renew(None, "minop-webhook", ("127.0.0.1",), time.time())
        assert material is not None
        (tmp_path / "tls.key").write_text(material.tls_key)
        (tmp_path / "tls.crt").write_text(material.tls_crt)
        ca = base64.b64encode(material.ca_bundle.encode()).decode()
        for doc in setup.webhooks:
            patch = [{"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca}
                     for i in range(len(doc["webhooks"]))]  # fmt: skip
            kubectl("patch", doc["kind"].lower(), setup.config, "--type=json",
                    "-p", json.dumps(patch))  # fmt: skip
        client = {"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": ca}}}}}
        kubectl("patch", setup.crd_name, "--type=merge", "-p", json.dumps(client))
        wait_for(lambda: r.get("/readyz")[0] == 200, 30, "ready once the files are there")
        wait_for(setup.probe, 30, "the API server calling the webhook")
        # the Secret minop would manage was never written in this mode
        secrets = kubectl("get", "secrets", "-n", setup.namespace, "-o", "name").stdout
        assert "minop-webhook-cert" not in secrets
