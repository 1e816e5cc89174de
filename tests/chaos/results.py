"""Figures the chaos scenarios measure, and the results table ``make chaos`` writes.

Each test fills a ``Figures`` (the ``figures`` fixture) and it is appended, as one JSON
line, to the file named by MINOP_CHAOS_RESULTS (pytest-xdist workers append to the same
file; one ``write`` of a short line per test). ``python tests/chaos/results.py IN OUT
COMMIT`` renders the Markdown report: per scenario the faults injected, recoveries,
max and median recovery time, objects lost, duplicates and requests made while
throttled, then every attached section (e.g. the RBAC matrix).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figures:
    test: str
    faults: int = 0  # faults injected
    recoveries: list[float] = field(default_factory=list)  # seconds, one per recovered fault
    lost: int = 0  # objects that never converged / vanished
    duplicates: int = 0  # duplicate children or hook-visible double creates
    throttled_requests: int | None = None  # requests made while the API server throttled
    notes: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)  # title -> Markdown
    outcome: str = "FAIL"  # pass, FAIL or xfail (a known defect, named in the test)

    def fault(self, n: int = 1) -> None:
        self.faults += n

    def recovered(self, seconds: float) -> None:
        self.recoveries.append(round(seconds, 2))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def save(self, outcome: str) -> None:
        self.outcome = outcome
        out = os.environ.get("MINOP_CHAOS_RESULTS")
        if not out:
            return
        line = json.dumps(asdict(self), sort_keys=True) + "\n"
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _seconds(values: list[float], fn: str) -> str:
    if not values:
        return "-"
    v = max(values) if fn == "max" else statistics.median(values)
    return f"{v:.2f}s"


def render(rows: list[dict], commit: str, date: str) -> str:
    rows = sorted(rows, key=lambda r: r["test"])
    out = [
        f"# Chaos results {date} ({commit})",
        "",
        "Written by `make chaos` (tests/chaos/README.md explains each scenario).",
        "",
        "| scenario | result | faults | recoveries | max recovery | median recovery "
        "| lost | duplicates | requests while throttled |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        name = r["test"].split("::", 1)[-1]
        thr = "-" if r["throttled_requests"] is None else str(r["throttled_requests"])
        out.append(
            f"| `{name}` | {r['outcome']} | {r['faults']} "
            f"| {len(r['recoveries'])} | {_seconds(r['recoveries'], 'max')} "
            f"| {_seconds(r['recoveries'], 'median')} | {r['lost']} | {r['duplicates']} | {thr} |"
        )
    total_lost = sum(r["lost"] for r in rows)
    total_dup = sum(r["duplicates"] for r in rows)
    allrec = [s for r in rows for s in r["recoveries"]]
    out += [
        "",
        f"Totals: {sum(r['faults'] for r in rows)} faults, {len(allrec)} recoveries "
        f"(max {_seconds(allrec, 'max')}, median {_seconds(allrec, 'median')}), "
        f"{total_lost} objects lost, {total_dup} duplicates, "
        f"{sum(1 for r in rows if r['outcome'] == 'FAIL')} failed scenarios, "
        f"{sum(1 for r in rows if r['outcome'] == 'xfail')} known defects (xfail).",
    ]
    for r in rows:
        if r["notes"] or r["sections"]:
            out += ["", f"## `{r['test'].split('::', 1)[-1]}`", ""]
            out += [f"- {n}" for n in r["notes"]]
            for title, body in r["sections"].items():
                out += ["", f"### {title}", "", body]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    src, dst, commit = argv
    path = Path(src)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    date = os.environ.get("MINOP_CHAOS_DATE", "")
    Path(dst).write_text(render(rows, commit, date))
    return 0 if rows and all(r["outcome"] != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
