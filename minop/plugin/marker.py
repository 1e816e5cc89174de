"""Markers for declaring (spec) and implementing (impl) minop hooks."""

import pluggy

PROJECT = "minop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
