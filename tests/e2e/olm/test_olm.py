"""minop through OLM: installed from a catalog, upgraded through its channel, uninstalled.

hack/olm.sh runs olm-operator and catalog-operator on the host and serves the catalog with
``opm serve`` (hack/e2e.sh starts them for this directory). Where pods run (kind) the
operator's own image, installed by OLM, reconciles. On KWOK the operator's pod only looks
Running, so an in-process operator does the reconciling, authenticated as the ServiceAccount
OLM created: with exactly the permissions the CSV asked for.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from minop.kit.e2e.fixtures import Kubectl, cluster_runs_pods
from minop.kit.testing import OperatorRunner

REPO = Path(__file__).resolve().parents[3]

OLM_SH = REPO / "hack" / "olm.sh"
BUNDLE = REPO / "bundle"
CSV = yaml.safe_load((BUNDLE / "manifests" / "minop.clusterserviceversion.yaml").read_text())
OLD = CSV["metadata"]["name"]
OPERATOR = "deployment/minop-operator"
# One small object of every kind, and the resources their children are.
OBJECTS = {
    ("cache.minop.dev/v1alpha1", "Memcached", "mc"): {"size": 1},
    ("web.minop.dev/v1alpha1", "NginxServer", "web"): {"replicas": 1},
    ("cache.minop.dev/v1alpha1", "Redis", "rd"): {"replicas": 1, "storage": {"size": "64Mi"}},
}
KINDS = {"Memcached", "NginxServer", "Redis"}
CHILD_RESOURCES = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets"


def olm_sh(*args: str) -> None:
    r = subprocess.run([str(OLM_SH), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"hack/olm.sh {' '.join(args)} failed:\n{r.stderr}"


def get(kubectl: Kubectl, ns: str, what: str) -> Any:
    return json.loads(kubectl("get", what, "-n", ns, "-o", "json").stdout)


def wait(kubectl: Kubectl, ns: str, what: str, cond: str, seconds: int = 240) -> None:
    """``kubectl wait`` (a watch, not a poll); on failure the state of OLM's objects."""
    r = kubectl(
        "wait",
        "-n",
        ns,
        what,
        f"--for={cond}",
        f"--timeout={seconds}s",
        check=False,
        timeout=seconds + 30,
    )
    if r.returncode != 0:
        state = kubectl(
            "get",
            "-n",
            ns,
            "subscriptions,installplans,csv,deployments,pods",
            "-o",
            "wide",
            check=False,
        ).stdout
        raise AssertionError(f"{what}: not {cond} after {seconds}s: {r.stderr}\n{state}")


def installed(kubectl: Kubectl, ns: str, csv: str) -> None:
    """The Subscription reached ``csv`` through an InstallPlan, the CSV Succeeded (so its
    Deployment is Available: the operator's readiness probe passed where pods run)."""
    wait(kubectl, ns, "subscription/minop", f"jsonpath={{.status.installedCSV}}={csv}")
    plan = get(kubectl, ns, "subscription/minop")["status"]["installPlanRef"]["name"]
    wait(kubectl, ns, f"installplan/{plan}", "jsonpath={.status.phase}=Complete")
    wait(kubectl, ns, f"csv/{csv}", "jsonpath={.status.phase}=Succeeded")
    wait(kubectl, ns, OPERATOR, "condition=Available")


def apply_objects(kubectl: Kubectl, ns: str) -> None:
    docs = [
        {"apiVersion": av, "kind": kind, "metadata": {"name": name}, "spec": spec}
        for (av, kind, name), spec in OBJECTS.items()
    ]
    kubectl("apply", "-n", ns, "-f", "-", input="\n---\n".join(map(json.dumps, docs)))


def all_ready(kubectl: Kubectl, ns: str) -> None:
    for _, kind, name in OBJECTS:
        wait(kubectl, ns, f"{kind.lower()}/{name}", "condition=Ready", 180)


def uids(kubectl: Kubectl, ns: str) -> dict[str, str]:
    """kind/name -> uid of every custom resource and every object they own."""
    objs = get(kubectl, ns, ",".join(sorted(k.lower() for k in KINDS)))["items"]
    objs += [
        o
        for o in get(kubectl, ns, CHILD_RESOURCES)["items"]
        if any(ref["kind"] in KINDS for ref in o["metadata"].get("ownerReferences") or [])
    ]
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["uid"] for o in objs}


@contextlib.contextmanager
def reconciler(kubectl: Kubectl, ns: str, tmp: Path) -> Iterator[None]:
    """Where pods run, OLM's operator reconciles. On KWOK: an in-process operator with the
    token of the ServiceAccount OLM made for it."""
    if cluster_runs_pods(os.environ["KUBECONFIG"]):
        yield
        return
    token = kubectl("create", "token", "minop", "-n", ns, "--duration=1h").stdout.strip()
    tmp.mkdir()
    (tmp / "token").write_text(token)
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    ctx = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == ctx["cluster"])
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "minop", "user": {"tokenFile": str(tmp / "token")}}],
        "contexts": [{"name": "olm", "context": {"cluster": cluster["name"], "user": "minop"}}],
        "current-context": "olm",
    }
    (tmp / "kubeconfig").write_text(yaml.safe_dump(cfg))
    with OperatorRunner(namespaces=[ns], kubeconfig=str(tmp / "kubeconfig"), name="olm-sa"):
        yield


def next_bundle(tmp: Path) -> Path:
    """The next version's bundle, as `python -m minop bundle` makes it, replacing this one."""
    version, image = os.environ["MINOP_OLM_NEXT_VERSION"], os.environ["MINOP_OLM_NEXT_IMAGE"]
    scorecard = yaml.safe_load((BUNDLE / "tests" / "scorecard" / "config.yaml").read_text())
    out = tmp / f"bundle-{version}"
    subprocess.run(
        [sys.executable, "-m", "minop", "bundle", "--output", str(out),
         "--manifests", str(tmp / f"config-{version}"), "--version", version, "--image", image,
         "--created-at", CSV["metadata"]["annotations"]["createdAt"],
         "--scorecard-image", scorecard["stages"][0]["tests"][0]["image"], "--replaces", OLD],
        check=True,
    )  # fmt: skip
    return out


def test_olm_installs_upgrades_and_uninstalls_without_touching_user_objects(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    olm_sh("catalog", str(BUNDLE))
    kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
         "metadata": {"name": "minop"}, "spec": {"targetNamespaces": [ns]}},
        {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
         "metadata": {"name": "minop"},
         "spec": {"name": "minop", "channel": "alpha", "source": "minop",
                  "sourceNamespace": "olm", "installPlanApproval": "Automatic"}},
    ]))  # fmt: skip
    installed(kubectl, ns, OLD)

    with reconciler(kubectl, ns, tmp_path / "old"):
        apply_objects(kubectl, ns)
        all_ready(kubectl, ns)
    before = uids(kubectl, ns)
    assert {k.split("/")[0] for k in before} >= {*KINDS, "Deployment", "StatefulSet"}

    # The next version joins the channel; the Subscription (Automatic) upgrades by itself.
    new = f"minop.v{os.environ['MINOP_OLM_NEXT_VERSION']}"
    olm_sh("catalog", str(BUNDLE), str(next_bundle(tmp_path)))
    installed(kubectl, ns, new)
    wait(kubectl, ns, f"csv/{OLD}", "delete")
    image = get(kubectl, ns, OPERATOR)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == os.environ["MINOP_OLM_NEXT_IMAGE"]

    with reconciler(kubectl, ns, tmp_path / "new"):
        all_ready(kubectl, ns)
        assert uids(kubectl, ns) == before  # nothing re-created by the upgrade
        # ...and the upgraded operator still acts on them
        kubectl("patch", "-n", ns, "memcached/mc", "--type=merge", "-p", '{"spec":{"size":2}}')
        wait(kubectl, ns, "deployment/mc", "jsonpath={.spec.replicas}=2", 120)
        wait(kubectl, ns, "memcached/mc", "condition=Ready", 180)
    after = uids(kubectl, ns)  # size 2 adds a PodDisruptionBudget
    assert after.items() >= before.items()

    # Uninstall through OLM: the operator goes, the user's objects and children stay.
    kubectl("delete", "-n", ns, "subscription/minop", f"csv/{new}")
    wait(kubectl, ns, OPERATOR, "delete", 120)
    wait(kubectl, ns, "serviceaccount/minop", "delete", 60)
    assert uids(kubectl, ns) == after
    for crd in (
        "memcacheds.cache.minop.dev",
        "nginxservers.web.minop.dev",
        "redises.cache.minop.dev",
    ):
        kubectl("get", "crd", crd)

    # docs/install.md's removal: finalizers first (no operator runs them any more), then delete.
    subprocess.run([sys.executable, "-m", "minop", "remove-finalizers", "-n", ns], check=True)
    kubectl("delete", "-n", ns, "memcached/mc", "nginxserver/web", "redis/rd", "--timeout=60s")
