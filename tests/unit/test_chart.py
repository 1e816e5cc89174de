"""charts/minop as Helm renders it (`helm template`, `helm lint`): the same operator, CRDs and
RBAC as config/, every value reaching the manifests, wrong values refused naming them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from minop.cli import main

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "minop"
ALL_OPTIONS = CHART / "ci" / "all-options-values.yaml"


@pytest.fixture(scope="session")
def helm() -> str:
    """Helm from the cache (hack/helm.sh builds it the first time; `make unit` does first)."""
    out = subprocess.run([REPO / "hack" / "helm.sh"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def helm_run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def render(helm: str, *args: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(kind, namespace, name) -> object of `helm template rel charts/minop -n ops <args>`."""
    p = helm_run(helm, "template", "rel", str(CHART), "-n", "ops", *args)
    assert p.returncode == 0, p.stderr
    docs = [d for d in yaml.safe_load_all(p.stdout) if d]
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def refusal(helm: str, *args: str) -> str:
    p = helm_run(helm, "template", "rel", str(CHART), "-n", "ops", *args)
    assert p.returncode != 0, f"helm accepted {args}"
    return p.stderr


def config(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((REPO / "config" / name).read_text()))


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def rule_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_default_values_install_the_operator_of_config_with_a_cluster_role(helm: str) -> None:
    objs = render(helm)
    assert sorted(objs) == [
        ("ClusterRole", "", "rel-minop"),
        ("ClusterRoleBinding", "", "rel-minop"),
        ("Deployment", "ops", "rel-minop"),
        ("Role", "ops", "rel-minop-leader-election"),
        ("RoleBinding", "ops", "rel-minop-leader-election"),
        ("Service", "ops", "rel-minop-metrics"),
        ("ServiceAccount", "ops", "rel-minop"),
    ]
    # the same pod as config/ (one source): image, probes, resources, security, volumes
    [plain] = config("deployment.yaml")
    want = plain["spec"]["template"]["spec"]
    got = objs[("Deployment", "ops", "rel-minop")]["spec"]["template"]["spec"]
    for key in ("securityContext", "terminationGracePeriodSeconds", "volumes"):
        assert got[key] == want[key], key
    [wc], [gc] = want["containers"], got["containers"]
    for key in ("image", "ports", "livenessProbe", "readinessProbe", "resources"):
        assert gc[key] == wc[key], key
    assert gc["securityContext"] == wc["securityContext"]
    assert gc["volumeMounts"] == wc["volumeMounts"]
    env = env_of(objs[("Deployment", "ops", "rel-minop")])
    assert env["MINOP_NAMESPACE"] == ""  # all namespaces
    assert env["MINOP_PLUGINS"] == "memcached,nginx,redis"
    assert env["MINOP_LEADER_ELECT"] == "true"
    assert env["MINOP_LEADER_ELECTION_ID"] == "rel-minop"
    # the same rules as config/, to the ServiceAccount the pod runs as
    plain_role = next(d for d in config("rbac.yaml") if d["kind"] == "ClusterRole")
    role = objs[("ClusterRole", "", "rel-minop")]
    assert rule_set(role["rules"]) == rule_set(plain_role["rules"])
    binding = objs[("ClusterRoleBinding", "", "rel-minop")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-minop", "namespace": "ops"}
    ]
    assert got["serviceAccountName"] == "rel-minop"
    lease = objs[("Role", "ops", "rel-minop-leader-election")]
    assert rule_set(lease["rules"]) == {
        ("coordination.k8s.io", "leases", v) for v in ("get", "list", "create", "update", "delete")
    }


def test_watched_namespaces_get_roles_and_cluster_scoped_rules_stay_in_a_cluster_role(
    helm: str,
) -> None:
    objs = render(helm, "--set", "watchNamespaces={team-a,team-b}")
    assert env_of(objs[("Deployment", "ops", "rel-minop")])["MINOP_NAMESPACE"] == "team-a,team-b"
    for ns in ("team-a", "team-b"):
        rules = rule_set(objs[("Role", ns, "rel-minop")]["rules"])
        assert ("apps", "statefulsets", "create") in rules
        assert not any(r == "storageclasses" for _, r, _ in rules)  # a Role cannot grant it
        assert objs[("RoleBinding", ns, "rel-minop")]["roleRef"]["kind"] == "Role"
    # only what a Role cannot hold (redis reads StorageClasses for volume expansion)
    cluster = objs[("ClusterRole", "", "rel-minop")]
    assert rule_set(cluster["rules"]) == {("storage.k8s.io", "storageclasses", "get")}


def test_a_disabled_plugin_is_not_served_and_gets_no_rbac(helm: str) -> None:
    objs = render(helm, "--set", "plugins.redis=false", "--set", "watchNamespaces={team-a}")
    env = env_of(objs[("Deployment", "ops", "rel-minop")])
    assert env["MINOP_PLUGINS"] == "memcached,nginx"
    resources = {r for _, r, _ in rule_set(objs[("Role", "team-a", "rel-minop")]["rules"])}
    assert "memcacheds" in resources and "nginxservers" in resources
    assert "redises" not in resources and "persistentvolumeclaims" not in resources
    assert ("ClusterRole", "", "rel-minop") not in objs  # nothing cluster-scoped is left
    assert "plugins: enable at least one plugin" in refusal(
        helm, *[a for p in ("memcached", "nginx", "redis") for a in ("--set", f"plugins.{p}=false")]
    )


def test_every_option_reaches_the_manifests(helm: str) -> None:
    values = yaml.safe_load(ALL_OPTIONS.read_text())
    objs = render(helm, "-f", str(ALL_OPTIONS))
    dep = objs[("Deployment", "ops", "minop-ci")]
    pod = dep["spec"]["template"]
    [c] = pod["spec"]["containers"]
    assert dep["spec"]["replicas"] == 2
    assert c["image"] == "registry.example.com/minop:dev"
    assert c["imagePullPolicy"] == "Always"
    assert c["resources"] == values["resources"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["serviceAccountName"] == "minop-ci"
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod["spec"][key] == values[key], key
    assert pod["metadata"]["annotations"] == values["podAnnotations"]
    assert pod["metadata"]["labels"]["example.com/tier"] == "operators"
    env = env_of(dep)
    assert env["MINOP_LEADER_ELECTION_ID"] == "minop-ci"
    assert env["MINOP_WORKERS"] == "4"
    assert (env["MINOP_LOG_FORMAT"], env["MINOP_LOG_LEVEL"]) == ("text", "DEBUG")
    assert env["MINOP_QPS"] == "50"
    sa = objs[("ServiceAccount", "ops", "minop-ci")]
    assert sa["metadata"]["annotations"] == {"example.com/a": "b"}
    monitor = objs[("ServiceMonitor", "ops", "minop-ci")]
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = objs[("Service", "ops", "minop-ci-metrics")]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_metrics_off_removes_the_port_the_service_and_the_endpoint(helm: str) -> None:
    objs = render(helm, "--set", "metrics.enabled=false")
    dep = objs[("Deployment", "ops", "rel-minop")]
    assert env_of(dep)["MINOP_METRICS_ADDR"] == "0"
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert [p["name"] for p in c["ports"]] == ["health"]
    assert not [k for k in objs if k[0] in ("Service", "ServiceMonitor")]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--set", "replicas=two"], "/replicas"),
        (["--set", "replica=2"], "replica"),
        (["--set", "plugins.mysql=true"], "mysql"),
        (["--set", "logLevel=LOUD"], "/logLevel"),
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
        (["--set", "replicas=2", "--set", "leaderElection.enabled=false"], "replicas: more than 1"),
    ],
)
def test_a_wrong_value_is_refused_naming_it(helm: str, args: list[str], named: str) -> None:
    assert named in refusal(helm, *args)


def test_helm_lint_is_clean_with_the_default_and_every_option(helm: str) -> None:
    for values in ([], ["-f", str(ALL_OPTIONS)]):
        p = helm_run(helm, "lint", "--strict", str(CHART), *values)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "0 chart(s) failed" in p.stdout


def test_the_crds_are_the_bundles() -> None:
    bundle = {p.name: p.read_text() for p in (REPO / "bundle" / "manifests").glob("*_*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "crds").iterdir()}
    assert chart == bundle


def test_an_image_without_a_tag_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bundle", "--output", str(tmp_path / "b"), "--manifests", str(tmp_path / "c"),
            "--chart", str(tmp_path / "chart"), "--image", "quay.io/minop/minop",
            "--created-at", "2026-11-25T07:03:13+00:00", "--scorecard-image", "x:1"]  # fmt: skip
    assert main(args) == 2
    assert "image: 'quay.io/minop/minop' has no tag" in capsys.readouterr().err
    assert not (tmp_path / "chart").exists()


def test_the_notes_say_what_to_do_next_for_the_enabled_plugins(helm: str) -> None:
    p = helm_run(
        helm, "install", "--dry-run=client", "rel", str(CHART), "-n", "ops",
        "--set", "plugins.redis=false", "--set", "watchNamespaces={team-a}",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    notes = p.stdout[p.stdout.index("NOTES:") :]
    assert "Plugins: memcached,nginx\nWatched namespaces: team-a\n" in notes
    assert "kubectl -n ops rollout status deployment/rel-minop" in notes
    assert "kind: Memcached" in notes and "kind: NginxServer" in notes
    assert "kind: Redis" not in notes
    assert "\nEOF\n" in notes  # the here-documents paste into a shell as they are
    assert "port-forward svc/rel-minop-metrics 8080" in notes
