"""The latency chart, drawn as hand-written SVG: no plotting library to install or pin.

Offered load (deliveries/s) across, latency down, both on log scales; one colour per server,
p50 a solid line and p99 a dashed one, the 40 ms p99 target a grey rule. A point where the
server lost more than 1 % of the messages is drawn hollow: its latency only covers what
arrived.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 820, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 250, 50, 60
COLOURS = ("#1f77b4", "#9467bd", "#ff7f0e", "#2ca02c", "#7f7f7f", "#d62728")
TARGET_MS = 40.0


def _decades(low: float, high: float) -> list[float]:
    """1-2-5 ticks covering [low, high]."""
    ticks = []
    exponent = math.floor(math.log10(low))
    while 10**exponent <= high * 1.0001:
        for step in (1, 2, 5):
            value = step * 10**exponent
            if low * 0.9999 <= value <= high * 1.0001:
                ticks.append(value)
        exponent += 1
    return ticks


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def latency_svg(series: dict[str, list[dict]], title: str) -> str:
    """`series`: server label -> points {load, p50, p99 (seconds), lost (0..1)}."""
    points = [p for pts in series.values() for p in pts if p.get("p50") and p.get("p99")]
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="80">'
            '<text x="10" y="40">no latency measured</text></svg>\n'
        )
    loads = [p["load"] for p in points]
    values = [v * 1000 for p in points for v in (p["p50"], p["p99"])] + [TARGET_MS]
    x_low, x_high = min(loads) / 1.3, max(loads) * 1.3
    y_low = 10 ** math.floor(math.log10(min(values)))
    y_high = 10 ** math.ceil(math.log10(max(values)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(load: float) -> float:
        return LEFT + plot_w * math.log10(load / x_low) / math.log10(x_high / x_low)

    def y(value_ms: float) -> float:
        return TOP + plot_h * (1 - math.log10(value_ms / y_low) / math.log10(y_high / y_low))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in _decades(x_low, x_high):
        out.append(
            f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{TOP + plot_h}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{_label(tick)}</text>"
        )
    for tick in _decades(y_low, y_high):
        out.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>'
        f'<line x1="{LEFT}" y1="{y(TARGET_MS):.1f}" x2="{LEFT + plot_w}" '
        f'y2="{y(TARGET_MS):.1f}" stroke="#999" stroke-width="1.5" stroke-dasharray="2 3"/>'
        f'<text x="{LEFT + plot_w - 4}" y="{y(TARGET_MS) - 5:.1f}" text-anchor="end" '
        f'fill="#777">p99 target {TARGET_MS:.0f} ms</text>'
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">'
        "offered load (deliveries/s to 100 receivers in one room)</text>"
        f'<text transform="translate(18 {TOP + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">latency, ms (send to receive)</text>'
    )
    legend_y = TOP + 10
    for index, (name, pts) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        pts = sorted((p for p in pts if p.get("p50") and p.get("p99")), key=lambda p: p["load"])
        for key, dash in (("p50", ""), ("p99", ' stroke-dasharray="6 4"')):
            path = " ".join(f"{x(p['load']):.1f},{y(p[key] * 1000):.1f}" for p in pts)
            if len(pts) > 1:
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash}/>'
                )
            for p in pts:
                fill = "white" if p.get("lost", 0) > 0.01 else colour
                out.append(
                    f'<circle cx="{x(p["load"]):.1f}" cy="{y(p[key] * 1000):.1f}" r="3.5" '
                    f'fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
                )
        lx = LEFT + plot_w + 16
        out.append(
            f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 26}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{lx + 32}" y="{legend_y + 4}">{escape(name)}</text>'
        )
        legend_y += 20
    lx = LEFT + plot_w + 16
    out.append(
        f'<line x1="{lx}" y1="{legend_y + 8}" x2="{lx + 26}" y2="{legend_y + 8}" '
        'stroke="#444" stroke-width="2"/>'
        f'<text x="{lx + 32}" y="{legend_y + 12}">p50</text>'
        f'<line x1="{lx}" y1="{legend_y + 28}" x2="{lx + 26}" y2="{legend_y + 28}" '
        'stroke="#444" stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{lx + 32}" y="{legend_y + 32}">p99</text>'
        f'<circle cx="{lx + 13}" cy="{legend_y + 48}" r="3.5" fill="white" stroke="#444" '
        'stroke-width="1.5"/>'
        f'<text x="{lx + 32}" y="{legend_y + 52}">over 1 % lost</text>'
    )
    out.append("</svg>\n")
    return "\n".join(out)
