"""Server-side SVG charts: stacked bars, histograms, lines over time, a timeline and drift against a threshold.

Hand-written rather than a charting library: the pages need four plain chart kinds, and an SVG
that takes its colours from CSS custom properties (``var(--fg)``, ``var(--c1)``…) follows the page's
light or dark theme without re-rendering (matplotlib bakes colours into its SVG, and would add a
large dependency to every MWAA worker's ``requirements.txt``). No JavaScript, no CDN. Every chart
is an inline ``<svg role="img">`` with an ``aria-label`` and a ``<title>`` per mark (hover text).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 760, 260
#: The size of the small multiples (one chart per feature or per rating scale, two or three a row).
SMALL = (440, 220)
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 64
#: Series colours, defined per theme in the page CSS.
COLOURS = ("var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1) if value >= 1 else 0.1
    while step * 10 < value:
        step *= 10
    for mult in (1, 2, 2.5, 5, 10):
        if step * mult >= value:
            return step * mult
    return step * 10


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _frame(label: str, body: list[str], y_max: float, legend: Sequence[str] = (),
           size: tuple[int, int] = (WIDTH, HEIGHT)) -> str:
    """The ``<svg>`` of ``size`` with its y axis (four grid lines), legend and ``body``."""
    width, height = size
    plot_h = height - TOP - BOTTOM
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(y_max * i / 4)}</text>')
    for i, name in enumerate(legend):
        x = LEFT + i * 150
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 16}" y="16" class="tick">{escape(name)}</text>')
    parts.extend(body)
    parts.append("</svg>")
    return "".join(parts)


def _x_label(x: float, text: str, many: bool, height: int = HEIGHT) -> str:
    y = height - BOTTOM + 14
    if many:
        return (f'<text x="{x:.1f}" y="{y}" transform="rotate(35 {x:.1f} {y})" class="tick">'
                f"{escape(text[:22])}</text>")
    return f'<text x="{x:.1f}" y="{y}" text-anchor="middle" class="tick">{escape(text[:22])}</text>'


def bars(label: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
         size: tuple[int, int] = (WIDTH, HEIGHT)) -> str:
    """Stacked bars: one bar per category, one segment per series (a histogram with one series)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    y_max = _nice_max(max(totals, default=0))
    plot_w, plot_h = size[0] - LEFT - RIGHT, size[1] - TOP - BOTTOM
    slot = plot_w / max(1, len(categories))
    width = max(2.0, slot * 0.7)
    many = len(categories) > 8
    body = []
    for i, category in enumerate(categories):
        x = LEFT + slot * i + (slot - width) / 2
        base = TOP + plot_h
        for s, (name, values) in enumerate(series):
            h = plot_h * values[i] / y_max
            if values[i] > 0:
                body.append(
                    f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(category)} · {escape(name)}: '
                    f"{_fmt(values[i])}</title></rect>"
                )
            base -= h
        body.append(_x_label(x + width / 2, category, many, size[1]))
    return _frame(label, body, y_max, [name for name, _ in series] if len(series) > 1 else (), size)


def lines(label: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]]) -> str:
    """One polyline per series over evenly spaced points (``None`` = no value at that point)."""
    values = [v for _, vs in series for v in vs if v is not None]
    y_max = _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    pad = 28  # the first and last windows' labels stay inside the chart (they are centred or slanted)
    step = (plot_w - 2 * pad) / (len(x_labels) - 1) if len(x_labels) > 1 else 0
    xs = [LEFT + (pad + step * i if len(x_labels) > 1 else plot_w / 2) for i in range(len(x_labels))]
    body = [_x_label(x, text, len(x_labels) > 8) for x, text in zip(xs, x_labels, strict=True)]
    for s, (name, vs) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        points = [(xs[i], TOP + plot_h - plot_h * v / y_max, v) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body.append(f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y, v), text in zip(points, [x_labels[i] for i, v in enumerate(vs) if v is not None], strict=True):
            body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                        f"<title>{escape(text)} · {escape(name)}: {_fmt(v)}</title></circle>")
    return _frame(label, body, y_max, [name for name, _ in series])


#: Timeline mark colour per deployment action.
ACTION_COLOURS = {"create": "var(--c1)", "update": "var(--c2)", "rollback": "var(--c4)", "skip": "var(--muted)"}


def timeline(label: str, events: Sequence[dict]) -> str:
    """Deployment events left (oldest) to right: ``{"when", "action", "status", "model", "champion"}``.
    The serving champion gets a ring and a "champion" tag; failed actions are hollow."""
    height = 150
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(events))
    axis = 70
    body = [f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>',
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{axis}" y2="{axis}" class="grid"/>']
    for i, ev in enumerate(events):
        x = LEFT + slot * i + slot / 2
        colour = ACTION_COLOURS.get(ev["action"], "var(--muted)")
        fill = colour if ev["status"] == "succeeded" else "none"
        tip = f"{ev['when']} · {ev['action']} {ev['status']} · {ev.get('model') or '-'}"
        body.append(f'<circle class="point" cx="{x:.1f}" cy="{axis}" r="8" fill="{fill}" stroke="{colour}" '
                    f'stroke-width="2"><title>{escape(tip)}</title></circle>')
        if ev.get("champion"):
            body.append(f'<circle cx="{x:.1f}" cy="{axis}" r="13" fill="none" stroke="var(--fg)" stroke-width="2"/>')
            body.append(f'<text x="{x:.1f}" y="{axis - 20}" text-anchor="middle" class="tag">champion</text>')
        body.append(f'<text x="{x:.1f}" y="{axis + 28}" text-anchor="middle" class="tick">{escape(ev["action"])}</text>')
        body.append(f'<text x="{x:.1f}" y="{axis + 44}" text-anchor="middle" class="tick">'
                    f"{escape(str(ev['when'])[:16])}</text>")
    body.append("</svg>")
    return "".join(body)


def drift(label: str, x_labels: Sequence[str], values: Sequence[float | None],
          thresholds: Sequence[float | None], violations: Sequence[bool]) -> str:
    """A feature's drift score per window (points joined by a line; ``None`` = no score that window)
    against its threshold (a dashed line); a window over the threshold is a larger ringed mark with
    class ``violation``, so the chart reads the same in colour and in grey."""
    known = [v for v in (*values, *thresholds) if v is not None]
    y_max = _nice_max(max(known, default=0) * 1.1)
    width, height = SMALL
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    pad = 28  # the first and last windows' labels stay inside the chart (they are centred or slanted)
    step = (plot_w - 2 * pad) / (len(x_labels) - 1) if len(x_labels) > 1 else 0
    xs = [LEFT + (pad + step * i if len(x_labels) > 1 else plot_w / 2) for i in range(len(x_labels))]

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * min(v, y_max) / y_max

    label_every = max(1, -(-len(x_labels) // 8))
    body = [_x_label(x, text, len(x_labels) > 4, height) for i, (x, text) in enumerate(zip(xs, x_labels, strict=True))
            if i % label_every == 0]
    limits = [(xs[i], y(t), t) for i, t in enumerate(thresholds) if t is not None]
    if limits:
        ends = [(LEFT, limits[0][1])] if len(limits) == 1 else []
        ends += [(x, ty) for x, ty, _ in limits] + ([(width - RIGHT, limits[0][1])] if len(limits) == 1 else [])
        body.append(f'<polyline class="threshold" points="{" ".join(f"{x:.1f},{ty:.1f}" for x, ty in ends)}" '
                    f'fill="none" stroke="var(--c4)" stroke-width="1.5" stroke-dasharray="6 4">'
                    f"<title>threshold {_fmt(limits[-1][2])}</title></polyline>")
    points = [(xs[i], y(v), v, i) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{py:.1f}" for x, py, _, _ in points)
        body.append(f'<polyline class="line" points="{path}" fill="none" stroke="var(--c1)" stroke-width="2"/>')
    for x, py, v, i in points:
        tip = f"{x_labels[i]}: {_fmt(v)}" + (f" (threshold {_fmt(thresholds[i])})" if thresholds[i] is not None else "")
        if violations[i]:
            body.append(f'<circle class="point violation" cx="{x:.1f}" cy="{py:.1f}" r="6" fill="var(--c4)" '
                        f'stroke="var(--fg)" stroke-width="2"><title>{escape(tip)} · violation</title></circle>')
        else:
            body.append(f'<circle class="point" cx="{x:.1f}" cy="{py:.1f}" r="3.5" fill="var(--c1)">'
                        f"<title>{escape(tip)}</title></circle>")
    body += ['<rect x="56" y="6" width="12" height="12" fill="var(--c1)"/><text x="72" y="16" class="tick">score</text>',
             '<line x1="136" x2="152" y1="12" y2="12" stroke="var(--c4)" stroke-width="2" stroke-dasharray="4 2"/>'
             '<text x="156" y="16" class="tick">threshold</text>',
             '<circle cx="236" cy="12" r="5" fill="var(--c4)" stroke="var(--fg)" stroke-width="2"/>'
             '<text x="246" y="16" class="tick">violation</text>']
    return _frame(label, body, y_max, size=SMALL)
