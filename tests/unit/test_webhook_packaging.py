"""What config/ and the OLM bundle carry for a plugin with webhooks and two versions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

import minop
from minop.packaging import bundle
from minop.packaging import webhooks as pw
from tests.e2e import shelves

KIND = minop.Kind("s.test.minop.dev", "v2", "Shelf", "shelves")
RESOURCE = shelves.Shelves(KIND, None).minop_resources()[0]
INFO = bundle.BundleInfo("0.2.0", "minop:test", "2026-12-07T00:00:00Z", "scorecard:test")


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(items: list[dict], kind: str) -> list[dict]:
    return [d for d in items if d["kind"] == kind]


def test_plain_manifests_carry_the_service_configurations_and_self_managed_rbac():
    files = bundle.plain_manifests([RESOURCE], "minop:test", "ops")
    assert "webhook.yaml" in yaml.safe_load(files["kustomization.yaml"])["resources"]
    web = docs(files["webhook.yaml"])
    (service,) = by_kind(web, "Service")
    assert service["metadata"] == {"name": "minop-webhook", "namespace": "ops"}
    (validating,) = by_kind(web, "ValidatingWebhookConfiguration")
    (hook,) = validating["webhooks"]
    assert hook["clientConfig"]["service"] == {
        "name": "minop-webhook", "namespace": "ops", "path": "/validate", "port": 443
    }  # fmt: skip
    assert hook["rules"][0]["apiVersions"] == ["v2"] and hook["matchPolicy"] == "Equivalent"
    assert hook["failurePolicy"] == "Fail"
    (mutating,) = by_kind(web, "MutatingWebhookConfiguration")
    assert mutating["webhooks"][0]["failurePolicy"] == "Ignore"
    (crd,) = docs(files["crds.yaml"])
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"] == "ops"
    (dep,) = docs(files["deployment.yaml"])
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]
    assert {"name": "MINOP_WEBHOOK_CERT_MODE", "value": "self-managed"} in container["env"]
    rbac = docs(files["rbac.yaml"])
    own = [r for d in by_kind(rbac, "Role") for r in d["rules"]]
    assert {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "create", "update"],
    } in own
    cluster = [r for d in by_kind(rbac, "ClusterRole") for r in d["rules"]]
    assert any("validatingwebhookconfigurations" in r["resources"] for r in cluster)
    assert any(r["resources"] == ["customresourcedefinitions/status"] for r in cluster)


def test_cert_manager_mode_annotates_for_the_ca_injector_and_mounts_the_certificate():
    web = pw.manifests([RESOURCE], "ops", pw.CERT_MANAGER)
    (cert,) = by_kind(web, "Certificate")
    assert cert["spec"]["dnsNames"][0] == "minop-webhook.ops.svc"
    for config in (*by_kind(web, "ValidatingWebhookConfiguration"),
                   *by_kind(web, "MutatingWebhookConfiguration")):  # fmt: skip
        assert config["metadata"]["annotations"] == {pw.INJECT: "ops/minop-webhook"}
    crd = pw.crd(RESOURCE, "ops", pw.CERT_MANAGER)
    assert crd["metadata"]["annotations"] == {pw.INJECT: "ops/minop-webhook"}
    dep = bundle.deployment("minop:test")
    pw.deployment(dep, pw.CERT_MANAGER)
    mounts = dep["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "webhook-cert", "mountPath": pw.CERT_DIR, "readOnly": True} in mounts
    assert pw.rules([RESOURCE], pw.CERT_MANAGER)[0] == []  # no Secret of its own to write


def test_the_csv_declares_webhookdefinitions_for_olm_to_issue_the_certificate():
    csv = bundle.csv([RESOURCE], INFO)
    defs = {d["type"]: d for d in csv["spec"]["webhookdefinitions"]}
    assert set(defs) == {"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook",
                         "ConversionWebhook"}  # fmt: skip
    assert defs["ConversionWebhook"]["conversionCRDs"] == ["shelves.s.test.minop.dev"]
    for d in defs.values():
        assert (d["deploymentName"], d["containerPort"]) == ("minop-operator", 9443)
    assert defs["ValidatingAdmissionWebhook"]["webhookPath"] == "/validate"
    dep = csv["spec"]["install"]["spec"]["deployments"][0]["spec"]
    env = dep["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MINOP_WEBHOOK_CERT_MODE", "value": "olm"} in env
    modes = {m["type"] for m in csv["spec"]["installModes"] if m["supported"]}
    assert modes == {"AllNamespaces"}  # OLM's rule with conversionCRDs


SDK = Path.home() / ".cache/minop/operator-sdk"


@pytest.mark.skipif(not any(SDK.glob("*/bin/operator-sdk")), reason="operator-sdk not built")
def test_operator_sdk_validates_a_bundle_with_webhooks(tmp_path):
    bundle.write(tmp_path, bundle.files([RESOURCE], INFO))
    (sdk,) = sorted(SDK.glob("*/bin/operator-sdk"))[-1:]
    r = subprocess.run([str(sdk), "bundle", "validate", str(tmp_path)], capture_output=True,
                       text=True, env={**os.environ, "HOME": str(tmp_path)})  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
