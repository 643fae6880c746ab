"""Small inline SVG charts for the evidence report: a trend line and horizontal bars, no scripts.

Every value is escaped; a chart is a self-contained ``<svg>`` element that any browser, printer or
PDF converter shows as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 560, 180, 36
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700")


def line_chart(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, percent: bool = False
) -> str:
    """One line per series over the labels (days); a gap where a value is None."""
    values = [v for _, points in series for v in points if v is not None]
    top = max([*values, 1.0 if percent else 0.0]) or 1.0
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / (count - 1) if count > 1 else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<text x="4" y="{PAD + 4}" font-size="10">{escape(_fmt(top, percent))}</text>',
        f'<text x="4" y="{HEIGHT - PAD}" font-size="10">0</text>',
    ]
    if labels:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{escape(labels[0])}</text>')
        parts.append(
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">{escape(labels[-1])}</text>'
        )
    for n, (name, points) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        segment: list[str] = []
        for i, value in enumerate(points):
            if value is None:
                parts += _polyline(segment, colour)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(value):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(labels[i] if i < len(labels) else '')}: "
                f"{escape(_fmt(value, percent))}</title></circle>"
            )
        parts += _polyline(segment, colour)
        parts.append(
            f'<text x="{WIDTH - PAD - 150}" y="{PAD + 12 * n}" font-size="11" fill="{colour}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[tuple[str, float, float | None]], *, percent: bool = False) -> str:
    """Horizontal bars: (label, value, part of it to shade darker, e.g. the ungoverned part)."""
    row = 22
    height = PAD + row * max(len(bars), 1)
    top = max([v for _, v, _ in bars] + [1.0 if percent else 0.0]) or 1.0
    left, span = 190, WIDTH - 190 - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img">'
    ]
    for i, (label, value, part) in enumerate(bars):
        y = 10 + i * row
        width = span * value / top
        parts.append(f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{width:.1f}" height="16" fill="#8ab4f8"/>')
        if part:
            parts.append(f'<rect x="{left}" y="{y}" width="{span * part / top:.1f}" height="16" fill="#d1242f"/>')
        parts.append(
            f'<text x="{left + width + 4:.1f}" y="{y + 13}" font-size="11">{escape(_fmt(value, percent))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _polyline(points: list[str], colour: str) -> list[str]:
    if len(points) < 2:
        return []
    return [f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>']


def _fmt(value: float, percent: bool) -> str:
    return f"{value * 100:.1f} %" if percent else f"{value:,.0f}"
