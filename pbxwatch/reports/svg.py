"""Small inline SVG charts, made here (no JavaScript, no chart library):
grouped bars and lines, two series (this period and the one before)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 26, 34
COLOURS = ("#1f5f99", "#9bb7d4")  # this period, the period before


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for exp in range(-3, 12):
        for step in (1, 2, 2.5, 5):
            top = step * 10**exp
            if top >= value:
                return float(top)
    return value


def _axis(top: float, fmt: str, title: str) -> list[str]:
    h = HEIGHT - TOP - BOTTOM
    # the title is the heading above the chart and the SVG's aria-label
    del title
    out: list[str] = []
    for k in range(5):
        v = top * k / 4
        y = TOP + h - h * k / 4
        label = f"{100 * v:g} %" if fmt == "pct" else f"{v:g}"
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>')
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" class="a">{label}</text>'
        )
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    x = WIDTH - RIGHT - 150 * len(names)
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="5" width="10" height="10" fill="{COLOURS[i]}"/>')
        out.append(f'<text x="{x + 14}" y="14" class="a">{escape(name)}</text>')
        x += 150
    return out


def _wrap(parts: list[str], label: str) -> Markup:
    style = "<style>.a{font:10px sans-serif;fill:#333}.g{stroke:#ddd;stroke-width:1}</style>"
    body = "".join(parts)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{escape(label)}">{style}{body}</svg>'
    )


def _canvas(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: str,
) -> tuple[float, float, list[str], int]:
    """What both charts start from: the scale's top, the plot's height, the
    axis and legend drawn, and the number of categories."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_max(max(values, default=0.0))
    parts = _axis(top, fmt, title) + _legend([name for name, _ in series])
    return top, HEIGHT - TOP - BOTTOM, parts, max(len(categories), 1)


def bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: str = "num",
) -> Markup:
    """Grouped vertical bars, one group per category."""
    top, h, parts, n = _canvas(title, categories, series, fmt)
    group = (WIDTH - LEFT - RIGHT) / n
    bar = group * 0.8 / max(len(series), 1)
    for ci, cat in enumerate(categories):
        x0 = LEFT + ci * group + group * 0.1
        for si, (_, vs) in enumerate(series):
            v = vs[ci]
            if v is None:
                continue
            bh = h * v / top
            parts.append(
                f'<rect x="{x0 + si * bar:.1f}" y="{TOP + h - bh:.1f}" width="{bar - 1:.1f}" '
                f'height="{bh:.1f}" fill="{COLOURS[si % 2]}"/>'
            )
        parts.append(
            f'<text x="{x0 + group * 0.4:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'class="a">{escape(cat)}</text>'
        )
    return _wrap(parts, title)


def lines(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: str = "pct",
) -> Markup:
    """One line per series over the categories (gaps where a value is None)."""
    top, h, parts, n = _canvas(title, categories, series, fmt)
    step = (WIDTH - LEFT - RIGHT) / n
    for si, (_, vs) in enumerate(series):
        points = [
            (LEFT + step * (i + 0.5), TOP + h - h * v / top)
            for i, v in enumerate(vs)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{COLOURS[si % 2]}" '
                'stroke-width="2"/>'
            )
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[si % 2]}"/>' for x, y in points
        ]
    for i, cat in enumerate(categories):
        parts.append(
            f'<text x="{LEFT + step * (i + 0.5):.1f}" y="{HEIGHT - BOTTOM + 14}" '
            f'text-anchor="middle" class="a">{escape(cat)}</text>'
        )
    return _wrap(parts, title)
