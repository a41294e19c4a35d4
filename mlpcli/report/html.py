"""One self-contained HTML page: a run's report (`mlp report`), or several runs side by side
(`mlp compare --out`). Images are embedded as data: URIs, so the file needs no network and
no folder beside it; every text from a checkpoint is escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
img { max-width: 100%; }
"""


def text(value) -> str:
    """`value` as text in a page: markup in it is shown, never run."""
    return html.escape(str(value))


def png_tag(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def svg_tag(svg: str) -> str:
    return svg  # inline SVG is markup already, built from numbers and escaped names


def table(header: Sequence[str], rows: Sequence[Sequence], text_columns: int = 1) -> str:
    """An HTML table; the first `text_columns` columns are left-aligned text."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cls = ' class="text"' if i < text_columns else ""
            cells.append(f"<td{cls}>{html.escape(_shown(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A whole page: `sections` are (heading, HTML body) pairs, headings escaped here."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def curves_svg(runs: Sequence[tuple[str, list[float]]], label: str) -> str:
    """Overlaid line charts of one figure per epoch (values in [0, 1]), one line per run,
    drawn as inline SVG (so `mlp compare` needs no plotting library)."""
    width, height, margin = 640, 300, 40
    values = [v for _, series in runs for v in series if v is not None]
    if not values:
        return "<p>No validation figures to draw.</p>"
    low, high = min(values), max(values)
    high = high if high > low else low + 1e-3
    longest = max(len(series) for _, series in runs)
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")

    def x(epoch: int) -> float:
        return margin + (width - 2 * margin) * (epoch - 1) / max(1, longest - 1)

    def y(value: float) -> float:
        return height - margin - (height - 2 * margin) * (value - low) / (high - low)

    lines = []
    for i, (name, series) in enumerate(runs):
        points = " ".join(
            f"{x(e):.1f},{y(v):.1f}" for e, v in enumerate(series, 1) if v is not None
        )
        colour = colours[i % len(colours)]
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            f'<text x="{width - margin + 4}" y="{20 + 16 * i}" fill="{colour}" '
            f'font-size="12">{html.escape(name)}</text>'
        )
    axes = (
        f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" '
        f'y2="{height - margin}" stroke="#888"/>'
        f'<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{height - margin}" stroke="#888"/>'
        f'<text x="{margin}" y="{height - 10}" font-size="12">epoch 1</text>'
        f'<text x="{width - margin - 50}" y="{height - 10}" font-size="12">epoch {longest}</text>'
        f'<text x="2" y="{margin}" font-size="11">{high:.4f}</text>'
        f'<text x="2" y="{height - margin}" font-size="11">{low:.4f}</text>'
        f'<text x="{width / 2 - 60}" y="16" font-size="13">{html.escape(label)}</text>'
    )
    canvas = max(height, 20 + 16 * len(runs))  # the legend, a line a run, stays inside
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 160}" height="{canvas}" '
        f'role="img" aria-label="{html.escape(label)}">{axes}{"".join(lines)}</svg>'
    )
