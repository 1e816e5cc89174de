"""Figures from the trials: medians and spread, ratios, targets, and the output files."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.chart import ORDER, svg
from tests.bench.scenarios import Trial


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    get: Callable[[Trial], float | None]


def _rss_growth(t: Trial) -> float | None:
    """Slope between the fewest and the most objects measured, leaving out 0 when there
    are two other points (from 0 it includes one-time costs: pools, threads, arenas)."""
    points = sorted(t.rss_mb)
    if len(points) > 2:
        points = points[1:]
    if len(points) < 2 or points[-1] == points[0]:
        return None
    lo, hi = points[0], points[-1]
    return (t.rss_mb[hi] - t.rss_mb[lo]) / (hi - lo) * 1000


def _cpu_per_1000(t: Trial) -> float | None:
    if t.ready_s is None:  # the burst did not finish: its CPU is no reconcile count
        return None
    return (t.cpu_burst_s + t.cpu_update_s) / (t.n + len(t.update_lat)) * 1000


def _per_object(counts: dict[str, int], n: int, done: bool) -> float | None:
    return sum(counts.values()) / n if done and n else None


FIGURES = (
    Figure("children_s", "burst: every object has its children", "s", lambda t: t.children_s),
    Figure("ready_s", "burst: every object Ready", "s", lambda t: t.ready_s),
    Figure("children_p50", "  per object: children p50", "s", lambda t: pct(t.children_lat, 0.5)),
    Figure("children_p99", "  per object: children p99", "s", lambda t: pct(t.children_lat, 0.99)),
    Figure("ready_p50", "  per object: Ready p50", "s", lambda t: pct(t.ready_lat, 0.5)),
    Figure("ready_p99", "  per object: Ready p99", "s", lambda t: pct(t.ready_lat, 0.99)),
    Figure(
        "writes_per_object",
        "API writes per new object",
        "",
        lambda t: _per_object(t.burst_writes, t.n, t.ready_s is not None),
    ),
    Figure(
        "reads_per_object",
        "API reads per new object",
        "",
        lambda t: _per_object(t.burst_reads, t.n, t.ready_s is not None),
    ),
    Figure(
        "update_writes",
        "API writes per update",
        "",
        lambda t: _per_object(t.update_writes, len(t.update_lat), bool(t.update_lat)),
    ),
    Figure(
        "restart_writes",
        "restart: writes over converged objects",
        "",
        lambda t: float(sum(t.restart_writes.values())) if t.restart_ready_s else None,
    ),
    Figure(
        "restart_reads",
        "restart: reads (lists, watches, gets)",
        "",
        lambda t: float(sum(t.restart_reads.values())) if t.restart_ready_s else None,
    ),
    Figure("restart_ready_s", "restart: until ready (probe)", "s", lambda t: t.restart_ready_s),
    Figure("restart_idle_s", "restart: until idle (CPU)", "s", lambda t: t.restart_idle_s),
    Figure("update_p50", "update latency p50", "ms", lambda t: _ms(pct(t.update_lat, 0.5))),
    Figure("update_p99", "update latency p99", "ms", lambda t: _ms(pct(t.update_lat, 0.99))),
    Figure("rss_0", "RSS idle, 0 objects", "MB", lambda t: t.rss_mb.get(0)),
    Figure("rss_n", "RSS idle, N objects", "MB", lambda t: t.rss_mb.get(t.n)),
    Figure(
        "rss_max",
        "RSS idle, most objects",
        "MB",
        lambda t: t.rss_mb[max(t.rss_mb)] if t.rss_mb else None,
    ),
    Figure("rss_10000", "RSS idle, 10000 objects", "MB", lambda t: t.rss_mb.get(10000)),
    Figure("rss_growth", "RSS growth per 1000 objects", "MB", _rss_growth),
    Figure("cpu_per_1000", "CPU seconds per 1000 reconciles", "s", _cpu_per_1000),
)


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000


def summarize(trials: list[Trial]) -> dict[str, dict[str, dict[str, Any]]]:
    """contender -> figure -> {median, min, max, values}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ORDER:
        mine = [t for t in trials if t.contender == name]
        if not mine:
            continue
        out[name] = {}
        for f in FIGURES:
            values = [v for v in (f.get(t) for t in mine) if v is not None]
            out[name][f.key] = {
                "median": statistics.median(values) if values else None,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "values": values,
            }
    return out


def median(summary: dict[str, Any], contender: str, key: str) -> float | None:
    m = summary.get(contender, {}).get(key, {}).get("median")
    return None if m is None else float(m)


def ratio(summary: dict[str, Any], a: str, b: str, key: str) -> float | None:
    x, y = median(summary, a, key), median(summary, b, key)
    if x is None or y is None or y == 0:
        return None
    return x / y


@dataclass(frozen=True)
class Target:
    text: str
    value: Callable[[dict[str, Any]], float | None]
    ok: Callable[[float], bool]
    shown: str  # how the measured value reads
    min_n: int = 0  # stated at this burst size or more: a smaller run does not measure it


# Issue 28's targets (median of the repeats, side by side in one run).
TARGETS = (
    Target(
        "children time minop/kopf <= 0.8 (N >= 1000)",
        lambda s: ratio(s, "minop", "kopf", "children_s"),
        lambda v: v <= 0.8,
        "{:.2f}",
        1000,
    ),
    Target(
        "children time minop/floor <= 1.15 (N >= 1000)",
        lambda s: ratio(s, "minop", "floor", "children_s"),
        lambda v: v <= 1.15,
        "{:.2f}",
        1000,
    ),
    Target(
        "Ready time minop/floor <= 1.05",
        lambda s: ratio(s, "minop", "floor", "ready_s"),
        lambda v: v <= 1.05,
        "{:.2f}",
    ),
    Target(
        "update latency p99 minop/floor <= 1.2",
        lambda s: ratio(s, "minop", "floor", "update_p99"),
        lambda v: v <= 1.2,
        "{:.2f}",
    ),
    Target(
        "update latency p99 below Kopf's: minop/kopf < 1",
        lambda s: ratio(s, "minop", "kopf", "update_p99"),
        lambda v: v < 1.0,
        "{:.2f}",
    ),
    Target(
        "CPU per 1000 reconciles minop/kopf <= 1/3 (N >= 1000)",
        lambda s: ratio(s, "minop", "kopf", "cpu_per_1000"),
        lambda v: v <= 1 / 3,
        "{:.2f}",
        1000,
    ),
    Target(
        "CPU per 1000 reconciles minop/floor <= 1.2 (N >= 1000)",
        lambda s: ratio(s, "minop", "floor", "cpu_per_1000"),
        lambda v: v <= 1.2,
        "{:.2f}",
        1000,
    ),
    Target(
        "minop RSS growth <= 20 MB per 1000 Memcached objects",
        lambda s: median(s, "minop", "rss_growth"),
        lambda v: v <= 20.0,
        "{:.1f} MB",
    ),
    Target(
        "minop RSS growth below the floor's",
        lambda s: ratio(s, "minop", "floor", "rss_growth"),
        lambda v: v < 1.0,
        "{:.2f}",
    ),
    Target(
        "idle RSS at 10000 objects minop/kopf <= 1/2 (--memory 10000)",
        lambda s: ratio(s, "minop", "kopf", "rss_10000"),
        lambda v: v <= 0.5,
        "{:.2f}",
    ),
    Target(
        "minop writes per new object (size 1, with Ready) <= 4",
        lambda s: median(s, "minop", "writes_per_object"),
        lambda v: v <= 4.0,
        "{:.3f}",
    ),
    Target(
        "minop writes per update <= 4",
        lambda s: median(s, "minop", "update_writes"),
        lambda v: v <= 4.0,
        "{:.3f}",
    ),
    Target(
        "minop writes on restart over converged objects = 0",
        lambda s: median(s, "minop", "restart_writes"),
        lambda v: v == 0,
        "{:.0f}",
    ),
    Target(
        "restart over 5000 converged objects: until ready minop/floor <= 1.2 (N >= 5000)",
        lambda s: ratio(s, "minop", "floor", "restart_ready_s"),
        lambda v: v <= 1.2,
        "{:.2f}",
        5000,
    ),
)


def targets(summary: dict[str, Any], n: int) -> list[dict[str, Any]]:
    rows = []
    for t in TARGETS:
        v = t.value(summary) if n >= t.min_n else None
        rows.append(
            {
                "target": t.text,
                "measured": None if v is None else t.shown.format(v),
                "value": v,
                "met": None if v is None else t.ok(v),
            }
        )
    return rows


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.2f}"
    if unit in ("ms", "MB"):
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(summary: dict[str, Any]) -> list[str]:
    names = [n for n in ORDER if n in summary]
    head = ["figure", "unit", *names, "minop/floor", "kopf/minop"]
    rows = [head, ["---"] * len(head)]
    for f in FIGURES:
        row = [f.label, f.unit]
        for n in names:
            cell = summary[n][f.key]
            text = _fmt(cell["median"], f.unit)
            if cell["median"] is not None and len(cell["values"]) > 1:
                text += f" ({_fmt(cell['min'], f.unit)}-{_fmt(cell['max'], f.unit)})"
            row.append(text)
        for a, b in (("minop", "floor"), ("kopf", "minop")):
            r = ratio(summary, a, b, f.key)
            row.append("-" if r is None else f"{r:.2f}")
        rows.append(row)
    return ["| " + " | ".join(r) + " |" for r in rows]


def target_table(rows: list[dict[str, Any]], n: int) -> list[str]:
    out = ["| target | measured | result |", "| --- | --- | --- |"]
    for r in rows:
        result = "not measured" if r["met"] is None else ("met" if r["met"] else "NOT MET")
        out.append(f"| {r['target']} | {r['measured'] or '-'} | {result} |")
    if n < 5000:
        out.append("")
        out.append(
            f"Measured at N={n}; the issue states the time and CPU targets at N=1000 and "
            "5000, the restart's at 5000 (`make bench N=5000`): not measured here."
        )
    out.append(
        "The restart's CPU (<= 1.5x the floor's over 5000 converged objects) is not measured "
        "by this bench."
    )
    return out


# -- the files ------------------------------------------------------------------------------


def write(
    out_dir: Path, stem: str, facts: dict[str, Any], trials: list[Trial]
) -> tuple[Path, list[str]]:
    summary = summarize(trials)
    n = int(facts["n"])
    rows = targets(summary, n)
    chart = f"{stem}.svg"
    (out_dir / chart).write_text(svg(trials, f"Per-object burst latency, N={n}"))
    doc = {
        "facts": facts,
        "summary": summary,
        "ratios": {
            f.key: {
                "minop/floor": ratio(summary, "minop", "floor", f.key),
                "kopf/minop": ratio(summary, "kopf", "minop", f.key),
            }
            for f in FIGURES
        },
        "targets": rows,
        "trials": [t.as_dict() for t in trials],
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    lines = table(summary)
    md = [
        f"# minop bench {facts['date']} at {facts['commit']}",
        "",
        *(f"- {k}: {v}" for k, v in facts.items() if not isinstance(v, dict)),
        *(
            f"- {k}: {sub}: {v}"
            for k, d in facts.items()
            if isinstance(d, dict)
            for sub, v in d.items()
        ),
        "",
        "## Figures (median of the repeats, min-max in brackets)",
        "",
        *lines,
        "",
        "## Targets (issue 28)",
        "",
        *target_table(rows, n),
        "",
        "## API cost by verb and resource (median trial per contender)",
        "",
        *_cost_lines(trials),
        "",
        "## Errors",
        "",
        *([f"- {t.contender} #{t.repeat}: {e}" for t in trials for e in t.errors] or ["none"]),
        "",
        f"![per-object latency]({chart})",
        "",
    ]
    path = out_dir / f"{stem}.md"
    path.write_text("\n".join(md))
    return path, [*lines, "", *target_table(rows, n)]


def _cost_lines(trials: list[Trial]) -> list[str]:
    out = []
    for name in ORDER:
        mine = [t for t in trials if t.contender == name]
        if not mine:
            continue
        t = sorted(mine, key=lambda t: sum(t.burst_writes.values()))[len(mine) // 2]
        for phase, counts in (
            ("burst writes", t.burst_writes),
            ("burst reads", t.burst_reads),
            ("update writes", t.update_writes),
            ("restart writes", t.restart_writes),
            ("restart reads", t.restart_reads),
        ):
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
            out.append(f"- {name}, {phase} (N={t.n}): {detail}")
    return out


def rerender(path: Path) -> Path:
    """Write a results file's .md/.svg (and .json) again from the trials it holds, e.g.
    after a change to how figures are computed or shown."""
    doc = json.loads(path.read_text())
    trials = [
        Trial(**{**t, "rss_mb": {int(k): v for k, v in t["rss_mb"].items()}}) for t in doc["trials"]
    ]
    return write(path.parent, path.stem, doc["facts"], trials)[0]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=rerender.__doc__)
    p.add_argument("json", type=Path, nargs="+")
    for f in p.parse_args().json:
        print(rerender(f))
