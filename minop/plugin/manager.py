"""Loads plugins (entry-point group ``minop``) and calls their hooks one by one.

pluggy stops at the first raising implementation and its setuptools loader
aborts on the first broken entry point, so minop loads each entry point and
calls each implementation separately: one broken plugin is reported and
skipped, never fatal to the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from minop.log import fields
from minop.plugin import spec
from minop.plugin.marker import PROJECT
from minop.resource import Kind, Resource

log = logging.getLogger("minop.plugin")
ENTRY_POINT_GROUP = "minop"


@dataclass
class PluginInfo:
    name: str
    version: str = ""
    resources: list[Resource] = field(default_factory=list)
    error: str = ""  # why the plugin is disabled, if it is

    @property
    def ok(self) -> bool:
        return not self.error


class PluginManager:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = set(allow)
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(spec)
        self.plugins: dict[str, PluginInfo] = {}

    # -- loading ---------------------------------------------------------------

    def load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.allow and ep.name not in self.allow:
                continue
            version = ep.dist.version if ep.dist else ""
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin must not stop the others
                self._disable(PluginInfo(ep.name, version), f"import failed: {e!r}")
                log.exception("plugin %s failed to import", ep.name, extra=fields(plugin=ep.name))
                continue
            self.register(obj, ep.name, version)
        missing = self.allow - set(self.plugins)
        for name in sorted(missing):
            self._disable(PluginInfo(name), "not installed (no entry point in group 'minop')")
            log.error("plugin %s requested but not installed", name, extra=fields(plugin=name))

    def register(self, obj: Any, name: str, version: str = "") -> None:
        if name in self.plugins:
            raise ValueError(f"plugin {name!r} registered twice")
        self.pm.register(obj, name=name)
        self.plugins[name] = PluginInfo(name, version)

    def _disable(self, info: PluginInfo, why: str) -> None:
        info.error = why
        self.plugins[info.name] = info
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)

    # -- calling -----------------------------------------------------------------

    def impls(self, hook: str, plugin: str) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook)
        return [i for i in caller.get_hookimpls() if i.plugin_name == plugin]

    def implements(self, hook: str, plugin: str) -> bool:
        return bool(self.impls(hook, plugin))

    @staticmethod
    def call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
        """Call one implementation with the arguments it asks for."""
        return impl.function(*(kwargs[a] for a in impl.argnames))

    def startup(self, settings: Any) -> None:
        """``minop_startup`` then ``minop_resources``; a plugin failing either is disabled."""
        for name in list(self.plugins):
            info = self.plugins[name]
            if not info.ok:
                continue
            try:
                for impl in self.impls("minop_startup", name):
                    self.call_impl(impl, settings=settings)
                resources: list[Resource] = []
                for impl in self.impls("minop_resources", name):
                    resources.extend(self.call_impl(impl) or [])
                for r in resources:
                    if not isinstance(r, Resource):
                        raise TypeError(
                            f"minop_resources returned {type(r).__name__}, not Resource"
                        )
                info.resources = resources
            except Exception as e:
                self._disable(info, f"startup failed: {e!r}")
                log.exception(
                    "plugin %s failed at startup; disabled", name, extra=fields(plugin=name)
                )
        self._check_unique_kinds()

    def _check_unique_kinds(self) -> None:
        owners: dict[Kind, str] = {}
        for info in self.plugins.values():
            for r in info.resources:
                if r.kind in owners:
                    raise ValueError(
                        f"{r.kind} is claimed by plugins {owners[r.kind]!r} and {info.name!r}"
                    )
                owners[r.kind] = info.name

    def resources(self) -> list[tuple[str, Resource]]:
        """(plugin name, resource) for every resource of every working plugin."""
        return [(n, r) for n, i in self.plugins.items() if i.ok for r in i.resources]

    def shutdown(self) -> None:
        for name, info in self.plugins.items():
            if not info.ok:
                continue
            for impl in self.impls("minop_shutdown", name):
                try:
                    self.call_impl(impl)
                except Exception:
                    log.exception("plugin %s failed at shutdown", name, extra=fields(plugin=name))
