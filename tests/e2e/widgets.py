"""Test plugins for the core e2e suite: small kinds exercising every hook path.

Each hook records its calls in ``CALLS[namespace]`` so tests (running the
operator in-process) can assert exactly what ran.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import minop
from minop import kinds
from minop.apierrors import WritesFenced
from minop.kit import crd

GROUP = "test.minop.dev"
WIDGET = minop.Kind(GROUP, "v1", "Widget", "widgets")
FLAKY = minop.Kind(GROUP, "v1", "Flaky", "flakies")
BROKEN = minop.Kind(GROUP, "v1", "Broken", "brokens")
SLOW = minop.Kind(GROUP, "v1", "Slow", "slows")
RAISER = minop.Kind(GROUP, "v1", "Raiser", "raisers")
TICKER = minop.Kind(GROUP, "v1", "Ticker", "tickers")
SLEEPER = minop.Kind(GROUP, "v1", "Sleeper", "sleepers")
RACER = minop.Kind(GROUP, "v1", "Racer", "racers")

CALLS: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
_lock = threading.Lock()


def record(ctx: minop.Context, *what: Any) -> None:
    with _lock:
        CALLS[ctx.namespace].append((time.monotonic(), *what))


def definition(kind: minop.Kind) -> dict[str, Any]:
    return crd.definition(
        kind,
        description=f"Test kind {kind.kind}.",
        spec=crd.obj(
            "Desired state.",
            {
                "size": crd.integer("A number.", minimum=0, default=1),
                "message": crd.string("Text copied into the child ConfigMap."),
                "sleep": crd.integer("Seconds a hook sleeps.", minimum=0),
                "beat": crd.boolean("A sleeping hook writes an annotation every 0.2 s."),
                "secretName": crd.string("A Secret whose content hash goes on the child."),
            },
        ),
        status=crd.obj(
            "Observed state.",
            {
                "observedGeneration": crd.integer("Generation last reconciled."),
                "conditions": crd.conditions(),
                "size": crd.integer("Size last applied."),
                "ticks": crd.integer("Timer calls so far."),
            },
        ),
    )


def child(ctx: minop.Context) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"{ctx.name}-data"}
    secret = ctx.spec.get("secretName")
    if secret:
        meta["annotations"] = {
            "test.minop.dev/secret-hash": ctx.related_hash(kinds.SECRET, secret) or "missing"
        }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {"size": str(ctx.spec.get("size", 1)), "message": ctx.spec.get("message", "")},
    }


class Widgets:
    """Creates a ConfigMap per Widget; finalizes."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        secret = minop.Related(kinds.SECRET, names=lambda body: [body["spec"].get("secretName")])
        return [
            minop.Resource(
                kind=WIDGET, crd=definition(WIDGET), children=(kinds.CONFIGMAP,), related=(secret,)
            )
        ]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> dict[str, Any]:
        record(ctx, "create", ctx.name)
        ctx.apply(child(ctx))
        return {"size": ctx.spec.get("size")}

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> dict[str, Any]:
        record(ctx, "update", ctx.name, ctx.cause, [(c.op, c.path, c.old, c.new) for c in ctx.diff])
        ctx.apply(child(ctx))
        return {"size": ctx.spec.get("size")}

    @minop.hookimpl
    def minop_finalize(self, ctx: minop.Context) -> None:
        record(ctx, "finalize", ctx.name)

    @minop.hookimpl
    def minop_delete(self, ctx: minop.Context) -> None:
        record(ctx, "delete", ctx.name)


class Tickers:
    """A timer every 2 s after an initial 1 s."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        timer = minop.Timer(interval=2, initial_delay=1, name="tick")
        return [minop.Resource(kind=TICKER, crd=definition(TICKER), timers=(timer,))]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name)

    @minop.hookimpl
    def minop_timer(self, ctx: minop.Context) -> dict[str, Any]:
        record(ctx, "timer", ctx.name, ctx.timer)
        return {"ticks": int(ctx.status.get("ticks", 0)) + 1}


class Flaky:
    """Always asks to be retried: exercises TemporaryError backoff and give-up."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=FLAKY, crd=definition(FLAKY), max_tries=4)]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name, ctx.retry)
        raise minop.TemporaryError("dependency not ready")

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> None:
        record(ctx, "update", ctx.name, ctx.cause)


class Broken:
    """Always refuses: exercises PermanentError."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=BROKEN, crd=definition(BROKEN))]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name)
        raise minop.PermanentError("spec.size: 0 is not allowed here")


class Raising:
    """Raises in every hook of its kind (isolation)."""

    def __init__(self, kind: minop.Kind) -> None:
        self.kind = kind

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        # enough tries to still be retrying (HookError, not RetriesExhausted) when checked
        return [minop.Resource(kind=self.kind, crd=definition(self.kind), max_tries=10)]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name)
        raise RuntimeError("plugin bug")

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> None:
        raise RuntimeError("plugin bug")


class Hanging:
    """Sleeps past the hook timeout in create (isolation)."""

    def __init__(self, kind: minop.Kind, timeout: float) -> None:
        self.kind, self.timeout = kind, timeout

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [
            minop.Resource(kind=self.kind, crd=definition(self.kind), hook_timeout=self.timeout)
        ]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name)
        time.sleep(self.timeout * 3)


class FailsAtStartup:
    @minop.hookimpl
    def minop_startup(self, settings: Any) -> None:
        raise RuntimeError("cannot start")

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        raise AssertionError("never called: startup failed")


class FailsInResources:
    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        raise RuntimeError("cannot list resources")


class Sleepers:
    """create sleeps spec.sleep seconds, leaving marker files in $MINOP_TEST_MARKERS."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=SLEEPER, crd=definition(SLEEPER))]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> dict[str, Any]:
        import os
        from pathlib import Path

        markers = Path(os.environ.get("MINOP_TEST_MARKERS", "/tmp"))
        (markers / f"{ctx.name}.started").touch()
        until = time.monotonic() + float(ctx.spec.get("sleep") or 0)
        beat = bool(ctx.spec.get("beat"))
        while time.monotonic() < until:
            if beat:  # a hook writing all along: only the write fence can stop it
                try:
                    note = {"metadata": {"annotations": {"e2e.minop.dev/beat": str(time.time())}}}
                    ctx.api.patch(SLEEPER, ctx.name, note, ctx.namespace)
                except WritesFenced:
                    beat = False
            time.sleep(min(0.2, max(0.0, until - time.monotonic())))
        (markers / f"{ctx.name}.done").touch()
        return {"size": ctx.spec.get("size")}


SLEEPERS = Sleepers()


class Racers:
    """Loses an optimistic-concurrency race once (a 409 from the API server): the
    core retries through the API regime without using up a try."""

    def __init__(self) -> None:
        self.raced: set[str] = set()

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=RACER, crd=definition(RACER), max_tries=1)]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        record(ctx, "create", ctx.name)
        if ctx.name not in self.raced:
            self.raced.add(ctx.name)
            stale = {**ctx.body, "metadata": {**ctx.meta, "resourceVersion": "1"}}
            ctx.api.replace(RACER, stale)  # 409 Conflict: someone changed it meanwhile


WIDGETS = Widgets()

ALL_KINDS = (WIDGET, FLAKY, BROKEN, SLOW, RAISER, TICKER, SLEEPER, RACER)


class NoCrd:
    """Owns a kind whose CRD is never installed (the CLI must say so)."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        kind = minop.Kind(GROUP, "v1", "Missing", "missings")
        return [minop.Resource(kind=kind, crd=definition(kind))]


NO_CRD = NoCrd()

# Entry-point targets for the isolation test (loaded through importlib.metadata).
ISO_B = Widgets()
ISO_A = Raising(RAISER)
ISO_D = Hanging(SLOW, timeout=2)
ISO_A_STARTUP = FailsAtStartup()
ISO_A_RESOURCES = FailsInResources()


def install_entry_points(where: Path, entries: dict[str, str]) -> str:
    """Make ``entries`` (name -> target) entry points of group ``minop`` visible from
    ``where``; returns a PYTHONPATH that also finds the test plugins next to this file."""
    dist = where / "minop_e2e_test_plugins-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: minop-e2e-test-plugins\nVersion: 0.0.1\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (dist / "entry_points.txt").write_text("[minop]\n" + lines)
    return os.pathsep.join([str(where), str(Path(__file__).parent)])
