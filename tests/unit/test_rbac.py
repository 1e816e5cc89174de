"""`python -m minop rbac`: least-privilege RBAC for the installed plugins."""

from __future__ import annotations

import pytest
import yaml

from minop.cli import main


def rbac(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["rbac", *args]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def resources(doc: dict) -> set[str]:
    return {r for rule in doc["rules"] for r in rule["resources"]}


def test_watched_namespaces_get_roles_and_cluster_scoped_rules_a_cluster_role(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = rbac(capsys, "-n", "team-a", "--operator-namespace", "ops")
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs
             if d["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    # a Role cannot grant a cluster-scoped resource: the API server would ignore it there
    assert "storageclasses" not in resources(roles[("team-a", "minop")])
    assert "redises" in resources(roles[("team-a", "minop")])
    assert resources(roles[(None, "minop")]) == {"storageclasses"}
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "minop"
    }  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "minop", "namespace": "ops"}]


def test_all_namespaces_get_one_cluster_role_with_every_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = rbac(capsys)
    [cluster] = [d for d in docs if d["kind"] == "ClusterRole"]
    assert {"storageclasses", "redises", "memcacheds", "nginxservers"} <= resources(cluster)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Role"] == ["minop-leader-election"]


def test_a_rule_two_plugins_need_is_granted_once(capsys: pytest.CaptureFixture[str]) -> None:
    """nginx and memcached both write ServiceMonitors (minop.kit.monitoring): not through
    a declared child, so through extra_rules, which must not repeat."""
    docs = rbac(capsys)
    [cluster] = [d for d in docs if d["kind"] == "ClusterRole"]
    monitors = [r for r in cluster["rules"] if "servicemonitors" in r["resources"]]
    assert monitors == [
        {
            "apiGroups": ["monitoring.coreos.com"],
            "resources": ["servicemonitors"],
            "verbs": ["get", "create", "patch", "delete"],
        }
    ]
