"""The Helm chart of a plugin with admission hooks and two versions (tests/e2e/shelves.py),
next to one without: the webhook Service, configurations, certificate modes, RBAC and
the converted CRD rendered for the release's namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import minop
from minop.kit import crd
from minop.packaging import bundle, chart
from minop.packaging import webhooks as pw
from minop.settings import from_sources
from tests.e2e import shelves
from tests.unit.test_chart import env_of, helm, helm_run, rule_set  # noqa: F401 (fixture)

SHELF = minop.Kind("s.test.minop.dev", "v2", "Shelf", "shelves")
PLAIN = minop.Kind("p.test.minop.dev", "v1", "Plain", "plains")
PLUGINS = {
    "shelves": shelves.Shelves(SHELF, None).minop_resources(),
    "plain": [
        minop.Resource(
            PLAIN,
            crd=crd.definition(
                PLAIN, description="No hooks.", spec=crd.obj("Spec.", {}), status=shelves.STATUS
            ),
        )
    ],
}
Objects = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chart")
    bundle.write(root, chart.files(PLUGINS, "0.2.0", "minop:test"))
    return root


def render(helm: str, chart_dir: Path, *args: str) -> Objects:  # noqa: F811
    p = helm_run(helm, "template", "rel", str(chart_dir), "-n", "ops", *args)
    assert p.returncode == 0, p.stderr
    docs = [d for d in yaml.safe_load_all(p.stdout) if d]
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def hooks(objs: Objects) -> list[dict[str, Any]]:
    return [
        h
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for h in objs[(kind, "", "rel-minop")]["webhooks"] or []
    ]


def test_self_managed_serves_the_release_service_and_names_it_in_every_client(
    helm: str,  # noqa: F811
    chart_dir: Path,
) -> None:
    objs = render(helm, chart_dir)
    dep = objs[("Deployment", "ops", "rel-minop")]
    pod = dep["spec"]["template"]
    [c] = pod["spec"]["containers"]
    assert {"name": "webhook", "containerPort": pw.PORT} in c["ports"]
    # what the operator reads: its certificate names the Service the API server calls
    settings = from_sources(None, {k: v for k, v in env_of(dep).items() if isinstance(v, str)})
    assert (settings.webhook_addr, settings.webhook_cert_mode) == (":9443", "self-managed")
    assert settings.webhook_service == "rel-minop-webhook"
    assert settings.webhook_secret == "rel-minop-webhook-cert"
    assert settings.webhook_config == "rel-minop"
    service = objs[("Service", "ops", "rel-minop-webhook")]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook"}]
    want = {"name": "rel-minop-webhook", "namespace": "ops", "port": 443}
    # the same hooks as config/ (one source), reaching this release's Service
    plain = pw.configurations(PLUGINS["shelves"], "minop", pw.service_client("x", "y"))
    assert [(h["name"], h["rules"], h["failurePolicy"]) for h in hooks(objs)] == [
        (h["name"], h["rules"], h["failurePolicy"]) for d in plain for h in d["webhooks"]
    ]
    for h in hooks(objs):
        assert {**h["clientConfig"]["service"], "path": ""} == {**want, "path": ""}
        assert "caBundle" not in h["clientConfig"]  # the operator writes it
    # the converted CRD names it too, and uninstall keeps it; the other stays in crds/
    shelf = objs[("CustomResourceDefinition", "", "shelves.s.test.minop.dev")]
    assert shelf["spec"]["conversion"]["webhook"]["clientConfig"]["service"] == {
        "name": "rel-minop-webhook", "namespace": "ops", "path": "/convert"
    }  # fmt: skip
    assert shelf["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert sorted(v["name"] for v in shelf["spec"]["versions"]) == ["v1", "v2"]
    assert sorted(p.name for p in (chart_dir / "crds").iterdir()) == [
        "p.test.minop.dev_plains.yaml"
    ]
    assert not [k for k in objs if k[0] in ("Issuer", "Certificate")]
    # the Secret in the release namespace only; caBundles and the migration cluster-wide
    role = rule_set(objs[("Role", "ops", "rel-minop-webhook")]["rules"])
    assert role == {("", "secrets", v) for v in ("get", "create", "update")}
    assert objs[("RoleBinding", "ops", "rel-minop-webhook")]["subjects"][0]["name"] == "rel-minop"
    cluster = rule_set(objs[("ClusterRole", "", "rel-minop")]["rules"])
    assert ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "update") in cluster
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "update") in cluster
    assert ("", "secrets", "get") not in cluster


def test_cert_manager_issues_the_mounted_certificate_and_injects_every_ca_bundle(
    helm: str,  # noqa: F811
    chart_dir: Path,
) -> None:
    objs = render(helm, chart_dir, "--set", "webhook.certMode=cert-manager")
    dep = objs[("Deployment", "ops", "rel-minop")]
    assert env_of(dep)["MINOP_WEBHOOK_CERT_MODE"] == "cert-manager"
    pod = dep["spec"]["template"]["spec"]
    cert = objs[("Certificate", "ops", "rel-minop-webhook")]
    assert cert["spec"]["dnsNames"] == [
        "rel-minop-webhook.ops.svc", "rel-minop-webhook.ops.svc.cluster.local"
    ]  # fmt: skip
    assert cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": "rel-minop-webhook"}
    assert objs[("Issuer", "ops", "rel-minop-webhook")]["spec"] == {"selfSigned": {}}
    [volume] = [v for v in pod["volumes"] if v["name"] == "webhook-cert"]
    assert volume["secret"]["secretName"] == cert["spec"]["secretName"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "webhook-cert"]
    assert mount == {"name": "webhook-cert", "mountPath": pw.CERT_DIR, "readOnly": True}
    inject = {pw.INJECT: "ops/rel-minop-webhook"}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert objs[(kind, "", "rel-minop")]["metadata"]["annotations"] == inject
    shelf = objs[("CustomResourceDefinition", "", "shelves.s.test.minop.dev")]
    assert shelf["metadata"]["annotations"].items() >= inject.items()
    # no Secret of its own, no caBundle to write: the CRD only for the migration
    assert ("Role", "ops", "rel-minop-webhook") not in objs
    cluster = rule_set(objs[("ClusterRole", "", "rel-minop")]["rules"])
    assert not [r for _, r, _ in cluster if r.endswith("webhookconfigurations")]
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "patch") in cluster
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "update") not in cluster


def test_a_disabled_plugin_has_no_hook_and_watched_namespaces_keep_the_webhook_rules(
    helm: str,  # noqa: F811
    chart_dir: Path,
) -> None:
    objs = render(
        helm, chart_dir, "--set", "plugins.shelves=false", "--set", "watchNamespaces={team-a}"
    )
    assert env_of(objs[("Deployment", "ops", "rel-minop")])["MINOP_PLUGINS"] == "plain"
    assert hooks(objs) == []  # its fail-closed hook would refuse every write unserved
    assert ("Role", "ops", "rel-minop-webhook") in objs
    cluster = rule_set(objs[("ClusterRole", "", "rel-minop")]["rules"])
    assert ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get") in cluster


def test_crds_managed_elsewhere_are_not_rendered(helm: str, chart_dir: Path) -> None:  # noqa: F811
    objs = render(helm, chart_dir, "--set", "crds.install=false")
    assert not [k for k in objs if k[0] == "CustomResourceDefinition"]
    assert ("Service", "ops", "rel-minop-webhook") in objs


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--set", "webhook.certMode=olm"], "/webhook/certMode"),
        (["--set", "webhook.port=1"], "port"),
        (["--set", "webhook.enabled=false"], "webhook.enabled: the CRDs shelves.s.test.minop.dev"),
    ],
)
def test_a_wrong_webhook_value_is_refused_naming_it(
    helm: str,  # noqa: F811
    chart_dir: Path,
    args: list[str],
    named: str,
) -> None:
    p = helm_run(helm, "template", "rel", str(chart_dir), "-n", "ops", *args)
    assert p.returncode != 0, f"helm accepted {args}"
    assert named in p.stderr


def test_helm_lint_is_clean_with_the_default_and_every_option(
    helm: str,  # noqa: F811
    chart_dir: Path,
) -> None:
    every = chart_dir / "ci" / "all-options-values.yaml"
    assert yaml.safe_load(every.read_text())["webhook"]["certMode"] == "cert-manager"
    for values in ([], ["-f", str(every)]):
        p = helm_run(helm, "lint", "--strict", str(chart_dir), *values)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "0 chart(s) failed" in p.stdout
