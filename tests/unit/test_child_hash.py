"""``ctx.child_hash``: a plugin learns whether a Secret it made still holds what it
wrote, although the cache keeps no Secret's data."""

import minop
from minop import kinds

from .widget import KIND, Env

DATA = {"password": "cHc="}


class MakesASecret:
    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        self.seen["before"] = ctx.child_hash(kinds.SECRET, "w-auth")
        ctx.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "w-auth"}, "data": DATA}
        )
        self.seen["cached"] = ctx.child(kinds.SECRET, "w-auth")
        self.seen["hash"] = ctx.child_hash(kinds.SECRET, "w-auth")


def test_child_hash_is_the_data_hash_of_a_secret_cached_without_its_data() -> None:
    plugin = MakesASecret()
    env = Env(plugin, minop.Resource(kind=KIND, children=(kinds.SECRET,)))
    env.create("w", {})
    env.process("w")
    assert plugin.seen["before"] is None
    cached = plugin.seen["cached"]
    assert isinstance(cached, dict) and "data" not in cached
    assert plugin.seen["hash"] == minop.data_hash({"data": DATA})
    assert plugin.seen["hash"] != minop.data_hash({"data": {"password": "eHg="}})
