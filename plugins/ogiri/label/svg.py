"""A tiny SVG bar-chart writer for the labeling report (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 560, 280, 40


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, x_title: str = "",
              y_title: str = "count") -> str:
    """An SVG document: one bar per label, the value above each bar."""
    top = max([float(v) for v in values] + [1.0])
    n = max(len(values), 1)
    slot = (WIDTH - 2 * PAD) / n
    plot_h = HEIGHT - 2 * PAD - 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
             f"<title>{escape(title)}</title>",
             f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
             f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" '
             f'text-anchor="middle">{escape(y_title)}</text>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_title)}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * float(value) / top
        x = PAD + i * slot + slot * 0.1
        y = HEIGHT - PAD - h
        parts += [f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" fill="#4f7cac"/>',
                  f'<text x="{x + slot * 0.4:.1f}" y="{y - 3:.1f}" text-anchor="middle">{_fmt(value)}</text>',
                  f'<text x="{x + slot * 0.4:.1f}" y="{HEIGHT - PAD + 13}" text-anchor="middle">'
                  f"{escape(str(label)[:14])}</text>"]
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
