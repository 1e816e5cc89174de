"""Least privilege and secrets: the operator with only its generated RBAC (the
``auth can-i --list`` matrix goes into the results), every child pod admitted in a
``restricted`` PodSecurity namespace, no Secret value or token in any log line (DEBUG)
or Event, and an operator container that runs non-root on a read-only root filesystem."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaosops import OperatorProcess, items, wait_converged

from minop.kit.e2e import incluster
from minop.kit.testing import wait_for

REPO = Path(__file__).resolve().parents[2]
KINDS = ("memcacheds.cache.minop.dev", "nginxservers.web.minop.dev", "redises.cache.minop.dev")


def objects(password_secret: str) -> list[dict[str, Any]]:
    def o(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": f"sec-{kind.lower()}"}
        return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}

    return [
        o("cache.minop.dev/v1alpha1", "Memcached", {"size": 2}),
        o("web.minop.dev/v1alpha1", "NginxServer", {"replicas": 2}),
        o(
            "cache.minop.dev/v1alpha1",
            "Redis",
            {"replicas": 2, "passwordSecretRef": {"name": password_secret}},
        ),
    ]


def token_kubeconfig(kubeconfig: str, token: str, out: Path) -> Path:
    cfg = yaml.safe_load(Path(kubeconfig.split(":")[0]).read_text())
    user = cfg["contexts"][0]["context"]["user"]
    cfg["users"] = [{"name": user, "user": {"token": token}}]
    out.write_text(yaml.safe_dump(cfg))
    out.chmod(0o600)
    return out


def can_i_matrix(kubectl: Any, sa: str, ns: str) -> str:
    out = kubectl("auth", "can-i", "--list", f"--as={sa}", "-n", ns).stdout
    return "```\n" + out.strip() + "\n```"


def test_only_generated_rbac_and_no_secret_in_any_log_or_event(
    plugin_crds, kubectl, kubeconfig, api, namespace, tmp_path, figures
):
    """The operator runs as the ServiceAccount of config/rbac.yaml with a token, at DEBUG
    level, reconciling one object of every kind in a restricted PodSecurity namespace;
    a Redis password is set and then rotated. No password, rotated or not, and not the
    token, shows up in its logs or in any Event."""
    ns = namespace
    suffix = f"-{ns}"
    docs = [
        d
        for d in incluster.manifests(REPO / "config", ns, [ns], suffix)
        if d["kind"] != "Deployment"
    ]
    kubectl("apply", "--server-side", "-f", "-", input="\n---\n".join(map(json.dumps, docs)))
    try:
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
        sa_name = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
        sa = f"system:serviceaccount:{ns}:{sa_name}"
        figures.sections[f"`kubectl auth can-i --list` for {sa}"] = can_i_matrix(kubectl, sa, ns)
        token = kubectl("create", "token", sa_name, "-n", ns, "--duration=1h").stdout.strip()
        passwords = [f"pw-{secrets.token_hex(12)}", f"pw-{secrets.token_hex(12)}"]
        kubectl(
            "create", "secret", "generic", "pw", "-n", ns, f"--from-literal=password={passwords[0]}"
        )
        kc = token_kubeconfig(kubeconfig, token, tmp_path / "sa-kubeconfig")
        op = OperatorProcess(tmp_path, ["-n", ns], env={"KUBECONFIG": str(kc)})
        op.start()
        try:
            for obj in objects("pw"):
                kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))
            wait_converged(api, KINDS, ns, 180)
            secret = {"stringData": {"password": passwords[1]}}
            api.request("PATCH", f"/api/v1/namespaces/{ns}/secrets/pw", secret)
            wait_for(
                lambda: (
                    "passwordRotation"
                    not in (
                        api.request("GET", api.resource_path("redises", ns) + "/sec-redis").get(
                            "status"
                        )
                        or {}
                    )
                ),
                180,
                "the password rotation finished",
            )
            wait_converged(api, KINDS, ns, 180)
            assert not op.exited(), op.log_text()[-3000:]
            pods = items(api, "pods", ns)
            assert len(pods) >= 6, [p["metadata"]["name"] for p in pods]
            refused = [
                e["message"]
                for e in items(api, "events", ns)
                if "PodSecurity" in e.get("message", "") or e.get("reason") == "FailedCreate"
            ]
            assert not refused, refused
        finally:
            op.stop()
        logs = op.log_text()
        events = json.dumps(items(api, "events", ns))
        debug = [r for r in op.log_records() if r.get("level") == "debug"]
        assert debug, "no DEBUG line: the scan would prove nothing"
        leaks = []
        for what, value in [("password", p) for p in passwords] + [("token", token)]:
            forms = {value, base64.b64encode(value.encode()).decode()}
            for form in forms:
                if form in logs:
                    leaks.append(f"{what} in the operator log")
                if form in events:
                    leaks.append(f"{what} in an Event")
        # a JWT's signature alone is enough to misuse it
        if token.rsplit(".", 1)[-1] in logs:
            leaks.append("the token's signature in the operator log")
        figures.note(
            f"{len(logs.splitlines())} log lines ({len(debug)} at DEBUG) and the namespace's "
            "Events scanned for 2 passwords and the token"
        )
        assert not leaks, leaks
    finally:
        incluster.remove(kubectl, suffix)


def _containers(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every container in a Deployment or a CSV's deployments."""
    specs = []
    if doc.get("kind") == "Deployment":
        specs.append(doc["spec"]["template"]["spec"])
    if doc.get("kind") == "ClusterServiceVersion":
        for d in doc["spec"]["install"]["spec"]["deployments"]:
            specs.append(d["spec"]["template"]["spec"])
    return [(s, c) for s in specs for c in s.get("containers", []) + s.get("initContainers", [])]


@pytest.mark.chaos_fast
def test_operator_container_runs_non_root_on_a_read_only_root_filesystem() -> None:
    found = []
    for f in [
        *sorted((REPO / "config").glob("*.yaml")),
        *sorted((REPO / "bundle").rglob("*.yaml")),
    ]:
        for doc in yaml.safe_load_all(f.read_text()):
            for pod, c in _containers(doc or {}):
                found.append(f"{f.relative_to(REPO)}:{c['name']}")
                sc, psc = c.get("securityContext") or {}, pod.get("securityContext") or {}
                assert (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True, found[-1]
                assert sc.get("readOnlyRootFilesystem") is True, found[-1]
                assert sc.get("allowPrivilegeEscalation") is False, found[-1]
                assert "ALL" in (sc.get("capabilities") or {}).get("drop", []), found[-1]
                seccomp = sc.get("seccompProfile") or psc.get("seccompProfile") or {}
                assert seccomp.get("type") == "RuntimeDefault", found[-1]
    assert len(found) >= 2, found  # the plain Deployment and the CSV's
    # runAsNonRoot needs a numeric USER in the image, or the kubelet refuses to start it
    user = re.search(r"^USER\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert user and user.group(1).split(":")[0].isdigit() and user.group(1) != "0", user
