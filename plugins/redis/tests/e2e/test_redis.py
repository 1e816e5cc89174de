"""Redis on a StatefulSet: creation order, PVCs, stable DNS, Pending pods.

Observed through watches on a real API server with KWOK nodes (pods turn Ready
once scheduled; no process runs). The other test_redis_*.py files import the
helpers below; each file runs on its own xdist worker (``--dist loadfile``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import minop_redis.hooks as redis_hooks
import pytest

from minop.kit.e2e.fixtures import metric
from minop.kit.testing import OperatorRunner, wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")
REV = "controller-revision-hash"


@pytest.fixture(scope="session")
def redis_crd(kubectl: Callable[..., Any]) -> None:
    """The Redis CRD, as ``python -m minop crds --plugin redis`` prints it (only ours:
    another plugin's CRD being broken must not fail these tests)."""
    crds = subprocess.run(
        [sys.executable, "-m", "minop", "crds", "--plugin", "redis"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crds)
    kubectl("wait", "--for=condition=Established", "crd/redises.cache.minop.dev", "--timeout=60s")


# -- helpers shared by the test_redis*.py files -------------------------------------------


@contextmanager
def operator(ns: str) -> Iterator[OperatorRunner]:
    """The operator with only the Redis plugin, in-process, scoped to ``ns``."""
    with OperatorRunner({"redis": redis_hooks}, namespaces=[ns]) as op:
        yield op


def get(kubectl: Callable[..., Any], ns: str, what: str, missing_ok: bool = False) -> Any:
    r = kubectl("get", what, "-n", ns, "-o", "json", check=not missing_ok)
    return json.loads(r.stdout) if r.returncode == 0 else None


def apply_redis(kubectl: Callable[..., Any], ns: str, name: str, **spec: Any) -> Any:
    obj = {"apiVersion": "cache.minop.dev/v1alpha1", "kind": "Redis", "metadata": {"name": name}}
    return kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps({**obj, "spec": spec}), check=False
    )


def patch_redis(kubectl: Callable[..., Any], ns: str, name: str, spec: dict[str, Any]) -> Any:
    patch = json.dumps({"spec": spec})
    return kubectl("patch", f"redis/{name}", "-n", ns, "--type=merge", "-p", patch, check=False)


def wait_ready(kubectl: Callable[..., Any], ns: str, name: str, timeout: int = 180) -> None:
    """Ready within ``timeout`` s: generous, as real pods (kind) start one after another."""
    kubectl(
        "wait",
        "--for=condition=Ready",
        f"redis/{name}",
        "-n",
        ns,
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )


def condition(kubectl: Callable[..., Any], ns: str, name: str, ctype: str = "Ready") -> Any:
    conds = (get(kubectl, ns, f"redis/{name}").get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype), None)


def is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def live_pods(kubectl: Callable[..., Any], ns: str) -> dict[str, Any]:
    return {
        p["metadata"]["name"]: p
        for p in get(kubectl, ns, "pods")["items"]
        if not p["metadata"].get("deletionTimestamp")
    }


def revisions(kubectl: Callable[..., Any], ns: str) -> dict[str, str]:
    """Pod name -> controller-revision-hash of the running pods."""
    return {n: p["metadata"]["labels"].get(REV) for n, p in live_pods(kubectl, ns).items()}


def pvcs(kubectl: Callable[..., Any], ns: str, bound: bool = True) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in get(kubectl, ns, "pvc")["items"]
        if not bound or (p.get("status") or {}).get("phase") == "Bound"
    )


def pod_watch(watch: Callable[..., Any], ns: str) -> Any:
    """A recorder of the namespace's pod events from now on (Watch starts from its LIST's
    resourceVersion: nothing after this call is missed, however late it connects)."""
    return watch("pods", "-n", ns)


def added_since(w: Any, uids: set[str]) -> list[str]:
    """Names of the pods ADDED in the watch stream that are not among ``uids``."""
    return [
        o["metadata"]["name"]
        for t, o in w.events
        if t == "ADDED" and o["metadata"].get("uid") not in uids
    ]


def uids(kubectl: Callable[..., Any], ns: str) -> dict[str, str]:
    return {n: p["metadata"]["uid"] for n, p in live_pods(kubectl, ns).items()}


def names_ready_before_added(w: Any, first: int, last: int, name: str = "r") -> None:
    """In the watch stream, pod i+1 is ADDED only after pod i turned Ready."""
    for i in range(first + 1, last + 1):
        was_ready = w.first_index(
            lambda t, o, i=i: o["metadata"]["name"] == f"{name}-{i - 1}" and is_ready(o)
        )
        added = w.first_index(
            lambda t, o, i=i: t == "ADDED" and o["metadata"]["name"] == f"{name}-{i}"
        )
        assert was_ready is not None and added is not None, (i, was_ready, added)
        assert was_ready < added, f"{name}-{i} was created before {name}-{i - 1} was Ready"


def deleted_index(w: Any, name: str, uid: str) -> int | None:
    """First event at which the pod with ``uid`` started going away."""
    return w.first_index(
        lambda t, o: (
            o["metadata"]["name"] == name
            and o["metadata"].get("uid") == uid
            and (t == "DELETED" or bool(o["metadata"].get("deletionTimestamp")))
        )
    )


# -- tests ----------------------------------------------------------------------------------


def test_ordered_ready_creation_pvcs_and_stable_dns(namespace, kubectl, watch):
    ns = namespace
    # the pods must pass the restricted Pod Security Standard, or none is created
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    pods = pod_watch(watch, ns)
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=3).returncode == 0
        wait_ready(kubectl, ns, "r")
        wait_for(lambda: len(set(pods.names("ADDED"))) == 3, 10, "3 pods ADDED")
        assert pods.names("ADDED") == ["r-0", "r-1", "r-2"]
        names_ready_before_added(pods, 0, 2)
        wait_for(lambda: pvcs(kubectl, ns) == ["data-r-0", "data-r-1", "data-r-2"], 60, "Bound")

        live = live_pods(kubectl, ns)
        ips = {n: p["status"]["podIP"] for n, p in live.items()}

        def endpoints(service: str) -> dict[str | None, str]:
            out = {}
            for s in get(kubectl, ns, "endpointslices")["items"]:
                if s["metadata"]["labels"].get("kubernetes.io/service-name") == service:
                    for e in s.get("endpoints") or []:
                        out[e.get("hostname")] = e["addresses"][0]
            return out

        # stable DNS: <name>-<i>.r-headless.<ns>.svc resolves through these hostnames
        wait_for(lambda: endpoints("r-headless") == ips, 30, "headless EndpointSlices")
        wait_for(lambda: list(endpoints("r").values()) == [ips["r-0"]], 30, "client -> primary")

        st = get(kubectl, ns, "redis/r")["status"]
        assert st["primary"] == "r-0" and st["podNames"] == ["r-0", "r-1", "r-2"]
        assert st["readyReplicas"] == 3 and st["replicas"] == 3
        assert (
            st["currentRevision"] == st["updateRevision"] == live["r-0"]["metadata"]["labels"][REV]
        )
        # the /scale subresource's selector finds exactly the pods
        selected = kubectl("get", "pods", "-n", ns, "-l", st["selector"], "-o", "name").stdout
        assert sorted(selected.split()) == ["pod/r-0", "pod/r-1", "pod/r-2"]

        sts = get(kubectl, ns, "statefulset/r")
        assert sts["spec"]["serviceName"] == "r-headless"
        pod = sts["spec"]["template"]["spec"]
        assert (
            pod["securityContext"]["runAsUser"] == 999 and pod["securityContext"]["fsGroup"] == 999
        )
        env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
        assert env["REDIS_PRIMARY_HOST"] == f"r-0.r-headless.{ns}.svc"
        assert get(kubectl, ns, "pdb/r")["spec"]["maxUnavailable"] == 1
        assert condition(kubectl, ns, "r", "Progressing")["status"] == "False"


@pytest.mark.parametrize(
    ("policy", "expected"), [("OrderedReady", ["r-0"]), ("Parallel", ["r-0", "r-1", "r-2"])]
)
def test_pending_pods_ordered_ready_versus_parallel(namespace, kubectl, policy, expected):
    """Cordoning every node would disturb the tests running in parallel; a nodeSelector
    no node matches keeps this namespace's pods Pending just the same."""
    ns = namespace
    with operator(ns):
        nowhere = {"minop.dev/e2e-no-such-node": "true"}
        r = apply_redis(
            kubectl, ns, "r", replicas=3, podManagementPolicy=policy, nodeSelector=nowhere
        )
        assert r.returncode == 0, r.stderr
        wait_for(lambda: sorted(live_pods(kubectl, ns)) == expected, 30, f"{expected} created")
        marker_edit(kubectl, ns)  # the StatefulSet synced again: OrderedReady made no r-1
        pods = live_pods(kubectl, ns)
        assert sorted(pods) == expected
        assert all(p["status"].get("phase") == "Pending" for p in pods.values())
        ready = condition(kubectl, ns, "r")
        assert ready["status"] == "False" and ready["reason"] == "PodsNotReady"
        assert condition(kubectl, ns, "r", "Progressing")["status"] == "True"


def marker_edit(kubectl: Callable[..., Any], ns: str, name: str = "r") -> None:
    """Proof that nothing happened in a window: a spec edit that changes no pod (the
    StatefulSet's revisionHistoryLimit), waited for until the operator has recorded its
    generation and the StatefulSet controller has synced it. Both act on their events in
    order, so whatever the events before it were to cause has happened by then."""
    assert patch_redis(kubectl, ns, name, {"revisionHistoryLimit": 7}).returncode == 0
    generation = get(kubectl, ns, f"redis/{name}")["metadata"]["generation"]

    def synced() -> bool:
        cr, sts = get(kubectl, ns, f"redis/{name}"), get(kubectl, ns, f"statefulset/{name}")
        return (
            (cr.get("status") or {}).get("observedGeneration", 0) >= generation
            and sts["spec"].get("revisionHistoryLimit") == 7
            and (sts.get("status") or {}).get("observedGeneration") == sts["metadata"]["generation"]
        )

    wait_for(synced, 60, "the marker edit handled by the operator and the StatefulSet controller")


def converged(kubectl: Callable[..., Any], ns: str, name: str, replicas: int) -> bool:
    """The StatefulSet is done rolling out and the Redis status says so."""
    sts = get(kubectl, ns, f"statefulset/{name}")
    st, status = sts.get("status") or {}, get(kubectl, ns, f"redis/{name}").get("status") or {}
    return (
        st.get("observedGeneration") == sts["metadata"]["generation"]
        and st.get("readyReplicas") == st.get("availableReplicas") == replicas
        and st.get("currentRevision") == st.get("updateRevision")
        and status.get("readyReplicas") == replicas
    )


def writes(op: OperatorRunner) -> dict[str, float]:
    """The operator's non-GET requests so far, from its metrics."""
    out = {}
    for line in op.metrics().splitlines():
        if line.startswith("rest_client_requests_total{") and 'method="GET"' not in line:
            labels, value = line.rsplit(" ", 1)
            if 'method="WATCH"' not in labels:
                out[labels] = float(value)
    return out


def test_a_restart_over_a_converged_redis_writes_nothing(namespace, kubectl):
    """Quantities in the user's form (1024Mi, 0.1, a byte count) are written the way
    the API server returns them, so nothing looks changed after a restart."""
    ns = namespace
    kubectl("create", "secret", "generic", "pw", "-n", ns, "--from-literal=password=x")
    spec = {
        "replicas": 2,
        "passwordSecretRef": {"name": "pw"},
        "storage": {"size": "1024Mi"},
        "resources": {"requests": {"cpu": "0.1", "memory": "0.5Gi"}, "limits": {"memory": 2**30}},
        "maxMemory": "512Mi",
    }
    with operator(ns) as first:
        assert apply_redis(kubectl, ns, "r", **spec).returncode == 0
        wait_ready(kubectl, ns, "r")
        # converged: with real pods, readiness settles after Ready (e.g. the replica's sync)
        wait_for(lambda: converged(kubectl, ns, "r", 2), 90, "every pod ready and recorded")
        wait_for(lambda: metric(first, "workqueue_depth") == 0, 30, "queue drained")
    with operator(ns) as op:

        def handled() -> float:  # reconciles done, whatever their outcome
            return metric(op, "controller_runtime_reconcile_time_seconds_count", controller="redis")

        before = wait_for(handled, 30, "the startup resync's reconcile")
        # the marker: a user's annotation on the StatefulSet, a child event after every
        # event of the start-up, must be handled too; none of them may write
        kubectl("annotate", "statefulset/r", "-n", ns, "example.com/marker=1")
        wait_for(lambda: handled() > before, 30, "a reconcile after the annotation")
        assert writes(op) == {}
        assert condition(kubectl, ns, "r")["status"] == "True"
