"""What a hook is given are copies (issue 28 made them cheap JSON-tree copies): a hook
that mutates every one of them changes nothing cached, sent or recorded."""

from __future__ import annotations

import json
from typing import Any

import minop
from minop import kinds
from minop.status import LAST_HANDLED_FIELD

from .widget import KIND, NS, Env

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x-cm"}}


def vandalise(value: Any) -> None:
    """Mutate every dict and list inside ``value``."""
    if isinstance(value, dict):
        for v in list(value.values()):
            vandalise(v)
        value["vandal"] = {"was": "here"}
    elif isinstance(value, list):
        for v in value:
            vandalise(v)
        value.append("vandal")
    elif isinstance(value, tuple):
        for v in value:
            vandalise(v)


class Vandal:
    def __init__(self) -> None:
        self.calls = 0
        self.old: list[str] = []  # ctx.old as each call got it

    def _hook(self, ctx: minop.Context) -> dict[str, Any]:
        self.calls += 1
        self.old.append(json.dumps(ctx.old))
        applied = ctx.apply({**CM, "data": {"size": str(ctx.spec["size"]["n"])}})
        child = ctx.child(kinds.CONFIGMAP, "x-cm")
        for given in (ctx.body, ctx.old, ctx.new, ctx.diff, applied, child):
            vandalise(given)
        vandalise(ctx.children(kinds.CONFIGMAP))
        return {"seen": self.calls}

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> dict[str, Any]:
        return self._hook(ctx)

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> dict[str, Any]:
        return self._hook(ctx)


def test_a_hook_mutating_everything_it_was_given_changes_nothing_cached_or_recorded() -> None:
    vandal = Vandal()
    env = Env(vandal, minop.Resource(kind=KIND, children=(kinds.CONFIGMAP,)))
    env.create("x", {"size": {"n": 1}})
    env.process("x")
    env.deliver("x")
    env.change("x", {"size": {"n": 2}})  # update: old, new and diff given too
    env.process("x")
    env.deliver("x")
    spec = json.loads(env.status("x")[LAST_HANDLED_FIELD])
    assert spec == {"spec": {"size": {"n": 2}}}
    cached = env.cache.get(KIND, NS, "x")
    assert cached is not None and "vandal" not in json.dumps(cached)
    child = env.cache.get(kinds.CONFIGMAP, NS, "x-cm")
    assert child is not None and child["data"] == {"size": "2"}
    assert "vandal" not in json.dumps(child)
    assert "vandal" not in json.dumps(env.api.sent, default=str)
    env.process("x", "child")  # the last handled spec again, as parsed before
    handled = [{"spec": {"size": {"n": 1}}}, {"spec": {"size": {"n": 2}}}]
    assert vandal.old[1:] == [json.dumps(h) for h in handled]
