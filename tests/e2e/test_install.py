"""Installing minop: the generated manifests and bundle against a real API server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from minop.kit.e2e import incluster

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("plugin_crds")
CSV = REPO / "bundle" / "manifests" / "minop.clusterserviceversion.yaml"


def apply_config(kubectl) -> None:
    """``kubectl apply -k config`` (CRDs, RBAC, the operator in minop-system), with the
    operator watching only its own namespace so it leaves the other tests' objects alone
    where pods really run (kind)."""
    docs = [d for d in yaml.safe_load_all(kubectl("kustomize", str(REPO / "config")).stdout) if d]
    body = "\n---\n".join(json.dumps(d) for d in incluster.scoped(docs, ["minop-system"]))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=body)


@pytest.mark.apionly
def test_alm_examples_pass_the_crds_validation(namespace, kubectl):
    csv = yaml.safe_load(CSV.read_text())
    examples = json.loads(csv["metadata"]["annotations"]["alm-examples"])
    owned = {c["kind"] for c in csv["spec"]["customresourcedefinitions"]["owned"]}
    assert {e["kind"] for e in examples} == owned  # an example of every owned kind
    for example in examples:
        kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(example))


def test_plain_manifests_apply_and_the_operator_becomes_available(kubectl):
    # config/ targets minop-system; on KWOK no image is needed, on kind it was built here
    apply_config(kubectl)
    kubectl(
        "wait",
        "-n",
        "minop-system",
        "--for=condition=Available",
        "deployment/minop-operator",
        "--timeout=90s",
    )
    dep = json.loads(
        kubectl("get", "-n", "minop-system", "deployment/minop-operator", "-o", "json").stdout
    )
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "minop"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def _rules_of(kubectl, sa: str, ns: str) -> set[tuple[str, str, str]]:
    out = kubectl("auth", "can-i", "--list", f"--as={sa}", "-n", ns).stdout
    found = set()
    for line in out.splitlines()[1:]:
        groups = re.findall(r"\[([^\]]*)\]", line)
        if line.startswith(" ") or len(groups) < 3:
            continue  # non-resource URLs
        for verb in groups[-1].split():
            found.add((line.split()[0], verb, ""))
    return found


@pytest.mark.apionly
def test_service_account_has_only_the_derived_rbac(kubectl, namespace):
    """`kubectl auth can-i --list` shows the derived rules plus what everyone gets."""
    apply_config(kubectl)
    sa = "system:serviceaccount:minop-system:minop"
    nobody = "system:serviceaccount:minop-system:nobody-at-all"
    mine = _rules_of(kubectl, sa, namespace)
    everyone = _rules_of(kubectl, nobody, namespace)
    rbac_docs = list(yaml.safe_load_all((REPO / "config" / "rbac.yaml").read_text()))
    derived = set()
    for doc in rbac_docs:
        for rule in doc.get("rules") or []:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    base, _, sub = res.partition("/")
                    name = f"{base}.{group}" if group else base
                    name += f"/{sub}" if sub else ""
                    for verb in rule["verbs"]:
                        derived.add((name, verb, ""))
    extra = mine - everyone - derived
    assert not extra, f"permissions beyond the derived set: {sorted(extra)}"
    assert ("secrets", "list", "") in mine  # sanity: the derived rules are granted
    assert not any(r[0] == "*" or r[1] == "*" for r in mine - everyone)


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
    reason="needs root and unshare to mount the service-account files",
)
def test_operator_runs_in_cluster_as_its_service_account(kubectl, kubeconfig, namespace):
    """The in-cluster path: KUBERNETES_SERVICE_HOST/PORT and the token and ca.crt at the
    service-account path (bind-mounted in a private mount namespace), with only the
    generated RBAC; then a Memcached reconciles."""
    apply_config(kubectl)
    token = kubectl("create", "token", "minop", "-n", "minop-system", "--duration=1h").stdout
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = cfg["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    sa_dir = Path(tempfile.mkdtemp(prefix="minop-sa-"))
    (sa_dir / "token").write_text(token.strip())
    (sa_dir / "namespace").write_text("minop-system")
    import base64

    (sa_dir / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    target = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = (
        f"mkdir -p {target} && mount --bind {sa_dir} {target} && "
        f"exec {sys.executable} -m minop run -n {namespace} "
        "--health-addr 0 --metrics-addr 0 --log-format json"
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port)
    log = sa_dir / "operator.log"
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        # one object of every plugin's kind, created, reconciled and Ready
        kubectl(
            "create", "secret", "generic", "pw", "-n", namespace, "--from-literal=password=s3cret"
        )
        objects = [
            ("cache.minop.dev/v1alpha1", "Memcached", {"size": 2}),
            ("web.minop.dev/v1alpha1", "NginxServer", {"replicas": 2}),
            (
                "cache.minop.dev/v1alpha1",
                "Redis",
                {"replicas": 2, "passwordSecretRef": {"name": "pw"}},
            ),
        ]
        for api_version, kind, spec in objects:
            obj = {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": f"ic-{kind.lower()}"},
                "spec": spec,
            }
            kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
        for _, kind, _ in objects:
            kubectl(
                "wait",
                "--for=condition=Ready",
                f"{kind.lower()}/ic-{kind.lower()}",
                "-n",
                namespace,
                "--timeout=90s",
            )
        assert proc.poll() is None, log.read_text()
        for child in (
            "deployment/ic-memcached",
            "deployment/ic-nginxserver",
            "statefulset/ic-redis",
        ):
            obj = json.loads(kubectl("get", child, "-n", namespace, "-o", "json").stdout)
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "minop"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    errors = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "error"
    ]
    assert not errors, errors
