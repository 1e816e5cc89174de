"""A chart with webhooks on a real API server: generated for a plugin with admission hooks
and two versions (tests/e2e/shelves.py, a kind of its own per test), `helm install`
creates what the operator needs to serve them, named after the release; `helm
uninstall` removes the operator's webhook and leaves the converted CRD."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import shelves
from test_helm import Helm, exists, get, helm  # noqa: F401 (fixture)

import minop
from minop.kit.e2e.pods import Kubectl
from minop.packaging import bundle, chart

# what Helm creates, read back from the API server: no pod runs
pytestmark = pytest.mark.apionly


def test_install_serves_the_release_webhook_and_uninstall_keeps_the_crd(
    helm: Helm,  # noqa: F811
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    kind = minop.Kind(f"s{uuid.uuid4().hex[:6]}.test.minop.dev", "v2", "Shelf", "shelves")
    crd = f"{kind.plural}.{kind.group}"
    bundle.write(tmp_path, chart.files({"shelves": shelves.Shelves(kind, None).minop_resources()},
                                       "0.2.0", "minop:test"))  # fmt: skip
    release = namespace  # unique: its ClusterRole and webhook configurations are cluster-wide
    name = f"{release}-minop"[:63].rstrip("-")
    try:
        helm("install", release, str(tmp_path), "-n", namespace,
             "--set", f"watchNamespaces={{{namespace}}}")  # fmt: skip
        service = {"name": f"{name}-webhook", "namespace": namespace}
        assert (
            get(kubectl, "-n", namespace, f"service/{name}-webhook")["spec"]["ports"][0][
                "targetPort"
            ]
            == "webhook"
        )
        for kind_name in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            [hook] = get(kubectl, f"{kind_name}/{name}")["webhooks"]
            assert hook["clientConfig"]["service"].items() >= service.items()
            assert hook["rules"][0]["apiGroups"] == [kind.group]
        converted = get(kubectl, f"crd/{crd}")
        client = converted["spec"]["conversion"]["webhook"]["clientConfig"]
        assert client["service"].items() >= service.items()
        # what the self-managed certificate needs, as the API server authorizes it
        sa = f"system:serviceaccount:{namespace}:{name}"
        for verb, what, ns in (
            ("create", "secrets", namespace),
            ("update", "validatingwebhookconfigurations", None),
            ("update", f"customresourcedefinitions/{crd}", None),
        ):
            args = ["auth", "can-i", verb, what, "--as", sa, *(["-n", ns] if ns else [])]
            assert kubectl(*args, check=False).stdout.strip() == "yes", (verb, what)
        assert kubectl(
            "auth", "can-i", "create", "secrets", "-n", "default", "--as", sa, check=False
        ).stdout.strip() == "no"  # fmt: skip
        helm("uninstall", release, "-n", namespace)
        assert not exists(kubectl, f"validatingwebhookconfiguration/{name}")
        assert not exists(kubectl, "-n", namespace, f"service/{name}-webhook")
        assert exists(kubectl, f"crd/{crd}")  # helm.sh/resource-policy: keep
    finally:
        helm("uninstall", release, "-n", namespace, "--ignore-not-found")
        kubectl("delete", f"crd/{crd}", "--ignore-not-found", "--wait=false")
