"""charts/minop on a real API server: `helm install` creates the operator's objects (on KWOK
no pod runs a program, so this asserts on the API objects; tests/e2e on kind runs the
operator), `helm upgrade` rolls the Deployment, `helm uninstall` removes the operator and
leaves the CRDs and the custom resources. Every option is applied with --dry-run=server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from minop.kit.e2e.pods import Kubectl

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "minop"
VALUES = (CHART / "values.yaml").read_text()
Helm = Callable[..., str]


@pytest.fixture
def helm(kubeconfig: str, tmp_path: Path) -> Helm:
    """``helm(*args)``: its output; raises with stderr when it fails. Its config and cache
    in tmp_path, so nothing of the user's Helm is read or written."""
    binary = subprocess.run(
        [REPO / "hack" / "helm.sh"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        **{f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CONFIG", "CACHE", "DATA")},
    }

    def run(*args: str) -> str:
        p = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, f"helm {' '.join(args)}: {p.stderr}"
        return p.stdout

    return run


def get(kubectl: Kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", "-o", "json", *args).stdout)


def exists(kubectl: Kubectl, *args: str) -> bool:
    return kubectl("get", "--ignore-not-found", "-o", "name", *args).stdout.strip() != ""


def test_install_upgrade_uninstall(
    helm: Helm, kubectl: Kubectl, namespace: str, plugin_crds: None
) -> None:
    release = namespace  # unique: its ClusterRole is cluster-wide
    name = f"{release}-minop"[:63].rstrip("-")
    notes = helm(
        "install", release, str(CHART), "-n", namespace,
        "--set", f"watchNamespaces={{{namespace}}}", "--set", "workers=3",
    )  # fmt: skip
    assert f"kubectl -n {namespace} rollout status deployment/{name}" in notes
    dep = get(kubectl, "-n", namespace, f"deployment/{name}")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    # the chart's default image: on kind it is the one built and loaded here (nothing pulls)
    assert c["image"] == "{repository}:{tag}".format(**yaml.safe_load(VALUES)["image"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert (env["MINOP_NAMESPACE"], env["MINOP_WORKERS"]) == (namespace, "3")
    assert get(kubectl, "-n", namespace, f"serviceaccount/{name}")
    role = get(kubectl, "-n", namespace, f"role/{name}")
    assert any("memcacheds" in r["resources"] for r in role["rules"])
    assert get(kubectl, "-n", namespace, f"rolebinding/{name}")["subjects"][0]["name"] == name
    assert get(kubectl, f"clusterrole/{name}")["rules"][0]["resources"] == ["storageclasses"]
    assert get(kubectl, "-n", namespace, f"service/{name}-metrics")
    # the ServiceAccount may do what the operator needs in the namespace, and no more
    sa = f"system:serviceaccount:{namespace}:{name}"
    can = kubectl(
        "auth", "can-i", "create", "statefulsets", "-n", namespace, "--as", sa, check=False
    )
    assert can.stdout.strip() == "yes"
    cannot = kubectl(
        "auth", "can-i", "create", "statefulsets", "-n", "default", "--as", sa, check=False
    )
    assert cannot.stdout.strip() == "no"

    memcached = {
        "apiVersion": "cache.minop.dev/v1alpha1",
        "kind": "Memcached",
        "metadata": {"name": "kept", "namespace": namespace},
        "spec": {"size": 1},
    }
    kubectl("apply", "-f", "-", input=json.dumps(memcached))

    generation = dep["metadata"]["generation"]
    helm(
        "upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--set", "logLevel=DEBUG"
    )
    dep = get(kubectl, "-n", namespace, f"deployment/{name}")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert {"name": "MINOP_LOG_LEVEL", "value": "DEBUG"} in c["env"]
    assert dep["metadata"]["generation"] > generation  # a new pod template: the operator rolls
    assert {"name": "MINOP_NAMESPACE", "value": namespace} in c["env"]  # kept

    helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    for what in (f"deployment/{name}", f"serviceaccount/{name}", f"role/{name}",
                 f"rolebinding/{name}", f"service/{name}-metrics"):  # fmt: skip
        assert not exists(kubectl, "-n", namespace, what), what
    assert not exists(kubectl, f"clusterrole/{name}")
    # Helm never deletes CRDs, so the custom resources stay (charts/minop/README.md)
    for crd in CHART.joinpath("crds").iterdir():
        assert exists(kubectl, f"crd/{yaml.safe_load(crd.read_text())['metadata']['name']}")
    assert get(kubectl, "-n", namespace, "memcached/kept")["spec"]["size"] == 1


@pytest.mark.apionly
def test_every_option_is_accepted_by_the_api_server(
    helm: Helm, kubectl: Kubectl, namespace: str, plugin_crds: None
) -> None:
    """The all-options values (charts/minop/ci/) with the watched namespace set to one that
    exists, applied with --dry-run=server. The cluster has no Prometheus Operator, so the
    ServiceMonitor is left out (tests/unit/test_chart.py checks its shape)."""
    for values in ([], ["-f", str(CHART / "ci" / "all-options-values.yaml")]):
        out = helm(
            "template", namespace, str(CHART), "-n", namespace, *values,
            "--set", f"watchNamespaces={{{namespace}}}",
            "--set", f"fullnameOverride={namespace}",
        )  # fmt: skip
        docs = [d for d in yaml.safe_load_all(out) if d and d["kind"] != "ServiceMonitor"]
        assert {d["kind"] for d in docs} >= {"Deployment", "Role", "ClusterRole", "Service"}
        applied = kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs)
        ).stdout
        assert applied.count("(server dry run)") == len(docs), applied


@pytest.mark.realpods
def test_the_chart_runs_the_operator_an_upgrade_rolls_it_and_uninstall_keeps_the_objects(
    helm: Helm, kubectl: Kubectl, namespace: str, plugin_crds: None
) -> None:
    """On kind: the chart's operator (the locally built image) turns Ready and reconciles one
    object of each kind with real pods; an upgrade rolls it; uninstall leaves the objects."""
    release, ns = namespace, namespace
    name = f"{release}-minop"[:63].rstrip("-")
    helm(
        "install", release, str(CHART), "-n", ns, "--set", f"watchNamespaces={{{ns}}}",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    objects = {
        "memcached/mc": {"apiVersion": "cache.minop.dev/v1alpha1", "kind": "Memcached",
                         "metadata": {"name": "mc"}, "spec": {"size": 1}},
        "nginxserver/web": {"apiVersion": "web.minop.dev/v1alpha1", "kind": "NginxServer",
                            "metadata": {"name": "web"}, "spec": {"replicas": 1}},
        "redis/db": {"apiVersion": "cache.minop.dev/v1alpha1", "kind": "Redis",
                     "metadata": {"name": "db"}, "spec": {"replicas": 1}},
    }  # fmt: skip
    for obj in objects.values():
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))
    for what in objects:
        kubectl("wait", "-n", ns, "--for=condition=Ready", what, "--timeout=240s", timeout=270)

    selector = f"app.kubernetes.io/instance={release}"
    before = {r["metadata"]["name"] for r in get(kubectl, "-n", ns, "rs", "-l", selector)["items"]}
    helm(
        "upgrade", release, str(CHART), "-n", ns, "--reuse-values", "--set", "logLevel=DEBUG",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    after = {r["metadata"]["name"] for r in get(kubectl, "-n", ns, "rs", "-l", selector)["items"]}
    assert after - before, "the upgrade made no new ReplicaSet: the operator did not roll"
    dep = get(kubectl, "-n", ns, f"deployment/{name}")
    assert dep["status"].get("updatedReplicas") == dep["status"].get("availableReplicas") == 1
    # the rolled operator reconciles: a spec change reaches the pods
    kubectl("patch", "-n", ns, "memcached/mc", "--type=merge", "-p", '{"spec":{"size":2}}')
    kubectl("wait", "-n", ns, "--for=jsonpath={.status.readyReplicas}=2", "memcached/mc",
            "--timeout=180s", timeout=210)  # fmt: skip

    helm("uninstall", release, "-n", ns, "--wait", "--timeout", "120s")
    assert not exists(kubectl, "-n", ns, f"deployment/{name}")
    for what in objects:  # the objects and their children stay, unreconciled
        assert exists(kubectl, "-n", ns, what), what
    assert exists(kubectl, "-n", ns, "deployment/mc")
    assert exists(kubectl, "-n", ns, "statefulset/db")
