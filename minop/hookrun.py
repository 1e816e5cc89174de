"""A hook's run within a pass, and what follows from it: the hook gets copies of the
JSON trees; its results and conditions go in one status write; a failure gets its
verdict (``verdict``), its report (``report``: log, Event, metrics), its conditions
written and its retry scheduled (``retries``). The reconciler (``reconcile``) decides
which hook runs; every status write is this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minop import invoke as inv
from minop import status as st
from minop import verdict
from minop.apierrors import ApiError
from minop.conditions import Condition
from minop.context import Context
from minop.objects import Key, Obj, copy_tree
from minop.outcome import API, FENCED, INVALID, OK, TIMEOUT, Ending
from minop.plugin.manager import PluginManager
from minop.report import Report
from minop.resource import Resource
from minop.retries import FENCED_RETRY, Retries
from minop.runtime import Runtime

# Causes that call minop_update on an unchanged spec, by precedence.
TRIGGERS = ("child", "related", "resync")
RETRY = frozenset({"retry"})


@dataclass(frozen=True)
class Binding:
    """A resource and the plugin that owns it."""

    plugin: str
    resource: Resource
    finalizes: bool


@dataclass(frozen=True)
class Result:
    """What the controller does with the key after a pass."""

    requeue_after: float | None = None  # None: nothing more until the next event
    causes: frozenset[str] = RETRY  # what the key is queued with again
    hold: inv.Call | None = None  # a timed-out hook: keep the key busy until it ends
    unrun: tuple[str, ...] = ()  # due timers this pass could not run: due at the next one


DONE = Result()


class HookRunner:
    """Runs ``binding``'s hooks and writes what they lead to."""

    def __init__(
        self,
        runtime: Runtime,
        plugins: PluginManager,
        binding: Binding,
        retries: Retries,
        report: Report,
        progress: Callable[[float], None],
    ) -> None:
        self.rt, self.plugins, self.b = runtime, plugins, binding
        self.retries, self.report = retries, report
        # the pass starts a step that takes at most this many seconds (liveness)
        self.progress = progress

    def context(self, obj: Obj, cause: str, **kw: Any) -> Context:
        """A hook's context on copies (body, old, new, diff): a hook can never
        change what is cached, nor the spec recorded as handled."""
        key = Key.of(self.b.resource.kind, obj)
        retry = 0 if cause in ("delete", "timer") else self.retries.tries(key)
        body, kw = copy_tree((obj, kw))
        return Context(
            self.rt, self.b.plugin, self.b.resource, body, cause=cause, retry=retry, **kw
        )

    def call(self, hook: str, ctx: Context) -> inv.Outcome:
        r, rt = self.b.resource, self.rt
        return inv.invoke(
            self.plugins, self.b.plugin, hook, ctx, r.hook_timeout, rt.metrics, self.progress
        )

    def write_results(
        self, obj: Obj, results: list[Any], conditions: list[Condition], **kw: Any
    ) -> inv.Outcome:
        """A successful hook's status. One that is no status, or that the API server
        refuses, is the hook's failure (its backoff, Degraded naming the field), never API
        trouble: sending it again cannot help."""
        try:
            self.write_status(obj, st.new_status(obj, results, conditions, **kw))
        except st.InvalidStatus as e:
            return inv.Outcome(INVALID, results, e)
        except ApiError as e:
            refused = st.refusal(e)
            if refused is None:
                raise
            return inv.Outcome(INVALID, results, refused)
        return inv.Outcome(OK, results)

    def failed(self, key: Key, obj: Obj, hook: str, out: inv.Outcome, causes: set[str]) -> Result:
        """A failed hook: API trouble on its own backoff (no hook try used), anything
        else as ``verdict`` says, on the hook's; a timed-out hook holds its key."""
        retry = retry_causes(causes)
        if out.kind == FENCED:
            self.report.fenced(key)
            return Result(FENCED_RETRY, retry)
        if out.kind == API:
            delay = self.retries.api_delay(key, out.error)
            self.report.api_trouble(key, delay, out.error, hook)
            return Result(delay, retry)
        tries, max_tries = self.retries.tries(key) + 1, self.b.resource.max_tries
        backoff = self.retries.hook_delay(key)
        finalize = hook == "minop_finalize"
        v = verdict.failure(out.kind, out.error, tries, max_tries, backoff, endless=finalize)
        if v.delay is not None:  # recorded first: a report that cannot be written
            self.retries.hook_failed(key, v.delay)  # does not make the hook run sooner
        hold = out.running if out.kind == TIMEOUT else None
        try:
            self.report_failure(key, obj, hook, out.kind, out.error, v)
        except ApiError as e:
            if hold is None:
                raise
            # the timed-out hook still runs: its key stays held whatever the report met
            delay = self.retries.api_delay(key, e)
            self.report.api_trouble(key, delay, e, hook)
            return Result(delay, retry, hold=hold)
        return Result(v.delay, retry, hold=hold)

    def report_failure(
        self,
        key: Key,
        obj: Obj,
        hook: str,
        ending: Ending,
        error: BaseException | None,
        v: verdict.Verdict,
    ) -> None:
        """The verdict's log line and Event, its conditions in the status, its metrics."""
        self.report.failed(key, obj, hook, ending, error, v)
        self.write_status(obj, st.new_status(obj, [], v.conditions))
        self.report.counted(ending, v.delay)

    # -- writes ------------------------------------------------------------------------

    def mutated(self, obj: Obj, *, only_if_present: bool = False) -> None:
        self.rt.cache.mutated(self.b.resource.kind, obj, only_if_present=only_if_present)

    def request(self) -> None:
        """One request of ours starts: it takes at most the client's longest."""
        self.progress(self.rt.kube.longest_request)

    def write_status(self, obj: Obj, status: dict[str, Any]) -> None:
        self.request()
        written = st.write_status(self.rt.kube, self.b.resource.kind, obj, status)
        if written is not None:
            self.mutated(written, only_if_present=True)


def retry_causes(causes: set[str]) -> frozenset[str]:
    """What a retry of a pass is queued with: every trigger it had (without one, a pass
    on an unchanged spec does nothing, and only ``related`` passes a given-up object's
    wait), else a bare retry (a create or spec change is read from the object again)."""
    return frozenset(c for c in causes if c in TRIGGERS) or RETRY
