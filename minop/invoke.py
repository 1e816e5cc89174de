"""Calling one plugin's implementations of a hook, each in a thread with a timeout.

A Python thread cannot be killed, so a hook that outlives its timeout keeps
running; the caller gets the thread back and holds the object's key until it
ends, so no second worker ever acts on that object meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, NamedTuple

from minop.apierrors import ApiError, WritesFenced
from minop.context import Context
from minop.errors import PermanentError, TemporaryError
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager

log = logging.getLogger("minop.invoke")

OK, TEMPORARY, PERMANENT, API, ERROR, TIMEOUT, FENCED = (
    "ok",
    "temporary",
    "permanent",
    "api",
    "error",
    "timeout",
    "fenced",
)


class Outcome(NamedTuple):
    kind: str
    results: list[Any]
    error: BaseException | None = None
    thread: threading.Thread | None = None  # a timed-out hook still running


def classify(error: BaseException) -> str:
    if isinstance(error, TemporaryError):
        return TEMPORARY
    if isinstance(error, PermanentError):
        return PERMANENT
    if isinstance(error, WritesFenced):
        return FENCED
    if isinstance(error, ApiError) and error.retryable:
        return API
    return ERROR


def invoke(
    plugins: PluginManager,
    plugin: str,
    hook: str,
    ctx: Context,
    timeout: float,
    metrics: Metrics,
) -> Outcome:
    results: list[Any] = []
    for impl in plugins.impls(hook, plugin):
        box: dict[str, Any] = {}

        def target(impl: Any = impl, box: dict[str, Any] = box) -> None:
            try:
                box["value"] = PluginManager.call_impl(impl, ctx=ctx)
            except BaseException as e:  # reported to the caller, whatever it is
                box["error"] = e

        thread = threading.Thread(target=target, name=f"hook-{plugin}-{hook}", daemon=True)
        start = time.monotonic()
        thread.start()
        thread.join(timeout)
        metrics.hook_duration.observe(time.monotonic() - start, plugin=plugin, hook=hook)
        if thread.is_alive():
            metrics.hook_calls.inc(plugin=plugin, hook=hook, result=TIMEOUT)
            err = TimeoutError(f"{hook} of plugin {plugin} still running after {timeout:g}s")
            return Outcome(TIMEOUT, results, err, thread)
        if "error" in box:
            kind = classify(box["error"])
            metrics.hook_calls.inc(plugin=plugin, hook=hook, result=kind)
            return Outcome(kind, results, box["error"])
        metrics.hook_calls.inc(plugin=plugin, hook=hook, result="success")
        results.append(box.get("value"))
    return Outcome(OK, results)
