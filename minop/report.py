"""What a pass tells besides the status: its log line, its Warning Event, its metrics.

The reconciler decides and writes (the status is always its own); this is how the
outcome of each pass reaches the operator's log, the object's Events and the
``controller_runtime_reconcile_*`` metrics.
"""

from __future__ import annotations

import logging

from minop.events import WARNING, Recorder
from minop.log import fields
from minop.metrics import Metrics
from minop.objects import Key, Obj
from minop.outcome import ERROR, PERMANENT, TEMPORARY, Ending
from minop.verdict import Verdict

log = logging.getLogger("minop.reconcile")  # the reconciler's log, as users filter it


class Report:
    """One resource's reports: ``controller`` names it in the metrics."""

    def __init__(self, recorder: Recorder, metrics: Metrics, plugin: str, controller: str):
        self.recorder, self.metrics = recorder, metrics
        self.plugin, self.controller = plugin, controller

    def _fields(self, key: Key, hook: str = "") -> dict[str, str]:
        """The structured log fields of a line about ``key``."""
        return fields(
            kind=key.kind.kind,
            namespace=key.namespace,
            name=key.name,
            plugin=self.plugin,
            hook=hook,
        )

    def count(self, result: str) -> None:
        self.metrics.reconcile_total.inc(controller=self.controller, result=result)

    def fenced(self, key: Key) -> None:
        log.warning("%s: writes fenced (leadership in doubt); requeued", key)

    def api_trouble(
        self, key: Key, delay: float, error: BaseException | None, hook: str = ""
    ) -> None:
        """A pass that met API trouble (a hook's, or our own write's) and is requeued."""
        where = f" in {hook}" if hook else ""
        log.warning(
            "%s: API error%s, retrying in %.3fs: %s",
            key,
            where,
            delay,
            error,
            extra=self._fields(key, hook),
        )
        self.count("requeue")

    def failed(
        self, key: Key, obj: Obj, hook: str, ending: Ending, error: BaseException | None, v: Verdict
    ) -> None:
        """A failed hook's log line and Warning Event (its metrics: ``counted``, once its
        status is written)."""
        extra = self._fields(key, hook)
        if ending in (TEMPORARY, PERMANENT):
            log.warning(
                "%s: %s of plugin %s: %s: %s",
                key,
                hook,
                self.plugin,
                v.reason,
                v.message,
                extra=extra,
            )
        else:
            log.error(
                "%s: %s of plugin %s failed (%s): %s",
                key,
                hook,
                self.plugin,
                v.reason,
                v.message,
                exc_info=error if ending == ERROR else None,
                extra=extra,
            )
        self.recorder.event(obj, WARNING, v.reason, f"{hook.removeprefix('minop_')}: {v.message}")

    def counted(self, ending: Ending, delay: float | None) -> None:
        """A failed hook's metrics: a TemporaryError retried is no reconcile error."""
        self.count("requeue_after" if ending == TEMPORARY and delay else "error")
        if ending != TEMPORARY or delay is None:
            self.metrics.reconcile_errors.inc(controller=self.controller)

    def timer_failed(
        self, key: Key, obj: Obj, name: str, ending: Ending, error: BaseException | None
    ) -> None:
        """A timer's failure: logged and a Warning Event; its next tick is the retry."""
        message = str(error) or type(error).__name__
        log.warning(
            "%s: timer %s of plugin %s failed (%s): %s",
            key,
            name,
            self.plugin,
            ending,
            message,
            exc_info=error if ending == ERROR else None,
            extra=self._fields(key, "minop_timer"),
        )
        self.recorder.event(obj, WARNING, "TimerFailed", f"timer {name}: {message}")

    def delete_failed(self, key: Key, error: BaseException | None) -> None:
        """A delete hook is a notification: its failure is reported, never retried."""
        log.error(
            "%s: delete hook of plugin %s failed: %s",
            key,
            self.plugin,
            error,
            extra=self._fields(key, "minop_delete"),
        )
