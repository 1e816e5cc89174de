"""Checks shared by the e2e tests of the Deployment-based plugins (test_memcached.py,
test_nginx.py): reading and applying objects with kubectl, ownership, restricted pod
templates, scaling, image rolls, drift repair, admission cases generated from the CRD
schema, and the writes the audit log recorded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from minop.kit.e2e.fixtures import AuditLog, Kubectl
from minop.kit.testing import wait_for

INSTANCE = "app.kubernetes.io/instance"


def get(kubectl: Kubectl, ns: str, what: str, missing_ok: bool = False) -> Any:
    r = kubectl("get", what, "-n", ns, "-o", "json", check=not missing_ok)
    return json.loads(r.stdout) if r.returncode == 0 else None


def apply_cr(
    kubectl: Kubectl, ns: str, api_version: str, kind: str, name: str, spec: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """``kubectl apply`` a custom resource; returns the CompletedProcess (no check)."""
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)


def patch_spec(kubectl: Kubectl, ns: str, what: str, spec: dict[str, Any]) -> None:
    kubectl("patch", what, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def live_pods(kubectl: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    """The instance's pods that are not terminating, sorted by name."""
    items = get(kubectl, ns, "pods")["items"]
    return sorted(
        (
            p
            for p in items
            if p["metadata"].get("labels", {}).get(INSTANCE) == name
            and not p["metadata"].get("deletionTimestamp")
        ),
        key=lambda p: p["metadata"]["name"],
    )


def schedulable_nodes(kubectl: Kubectl) -> int:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return sum(
        1
        for n in nodes
        if not n["spec"].get("unschedulable")
        and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
    )


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    return next(
        (c for c in (obj or {}).get("status", {}).get("conditions", []) if c["type"] == ctype), {}
    )


def restricted(kubectl: Kubectl, ns: str) -> None:
    """Enforce the restricted Pod Security Standard: a non-compliant pod is never created."""
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")


def assert_owned(kubectl: Kubectl, ns: str, owner: dict[str, Any], *children: str) -> None:
    for what in children:
        refs = get(kubectl, ns, what)["metadata"].get("ownerReferences", [])
        assert [(r["uid"], r.get("controller")) for r in refs] == [
            (owner["metadata"]["uid"], True)
        ], what


def assert_restricted_pod_template(dep: dict[str, Any]) -> None:
    pod = dep["spec"]["template"]["spec"]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


def replicasets(kubectl: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    """ReplicaSets of Deployment ``name`` that still have pods wanted."""
    items = get(kubectl, ns, "replicasets")["items"]
    return [
        rs
        for rs in items
        if any(r["name"] == name for r in rs["metadata"].get("ownerReferences", []))
        and rs["spec"].get("replicas", 0) > 0
    ]


def wait_rolled(
    kubectl: Kubectl, ns: str, name: str, old_rs: set[str], pred: Callable[[dict[str, Any]], bool]
) -> None:
    """Wait until every pod of ``name`` comes from a new ReplicaSet and matches ``pred``."""

    def done() -> bool:
        rs = replicasets(kubectl, ns, name)
        pods = live_pods(kubectl, ns, name)
        return (
            len(rs) == 1
            and rs[0]["metadata"]["name"] not in old_rs
            and bool(pods)
            and all(pred(p) for p in pods)
        )

    wait_for(done, 60, f"{name}'s pods rolled to a new ReplicaSet")


def rs_names(kubectl: Kubectl, ns: str, name: str) -> set[str]:
    return {rs["metadata"]["name"] for rs in replicasets(kubectl, ns, name)}


Settled = Callable[[Any, str, str, int], bool]  # (kubectl, ns, name, pods): Ready and true


def check_scale(
    kubectl: Kubectl, ns: str, kind: str, name: str, field: str, settled: Settled
) -> None:
    """Scale through the spec's ``field`` to 3 pods, then through the scale subresource
    to 1, where the PDB goes."""
    patch_spec(kubectl, ns, f"{kind}/{name}", {field: 3})
    wait_for(lambda: settled(kubectl, ns, name, 3), 60, "3 pods")
    kubectl("scale", f"{kind}/{name}", "-n", ns, "--replicas=1")
    wait_for(lambda: settled(kubectl, ns, name, 1), 60, "1 pod")
    wait_for(lambda: get(kubectl, ns, f"pdb/{name}", missing_ok=True) is None, 20, "PDB removed")


def check_image_roll(
    kubectl: Kubectl, ns: str, kind: str, name: str, image: str, settled: Settled
) -> None:
    """An image change rolls the (one) pod onto a new ReplicaSet."""
    old = rs_names(kubectl, ns, name)
    patch_spec(kubectl, ns, f"{kind}/{name}", {"image": image})
    wait_rolled(kubectl, ns, name, old, lambda p: p["spec"]["containers"][0]["image"] == image)
    wait_for(lambda: settled(kubectl, ns, name, 1), 60, "settled after the image roll")


def check_drift_repair(kubectl: Kubectl, ns: str, name: str, deleted: str) -> None:
    """A child deleted comes back; a field we own, changed by another field manager, is
    reverted within 10 s; an annotation a user added survives."""
    uid = get(kubectl, ns, deleted)["metadata"]["uid"]
    kubectl("delete", deleted, "-n", ns)
    wait_for(
        lambda: (
            (get(kubectl, ns, deleted, missing_ok=True) or {"metadata": {"uid": uid}})["metadata"][
                "uid"
            ]
            != uid
        ),
        20,
        f"{deleted} recreated",
    )
    want = get(kubectl, ns, f"deployment/{name}")["spec"]["replicas"]
    kubectl("annotate", f"deployment/{name}", "-n", ns, "team=platform")
    kubectl(
        "patch",
        f"deployment/{name}",
        "-n",
        ns,
        "--field-manager=intruder",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": want + 3}}),
    )
    wait_for(
        lambda: get(kubectl, ns, f"deployment/{name}")["spec"]["replicas"] == want,
        10,
        "replicas reverted",
    )
    dep = get(kubectl, ns, f"deployment/{name}")
    assert dep["metadata"]["annotations"]["team"] == "platform"


def check_invalid(
    kubectl: Kubectl, ns: str, api_version: str, kind: str, spec: dict[str, Any], field: str
) -> str:
    r = apply_cr(kubectl, ns, api_version, kind, "bad", spec)
    assert r.returncode != 0, f"accepted: {spec}"
    assert field in r.stderr, r.stderr
    return r.stderr


def check_valid(
    kubectl: Kubectl, ns: str, api_version: str, kind: str, spec: dict[str, Any]
) -> None:
    """The API server admits ``spec`` (a server-side dry run: nothing is stored)."""
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "ok"}, "spec": spec}
    r = kubectl(
        "apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(obj), check=False
    )
    assert r.returncode == 0, f"refused: {spec}: {r.stderr}"


def nested(path: str, value: Any) -> dict[str, Any]:
    """``nested("service.port", 80)`` is ``{"service": {"port": 80}}``."""
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


def field_cases(definition: dict[str, Any], path: str) -> tuple[list[Any], list[Any]]:
    """(valid, invalid) values of the spec field ``path`` (dotted), read from its CRD
    schema: an integer's bounds and one past each, an enum's values and one that is not."""
    schema = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for part in path.split("."):
        schema = schema["properties"][part]
    if "enum" in schema:
        return list(schema["enum"]), [f"Not{schema['enum'][0]}", schema["enum"][0].lower()]
    if schema.get("type") == "integer":
        valid, invalid = [], []
        if "minimum" in schema:
            valid.append(schema["minimum"])
            invalid.append(schema["minimum"] - 1)
        if "maximum" in schema:
            valid.append(schema["maximum"])
            invalid.append(schema["maximum"] + 1)
        return valid, [*invalid, "many"]
    raise ValueError(f"no generated cases for {path} ({schema.get('type')})")


def schema_cases(definition: dict[str, Any], paths: list[str], base: dict[str, Any]) -> list[Any]:
    """pytest params (spec, field or None for valid) for every generated case of ``paths``,
    each on top of ``base`` (what cross-field rules need for the extremes)."""
    out = []
    for path in paths:
        valid, invalid = field_cases(definition, path)
        out += [pytest.param({**base, **nested(path, v)}, None, id=f"{path}={v}") for v in valid]
        out += [
            pytest.param({**base, **nested(path, v)}, f"spec.{path}", id=f"{path}={v}")
            for v in invalid
        ]
    return out


def check_admission(
    kubectl: Kubectl, ns: str, api_version: str, kind: str, spec: dict[str, Any], field: str | None
) -> None:
    if field is None:
        check_valid(kubectl, ns, api_version, kind, spec)
    else:
        check_invalid(kubectl, ns, api_version, kind, spec, field)


def audit_writes(audit_log: AuditLog, agent: str) -> list[tuple[str, str, str]]:
    out = []
    for e in audit_log.entries():
        if (
            e.get("userAgent") == agent
            and e.get("stage") == "ResponseComplete"
            and e.get("verb") in ("create", "update", "patch", "delete")
        ):
            ref = e["objectRef"]
            out.append((e["verb"], ref["resource"], ref.get("name", "")))
    return out
