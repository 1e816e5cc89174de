"""Bad input: invalid values refused at admission naming the field (generated from the
CRD schemas), objects that an older, looser schema let in, plugins that raise or hang,
and objects too big or too deeply nested for comfort."""

from __future__ import annotations

import copy
import json
from typing import Any

import chaos_plugins as cp
import pytest
import schema_cases as sc
import yaml
from chaosops import condition, items, ready, wait_converged

from minop.kit.e2e.api import ApiError
from minop.kit.testing import OperatorRunner, wait_for

MEMCACHED = "memcacheds.cache.minop.dev"


def body(crd: dict[str, Any], name: str, spec: dict[str, Any]) -> dict[str, Any]:
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    return {
        "apiVersion": f"{crd['spec']['group']}/{version}",
        "kind": crd["spec"]["names"]["kind"],
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture(scope="session")
def chaos_crds(kubectl) -> None:
    docs = [cp.test_definition(cp.RAISER_KIND), cp.test_definition(cp.HANGER_KIND)]
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
    for k in (cp.RAISER_KIND, cp.HANGER_KIND):
        kubectl("wait", "--for=condition=Established", f"crd/{k.plural}.{k.group}", "--timeout=60s")


@pytest.mark.chaos_fast
def test_every_cel_rule_has_a_written_case() -> None:
    assert sc.uncovered_rules(sc.crds()) == []


@pytest.mark.chaos_fast
def test_every_invalid_value_is_refused_naming_the_field(plugin_crds, api, namespace, figures):
    docs = {d["metadata"]["name"]: d for d in sc.crds()}
    cases = sc.all_cases(list(docs.values()))
    wrong = []
    for i, case in enumerate(cases):
        crd = docs[case.crd]
        path = api.resource_path(case.crd, namespace)
        name = f"bad-{i}"
        try:
            if case.old_spec is not None:
                api.request("POST", path, body(crd, name, case.old_spec))
                api.request("PATCH", f"{path}/{name}", {"spec": case.spec})
            else:
                api.request("POST", path, body(crd, name, case.spec))
        except ApiError as e:
            msg = e.body.get("message", "") if isinstance(e.body, dict) else str(e.body)
            if e.status != 422 or case.field not in msg or case.message not in msg:
                wrong.append(f"{case.crd} {case.id}: HTTP {e.status}: {msg}")
        else:
            wrong.append(f"{case.crd} {case.id}: accepted {json.dumps(case.spec)[:200]}")
    figures.fault(len(cases))
    figures.note(f"{len(cases)} invalid specs generated from the 3 CRDs, {len(wrong)} not refused")
    assert not wrong, "\n".join(wrong)


def loosened(crd: dict[str, Any]) -> dict[str, Any]:
    """``crd`` without the bounds, enums and rules of ``spec`` (an "older" schema)."""
    out = copy.deepcopy(crd)

    def strip(s: dict[str, Any]) -> None:
        for k in ("minimum", "maximum", "enum", "pattern", "maxLength", "x-kubernetes-validations"):
            s.pop(k, None)
        for sub in (s.get("properties") or {}).values():
            strip(sub)

    for v in out["spec"]["versions"]:
        strip(v["schema"]["openAPIV3Schema"]["properties"]["spec"])
    return out


def test_objects_an_older_looser_schema_let_in_are_degraded_naming_the_field(
    kubectl, api, namespace, audit_log, figures
):
    """The CRD is tightened under existing objects: the operator reports each as Degraded
    with the offending field and value, does not retry in a loop, and goes on serving the
    valid ones."""
    tight = cp.LOOSE.crd
    crd_name = tight["metadata"]["name"]
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(loosened(tight))
    )
    kubectl("wait", "--for=condition=Established", f"crd/{crd_name}", "--timeout=60s")
    try:
        path = api.resource_path(crd_name, namespace)
        schema = tight["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        too_big = schema["properties"]["size"]["maximum"] + 1  # the bound as it is today
        bad = {
            "too-big": ({"size": too_big}, "spec.size"),
            "bad-port": ({"port": 70000}, "spec.port"),
        }
        for name, (spec, _) in bad.items():
            api.request("POST", path, body(tight, name, spec))
        kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(tight))
        with OperatorRunner({"chaos-loose": cp.LOOSE}, namespaces=[namespace]):
            api.request("POST", path, body(tight, "fine", {"size": 1}))
            wait_for(lambda: ready(api.request("GET", f"{path}/fine")), 60, "the valid one Ready")

            def degraded() -> dict[str, str]:
                out = {}
                for name, (_, field) in bad.items():
                    c = condition(api.request("GET", f"{path}/{name}"), "Degraded")
                    if c.get("status") != "True" or field not in c.get("message", ""):
                        raise AssertionError(f"{name}: {c}")
                    out[name] = c["message"]
                return out

            messages = wait_for(degraded, 60, "both invalid objects Degraded naming the field")
            # no hot loop: creating and reconciling another object takes a while, and
            # the invalid ones see no more writes than the first verdict meanwhile
            api.request("POST", path, body(tight, "fine2", {"size": 1}))
            wait_for(lambda: ready(api.request("GET", f"{path}/fine2")), 60, "another valid one")
        writes = [
            e
            for e in audit_log.entries()
            if (e.get("objectRef") or {}).get("name") in bad
            and e.get("userAgent", "").startswith("minop/")
        ]
        assert len(writes) <= 2 * 3 * len(bad), [e["verb"] for e in writes]
        kids = items(api, "deployments", namespace)
        assert {d["metadata"]["name"] for d in kids} == {"fine", "fine2"}
        figures.note(f"Degraded messages: {messages}")
    finally:
        kubectl("delete", "crd", crd_name, "--wait=false", check=False)


def test_a_raising_and_a_hanging_plugin_are_isolated(
    plugin_crds, chaos_crds, api, kubectl, namespace, figures
):
    """More hung hooks than workers: the hook timeout frees the worker, and Memcached
    objects keep reconciling next to a plugin that always raises."""
    cp.RELEASE.clear()
    hooks = {"memcached": cp.memcached_hooks, "raiser": cp.Raiser(), "hanger": cp.Hanger()}
    try:
        with OperatorRunner(hooks, namespaces=[namespace], workers=2):
            for kind in (cp.HANGER_KIND, cp.RAISER_KIND):
                for i in range(3):
                    obj = {
                        "apiVersion": kind.api_version,
                        "kind": kind.kind,
                        "metadata": {"name": f"{kind.kind.lower()}-{i}"},
                        "spec": {"size": i},
                    }
                    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
            for i in range(3):
                obj = body(sc_memcached(), f"mc-{i}", {"size": 1})
                kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
            wait_converged(api, ["memcacheds.cache.minop.dev"], namespace, 90)

            def verdicts() -> bool:
                for kind, reason in ((cp.HANGER_KIND, "HookTimeout"), (cp.RAISER_KIND, "")):
                    for o in items(api, f"{kind.plural}.{kind.group}", namespace):
                        c = condition(o, "Degraded")
                        assert c.get("status") == "True" and reason in c.get("reason", ""), c
                return True

            wait_for(verdicts, 90, "every hanger and raiser Degraded")
            figures.fault(6)
    finally:
        cp.RELEASE.set()


def sc_memcached() -> dict[str, Any]:
    return next(d for d in sc.crds() if d["metadata"]["name"] == MEMCACHED)


def nested(depth: int) -> dict[str, Any]:
    junk: dict[str, Any] = {"leaf": "x"}
    for i in range(depth):
        junk = {f"level{i}": junk, "list": [1, "two", None]}
    return junk


def test_a_huge_object_and_deeply_nested_junk_do_not_break_the_watch_loop(
    plugin_crds, api, kubectl, namespace, figures
):
    """A Memcached near the size limit and one with junk nested 60 levels deep in a
    free-form field: the operator gives each a verdict and keeps reconciling others."""
    crd = sc_memcached()
    path = api.resource_path(MEMCACHED, namespace)
    sizes = []
    for size in (2 * 1024 * 1024, 1400 * 1024):  # 2 MiB; etcd's default limit is 1.5 MiB
        try:
            api.request("POST", path, body(crd, "huge", {"podAnnotations": {"junk": "x" * size}}))
            sizes.append(size)
            break
        except ApiError as e:
            figures.note(f"a {size // 1024} KiB object was refused: HTTP {e.status}")
    assert sizes, "no near-limit object could be created"
    api.request("POST", path, body(crd, "deep", {"affinity": nested(60)}))
    with OperatorRunner({"memcached": cp.memcached_hooks}, namespaces=[namespace]):
        api.request("POST", path, body(crd, "after", {"size": 1}))
        wait_for(lambda: ready(api.request("GET", f"{path}/after")), 90, "a normal object Ready")

        def verdict(name: str) -> dict[str, Any]:
            o = api.request("GET", f"{path}/{name}")
            c = condition(o, "Ready")
            return c if c.get("observedGeneration") == o["metadata"]["generation"] else {}

        figures.note(
            f"huge ({sizes[0] // 1024} KiB): {wait_for(lambda: verdict('huge'), 90, 'huge')}"
        )
        figures.note(f"deep: {wait_for(lambda: verdict('deep'), 90, 'deep')}")
        api.request("PATCH", f"{path}/after", {"spec": {"size": 2}})
        wait_for(lambda: ready(api.request("GET", f"{path}/after")), 90, "a later change applied")
