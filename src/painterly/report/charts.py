"""The report's drawings as inline SVG: log-scale loss charts and the method's diagram.

Drawn here rather than with a plotting library so that the page needs no script and no
outside file; every label that comes from the run is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def num(v: float) -> str:
    """A number for people: ``0.0123`` or ``3.4×10⁻¹⁶``, never ``3.4e-16`` (whose hyphen
    also lets the browser break the line inside the number)."""
    text = f"{v:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa}×{power}"


def _power_label(exponent: int) -> str:
    if exponent == 0:
        return "1"
    if exponent == 1:
        return "10"
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def log_chart_svg(
    series: dict[str, tuple[list[float], str]],
    *,
    title: str,
    width: int = 520,
    height: int = 300,
    xlabel: str = "step",
    dashed: Sequence[str] = (),
    decades: int = 8,
) -> str:
    """Line chart on a log y axis as an inline SVG string.

    ``series`` maps a label to (values at steps 1..N, color); labels in ``dashed`` are
    drawn dashed. Values <= 0 or not finite cannot be drawn on a log scale and are left out
    (a gap in the line), and so are values more than ``decades`` powers of ten below the
    largest: a loss that starts at 1e-11 would otherwise squash everything else.
    """
    left, right, top, bottom = 52, 12, 28, 40
    pw, ph = width - left - right, height - top - bottom
    finite = [v for vals, _ in series.values() for v in vals if v > 0 and math.isfinite(v)]
    hi = math.ceil(math.log10(max(finite))) if finite else 1
    lo = max(math.floor(math.log10(min(finite))), hi - decades) if finite else -1
    hi = max(hi, lo + 1)
    floor = 10.0**lo
    n = max((len(vals) for vals, _ in series.values()), default=1)

    def sx(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def sy(v: float) -> float:
        return top + ph * (hi - math.log10(v)) / (hi - lo)

    out = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}" '
        'class="chart">',
        f'<text x="{left}" y="16" class="chart-title">{html.escape(title)}</text>',
    ]
    step = max(1, math.ceil((hi - lo) / 8))  # at most ~8 labelled decades
    for e in range(lo, hi + 1):
        y = sy(10.0**e)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        if (e - lo) % step == 0:
            out.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" '
                f'text-anchor="end">{_power_label(e)}</text>'
            )
    for i in _nice_ticks(n):
        x = sx(i - 1)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" class="axis"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{i}</text>'
        )
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="tick" '
        f'text-anchor="middle">{html.escape(xlabel)}</text>'
    )
    stride = max(1, n // 400)  # a few hundred points per line is plenty at this width
    for label, (vals, color) in series.items():
        dash = ' stroke-dasharray="6 4"' if label in dashed else ""
        for run_pts in _segments(vals, stride, floor):
            pts = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in run_pts)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.8" '
                f'stroke-linejoin="round"{dash}><title>{html.escape(label)}</title></polyline>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{color}"></i>{html.escape(label)}</span>'
        for label, (_, color) in series.items()
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _segments(vals: list[float], stride: int, floor: float) -> list[list[tuple[int, float]]]:
    """Runs of drawable points (>= floor and finite), thinned to every ``stride``-th step."""
    runs: list[list[tuple[int, float]]] = [[]]
    last = len(vals) - 1
    for i, v in enumerate(vals):
        if v >= floor and math.isfinite(v):
            if i % stride == 0 or i == last:
                runs[-1].append((i, v))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if len(r) > 1]


def _nice_ticks(n: int) -> list[int]:
    """Step numbers 1..n to label: 1, n and round numbers between."""
    if n <= 1:
        return [1]
    raw = max(n / 5, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    ticks = [1] + [t for t in range(step, n, step) if t > 1]
    if n - ticks[-1] < step / 3:
        ticks.pop()
    return [*ticks, n]


SERIES_COLOURS = {"total": "#222222", "content": "#1f6fb4", "style": "#c7352b", "tv": "#8a8a8a"}


def pipeline_svg(content_layer: str, style_count: int, encoder_words: str) -> str:
    """The method as a diagram: three images, one frozen network, losses, a gradient that
    flows back to the pixels and nowhere else."""
    e = html.escape
    boxes = [
        (20, 20, 170, 44, "photo", "box-in"),
        (20, 108, 170, 56, "generated image", "box-var"),
        (20, 208, 170, 44, "painting", "box-in"),
        (280, 78, 250, 114, "encoder", "box-frozen"),
        (610, 20, 250, 60, "content loss", "box-loss"),
        (610, 190, 250, 60, "style loss", "box-loss"),
        (610, 112, 250, 44, "TV loss", "box-loss"),
    ]
    parts = [
        '<svg viewBox="0 0 900 320" class="diagram" '
        'role="img" aria-label="How the losses are computed">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
        "fill='#555'/></marker><marker id='arrow-red' viewBox='0 0 10 10' refX='9' refY='5' "
        "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
        "<path d='M0,0 L10,5 L0,10 z' fill='#c7352b'/></marker></defs>",
    ]
    for x, y, w, h, _, cls in boxes:
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" class="{cls}"/>')
    texts = [
        (105, 47, "photo (fixed)", "dlabel"),
        (105, 132, "generated image", "dlabel strong"),
        (105, 152, "the only variable", "dsub"),
        (105, 235, "painting (fixed)", "dlabel"),
        (405, 104, "encoder network", "dlabel strong"),
        (405, 125, e(encoder_words), "dsub"),
        (405, 145, "weights frozen: never change", "dsub"),
        (405, 170, "out: activations (feature maps)", "dsub"),
        (735, 45, "content loss", "dlabel"),
        (735, 65, f"feature maps vs photo's, {e(content_layer)}", "dsub"),
        (735, 132, "total-variation loss: pixel jumps", "dsub"),
        (735, 215, "style loss", "dlabel"),
        (735, 235, f"Gram matrices vs painting's, {style_count} layers", "dsub"),
    ]
    for x, y, text, cls in texts:
        parts.append(f'<text x="{x}" y="{y}" text-anchor="middle" class="{cls}">{text}</text>')
    arrows = [
        ("M190,42 C235,42 240,100 280,104", ""),
        ("M190,136 L280,136", ""),
        ("M190,230 C235,230 240,170 280,166", ""),
        ("M530,104 C570,104 570,50 610,50", ""),
        ("M530,166 C570,166 570,220 610,220", ""),
        ("M190,120 C250,8 550,8 610,126", "skip"),
    ]
    for d, kind in arrows:
        cls = "flow-skip" if kind else "flow"
        parts.append(f'<path d="{d}" class="{cls}" marker-end="url(#arrow)"/>')
    parts.append(
        '<path d="M735,252 C735,305 420,305 105,166" class="grad" marker-end="url(#arrow-red)"/>'
    )
    parts.append(
        '<text x="450" y="296" text-anchor="middle" class="dgrad">gradient of the total loss '
        "with respect to the pixels: the optimiser changes the image, never the network</text>"
    )
    parts.append('<text x="405" y="30" text-anchor="middle" class="dsub">pixels</text>')
    parts.append("</svg>")
    return "".join(parts)
