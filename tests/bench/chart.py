"""The bench's chart: per-object latency of every contender, as an SVG written with
the standard library."""

from __future__ import annotations

from tests.bench.scenarios import Trial

ORDER = ("minop", "kopf", "floor")

COLOURS = {"minop": "#1f77b4", "kopf": "#d62728", "floor": "#2ca02c"}


def svg(trials: list[Trial], title: str) -> str:
    """Per-object latency, sorted (a CDF on its side): children solid, Ready dashed,
    all repeats pooled."""
    w, h, left, bottom, top, right = 640, 360, 56, 40, 30, 110
    series: dict[str, dict[str, list[float]]] = {}
    for t in trials:
        s = series.setdefault(t.contender, {"children": [], "ready": []})
        s["children"] += t.children_lat
        s["ready"] += t.ready_lat
    ymax = max([v for s in series.values() for vs in s.values() for v in vs] or [1.0]) * 1.05
    pw, ph = w - left - right, h - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{title}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
        f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">'
        "objects, by latency (%)</text>",
        f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
        'text-anchor="middle">seconds after the object appeared</text>',
    ]
    for i in range(5):
        y = top + ph - ph * i / 4
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.0f}" text-anchor="end">{ymax * i / 4:.1f}</text>'
        )
        x = left + pw * i / 4
        parts.append(f'<text x="{x:.0f}" y="{top + ph + 14}" text-anchor="middle">{25 * i}</text>')
    legend_y = top + 10
    for name in ORDER:
        if name not in series:
            continue
        for kind, dash in (("children", ""), ("ready", ' stroke-dasharray="5,3"')):
            vs = sorted(series[name][kind])
            if not vs:
                continue
            step = max(1, len(vs) // 200)  # at most ~200 points a line
            vs = vs[step - 1 :: step]
            pts = " ".join(
                f"{left + pw * (i + 1) / len(vs):.1f},{top + ph - ph * v / ymax:.1f}"
                for i, v in enumerate(vs)
            )
            parts.append(
                f'<polyline fill="none" stroke="{COLOURS[name]}" stroke-width="1.5"{dash} '
                f'points="{pts}"/>'
            )
            parts.append(
                f'<line x1="{w - right + 10}" y1="{legend_y}" x2="{w - right + 30}" '
                f'y2="{legend_y}" stroke="{COLOURS[name]}" stroke-width="2"{dash}/>'
            )
            parts.append(f'<text x="{w - right + 34}" y="{legend_y + 4}">{name} {kind}</text>')
            legend_y += 16
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
