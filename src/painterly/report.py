"""``painterly explain``: one self-contained HTML page that shows what each loss does.

It answers the question learners ask of this method, "what exactly is being penalised,
and why activations rather than weights?", with pictures made by the same core API as
every other consumer (:func:`painterly.run`, called once per picture with one encoder
loaded up front):

* the loss curves of one stylisation, per term and per style layer, on a log scale;
* images reconstructed from noise out of one layer's content representation alone
  (Gatys et al. 2016, Fig. 1: shallow layers keep the pixels, deep ones the layout), and
  out of the style representation of growing sets of layers (textures at growing scales);
* the Gram matrices of one layer for photo, painting and result, and a few feature maps of
  the content layer, as heat maps.

Everything goes into one HTML string: images as base64 PNG data URIs, charts as inline SVG
drawn here, inline CSS, no script and no outside URL, so the file opens anywhere offline.
Nothing here touches the network's weights; the report says so, and shows why.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly import __version__
from painterly.api import (
    ImageLike,
    make_options,
    resolve_device,
    run,
)
from painterly.config import MAX_SIDE, Options
from painterly.encoders import Encoder, deepest, load_encoder, resolve_weights
from painterly.encoders.vgg import layer_names, resolve_layer
from painterly.errors import OptionsError, PainterlyError
from painterly.events import Callback, Notice, ignore
from painterly.image import MIN_SIDE, fit_size, load_image, resize, to_tensor
from painterly.losses import gram_mean
from painterly.pipeline import style_size

# Defaults of the report, chosen so that the whole page takes a few minutes on two CPU
# cores: the stylisation runs at REPORT_SIZE px for REPORT_STEPS steps, each of the 11
# reconstructions (default layers) at two thirds of that size for half as many steps.
# --size, --steps, --recon-size and --recon-steps change them.
REPORT_SIZE = 192
REPORT_STEPS = 200

# Reconstructions weigh their one loss term by this. The losses are in network-input units
# (0..255 for the Caffe weights), where a relative loss of weight 1 has a gradient so small
# (|g|_1 ~ 0.02) that L-BFGS's first step (of length |g|) barely moves the noise, and the
# curvature it then estimates from float32 differences is noise: the loss stalls. A large
# weight gives a normal first step (|g|_1 > 1, which L-BFGS normalises); past it L-BFGS is
# invariant to the scale, so the value itself does not matter.
RECON_WEIGHT = 1e6

GRAM_CHANNELS = 64  # the Gram heat maps show this many channels (a 64 x 64 corner)
FEATURE_MAPS = 6  # feature maps of the content layer shown for photo and result

Stage = Callable[[int, int, str], None]  # (number, of how many, what) before each slow step

SECTIONS = (
    ("question", "What is penalised, and why activations?"),
    ("result", "Photo, painting, result"),
    ("losses", "Loss curves"),
    ("content-reconstructions", "What each layer keeps of the photo"),
    ("style-reconstructions", "What the Gram matrices keep of the painting"),
    ("gram", "Gram matrices"),
    ("features", "Feature maps of the content layer"),
    ("settings", "Settings"),
)


@dataclass
class Report:
    """A finished report: the page and what it took to make it."""

    html: str
    seconds: float
    encoder: str
    fallback_reason: str | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Picture:
    image: Image.Image
    label: str
    note: str = ""
    highlight: bool = False


# --------------------------------------------------------------------------- the runs


def _order(layers: Sequence[str], arch: str) -> list[str]:
    """Unique layers, shallow to deep (names the architecture does not list keep their order)."""
    known = layer_names(arch) if arch in ("vgg16", "vgg19") else ()
    unique = list(dict.fromkeys(layers))
    return sorted(unique, key=lambda n: (known.index(n) if n in known else len(known), 0))


def _check_report_numbers(recon_size: int, recon_steps: int) -> None:
    if not 32 <= recon_size <= MAX_SIDE:
        raise OptionsError(f"--recon-size {recon_size} is out of range; use 32 to {MAX_SIDE} px")
    if not 1 <= recon_steps <= 1_000_000:
        raise OptionsError(f"--recon-steps {recon_steps} is out of range; use 1 to 1000000")


def explain(
    content: ImageLike,
    style: ImageLike,
    *,
    recon_size: int | None = None,
    recon_steps: int | None = None,
    callback: Callback = ignore,
    on_stage: Stage | None = None,
    encoder: Encoder | None = None,
    progress: bool = True,
    **overrides,
) -> Report:
    """Run the stylisation and the reconstructions and return the report page.

    ``overrides`` are :class:`~painterly.config.Options` fields, as for
    :func:`painterly.run`; ``size`` and ``steps`` default to the report's small
    REPORT_SIZE and REPORT_STEPS rather than the preset's. ``callback`` gets every run's
    events; ``on_stage`` is told before each run starts. Pass ``encoder`` to reuse one.
    """
    start = time.perf_counter()
    stage = on_stage or (lambda i, n, what: None)
    if "size" not in overrides and "height" not in overrides:
        overrides["size"], overrides["height"] = REPORT_SIZE, None
    overrides.setdefault("steps", REPORT_STEPS)
    make_options(None, **overrides)  # refuse bad options before anything slow
    main_side = overrides.get("size") or overrides.get("height") or REPORT_SIZE
    if recon_size is None:
        recon_size = max(MIN_SIDE, round(main_side * 2 / 3))
    if recon_steps is None:
        recon_steps = max(1, overrides["steps"] // 2)
    _check_report_numbers(recon_size, recon_steps)
    content_img, style_img = _load(content), _load(style)

    fallback_reason = None
    if encoder is None:
        weights, fallback = resolve_weights(
            make_options(None, **overrides).weights, progress=progress
        )
        if fallback:
            fallback_reason = fallback.reason
            callback(Notice(fallback.notice("the offline encoder")))
    else:
        weights = encoder.name
    if weights == "offline":
        # The report explains VGG's layers (Gatys et al.'s figures), so offline it uses
        # VGG19 with random weights rather than the offline encoder's own layers.
        weights = "random-vgg19"
    opts = make_options(None, weights_resolved=weights, **overrides).replace(weights=weights)
    # Layer names come from the options (the encoder may name its layers differently
    # one day); the report reads every style layer and the content layer.
    arch = encoder.arch if encoder is not None else _arch_of(weights)
    content_layer, style_layers, recon_layers = _layers(opts, arch)
    style_sets = [style_layers[: k + 1] for k in range(len(style_layers))]
    total = 1 + len(recon_layers) + len(style_sets)

    timings: dict[str, float] = {}
    if encoder is None:
        # One encoder for every run, built deep enough for the deepest layer any run reads
        # (load_encoder truncates the network after ``upto``).
        t = time.perf_counter()
        stage(0, total, f"loading the {weights} encoder")
        encoder = load_encoder(
            weights,
            upto=deepest(recon_layers, arch),
            pooling=opts.pooling,
            seed=opts.seed,
            device=resolve_device(opts.device),
            progress=progress,
        )
        timings["loading the encoder"] = time.perf_counter() - t
        if encoder.arch != arch:  # a weights file turned out to be another architecture
            content_layer, style_layers, recon_layers = _layers(opts, encoder.arch)

    def go(number: int, what: str, **changes):
        stage(number, total, what)
        result = run(content_img, style_img, encoder=encoder, callback=callback, **changes)
        if result.interrupted:
            raise KeyboardInterrupt
        return result

    t = time.perf_counter()
    main = go(1, f"stylising at {main_side} px for {overrides['steps']} steps", **overrides)
    timings["stylisation"] = time.perf_counter() - t

    # Reconstructions: from noise, one loss term only, never TV, always L-BFGS.
    recon = dict(
        overrides,
        size=recon_size,
        height=None,
        steps=recon_steps,
        init="noise",
        tv_weight=0.0,
        optimizer="lbfgs",
        lbfgs_restart=0,
    )
    t = time.perf_counter()
    content_pics = [_Picture(resize(content_img, _fit(content_img, recon_size)), "the photo")]
    for i, layer in enumerate(recon_layers):
        r = go(
            2 + i,
            f"reconstructing the photo from {layer} alone",
            **{
                **recon,
                "content_layer": layer,
                "style_layers": (layer,),  # read nothing deeper than needed; weight 0
                "content_weight": RECON_WEIGHT,
                "style_weight": 0.0,
            },
        )
        note = f"loss {_first_last(r.metrics['history'], 'content')}"
        content_pics.append(_Picture(r.image, layer, note, highlight=layer == content_layer))
    timings["content reconstructions"] = time.perf_counter() - t

    t = time.perf_counter()
    style_pics = [_Picture(resize(style_img, _fit(style_img, recon_size)), "the painting")]
    for i, layers in enumerate(style_sets):
        label = layers[0] if len(layers) == 1 else f"up to {layers[-1]}"
        r = go(
            2 + len(recon_layers) + i,
            f"texture from the Gram matrices of {', '.join(layers)}",
            **{
                **recon,
                "content_layer": layers[0],  # weight 0; the shallowest costs nothing extra
                "style_layers": tuple(layers),
                "content_weight": 0.0,
                "style_weight": RECON_WEIGHT,
            },
        )
        note = f"{len(layers)} layer{'s' * (len(layers) > 1)}, loss " + _first_last(
            r.metrics["history"], "style"
        )
        style_pics.append(_Picture(r.image, label, note))
    timings["style reconstructions"] = time.perf_counter() - t

    page = _Page(
        content_name=_name(content, "photo"),
        style_name=_name(style, "painting"),
        opts=opts.replace(content_layer=content_layer, style_layers=tuple(style_layers)),
        main=main,
        content_img=content_img,
        style_img=style_img,
        encoder=encoder,
        content_layer=content_layer,
        style_layers=style_layers,
        content_pics=content_pics,
        style_pics=style_pics,
        recon_size=recon_size,
        recon_steps=recon_steps,
        fallback_reason=fallback_reason,
        timings=timings,
    )
    text = page.render(seconds=time.perf_counter() - start)
    return Report(text, time.perf_counter() - start, encoder.name, fallback_reason, timings)


def _layers(opts: Options, arch: str) -> tuple[str, list[str], list[str]]:
    """(content layer, style layers, layers to reconstruct from), canonical, shallow first."""
    content_layer = resolve_layer(opts.content_layer, arch)
    style_layers = _order([resolve_layer(n, arch) for n in opts.style_layers], arch)
    return content_layer, style_layers, _order([*style_layers, content_layer], arch)


def _arch_of(weights: str) -> str:
    from painterly.encoders.registry import REGISTRY

    ws = REGISTRY.get(weights)
    return ws.arch if ws is not None else "vgg19"


def _load(item: ImageLike) -> Image.Image:
    return item.convert("RGB") if isinstance(item, Image.Image) else load_image(item)


def _name(item: ImageLike, fallback: str) -> str:
    return fallback if isinstance(item, Image.Image) else Path(item).name


def _fit(img: Image.Image, long_side: int) -> tuple[int, int]:
    return fit_size(*img.size, long_side)


def _num(v: float) -> str:
    """A number for people: ``0.0123`` or ``3.4×10⁻¹⁶``, never ``3.4e-16`` (whose hyphen
    also lets the browser break the line inside the number)."""
    text = f"{v:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa}×{power}"


def _first_last(history: list[dict[str, float]], key: str) -> str:
    return f"{_num(history[0][key])} → {_num(history[-1][key])}"


# --------------------------------------------------------------------------- pictures

# Colour maps as anchor colours, interpolated to 256 levels: viridis (perceptually even,
# readable in grey) for values >= 0, and a blue-white-red map for signed differences.
_VIRIDIS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 145, 140),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)
_DIVERGING = ((33, 102, 172), (103, 169, 207), (247, 247, 247), (239, 138, 98), (178, 24, 43))


def _lut(anchors) -> np.ndarray:
    a = np.asarray(anchors, np.float64)
    pos = np.linspace(0, 1, len(a))
    levels = np.linspace(0, 1, 256)
    return np.stack([np.interp(levels, pos, a[:, c]) for c in range(3)], -1).astype(np.uint8)


VIRIDIS, DIVERGING = _lut(_VIRIDIS), _lut(_DIVERGING)


def heatmap(values: np.ndarray, vmin: float, vmax: float, lut: np.ndarray, cell: int = 1):
    """A 2-D array as an RGB image through a colour map, each value a ``cell`` px square."""
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((np.asarray(values, np.float64) - vmin) / span, 0, 1)
    img = Image.fromarray(lut[np.rint(idx * 255).astype(np.int64)])
    if cell > 1:
        img = img.resize((img.width * cell, img.height * cell), Image.Resampling.NEAREST)
    return img


def colour_bar(lut: np.ndarray, width: int = 256, height: int = 10) -> Image.Image:
    row = np.linspace(0, 255, width).astype(np.int64)
    return Image.fromarray(np.repeat(lut[row][None], height, 0))


def data_uri(img: Image.Image) -> str:
    """A PNG data URI: the picture inside the page, no file next to it."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _features(encoder: Encoder, img: Image.Image, size, layers) -> dict[str, torch.Tensor]:
    device = next(iter(encoder.net.parameters()), torch.empty(0)).device
    x = encoder.preprocessing.to_input(to_tensor(resize(img, size)).to(device))
    with torch.no_grad():
        return {k: v.float().cpu() for k, v in encoder.features(x, layers).items()}


# --------------------------------------------------------------------------- charts

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


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

    ``series`` maps a label to (values at steps 1..N, colour); labels in ``dashed`` are
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
    for label, (vals, colour) in series.items():
        dash = ' stroke-dasharray="6 4"' if label in dashed else ""
        for run_pts in _segments(vals, stride, floor):
            pts = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in run_pts)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8" '
                f'stroke-linejoin="round"{dash}><title>{html.escape(label)}</title></polyline>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{html.escape(label)}</span>'
        for label, (_, colour) in series.items()
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


_SERIES_COLOURS = {"total": "#222222", "content": "#1f6fb4", "style": "#c7352b", "tv": "#8a8a8a"}


def _layer_colour(i: int, count: int) -> str:
    r, g, b = VIRIDIS[int(round(30 + 190 * i / max(count - 1, 1)))]
    return f"#{r:02x}{g:02x}{b:02x}"


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


# --------------------------------------------------------------------------- the page


@dataclass
class _Page:
    content_name: str
    style_name: str
    opts: Options
    main: object  # painterly.Result
    content_img: Image.Image
    style_img: Image.Image
    encoder: Encoder
    content_layer: str
    style_layers: list[str]
    content_pics: list[_Picture]
    style_pics: list[_Picture]
    recon_size: int
    recon_steps: int
    fallback_reason: str | None
    timings: dict[str, float]

    @property
    def offline(self) -> bool:
        return self.encoder.name in ("offline", "random-vgg19")

    def encoder_words(self) -> str:
        if self.offline:
            return f"{self.encoder.arch.upper()}, random weights (seed {self.opts.seed})"
        if self.encoder.name in ("vgg19", "vgg19-torchvision", "vgg16"):
            return f"{self.encoder.arch.upper()}, trained on ImageNet"
        return f"{self.encoder.arch.upper()}, weights {Path(self.encoder.name).name}"

    def render(self, seconds: float) -> str:
        e = html.escape
        sections = [
            self._question(),
            self._result(),
            self._losses(),
            self._content_recon(),
            self._style_recon(),
            self._gram(),
            self._feature_maps(),
            self._settings(seconds),
        ]
        nav = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title in SECTIONS)
        return _TEMPLATE.format(
            title=e(f"painterly explain: {self.content_name} × {self.style_name}"),
            css=_CSS,
            heading=e(f"{self.content_name} in the style of {self.style_name}"),
            banner=self._banner(),
            nav=nav,
            body="\n".join(sections),
            footer=e(
                f"Made by painterly {__version__} (painterly explain) in {seconds:.0f} s. "
                "One self-contained file: no scripts, no outside requests."
            ),
        )

    def _section(self, sid: str, body: str) -> str:
        title = dict(SECTIONS)[sid]
        return f'<section id="{sid}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'

    def _banner(self) -> str:
        if not self.offline:
            return ""
        if self.fallback_reason:
            # The reason itself names the download addresses; the page has no outside URL,
            # so it only says what happened (stderr had the details).
            why = (
                "Pretrained VGG19 weights were not available on this machine (not cached, and "
                "they could not be downloaded), so this report uses the <b>offline encoder</b>"
            )
        else:
            why = "This report uses the <b>offline encoder</b> (<code>--weights offline</code>)"
        return (
            f'<div class="banner" id="offline-encoder"><b>Offline encoder.</b> {why}: the '
            f"{self.encoder.arch.upper()} architecture with random weights drawn from seed "
            f"{self.opts.seed}, not "
            "weights learned from photographs. Everything below still works the same way, "
            "because the method never changes the network's weights; but random filters "
            "see less than trained ones, so expect weaker textures, and deep layers that "
            "keep less recognisable layout. For the real ones run <code>painterly weights "
            "fetch vgg19</code> and make the report again.</div>"
        )

    # -- sections ------------------------------------------------------------

    def _question(self) -> str:
        o = self.opts
        words = html.escape(self.encoder_words())
        diagram = pipeline_svg(self.content_layer, len(self.style_layers), self.encoder_words())
        body = f"""
<p class="lead">Neural style transfer trains nothing. The encoder network ({words})
is a fixed measuring instrument: its weights are frozen and
are the same for every image it looks at. What the losses compare are its
<b>activations</b>, the feature maps the fixed network computes for two different images.
The <b>content loss</b> is the squared difference between the feature maps of the generated
image and those of the photo at one layer (<code>{html.escape(self.content_layer)}</code>). The
<b>style loss</b> is the squared difference between their <b>Gram matrices</b>, which say
how strongly each pair of channels fires together, averaged over all positions, at
{len(self.style_layers)} layers. The <b>total-variation loss</b> penalises jumps between
neighbouring pixels. The only thing the optimiser changes is the <b>pixels of the generated
image</b>: each step runs it through the network, measures the losses and follows their
gradient back through the unchanging network to the pixels.</p>
<p>So this is not weight regularisation. A penalty on weights (as in weight decay) pulls a
network's parameters while it is trained; here the parameters are constants, and since the
photo, the painting and the generated image all share them, comparing weights would say
nothing about the images. Only the activations differ from image to image, so only they
can say how the generated image differs from the photo (in its layout) and from the
painting (in its textures). The pictures below show what those activations hold.</p>
<figure class="wide">{diagram}
<figcaption>The loop behind every picture in this report. Grey arrows carry images
forward through the frozen network; the red arrow is the only thing that changes anything:
the gradient of the total loss with respect to the generated image's pixels.
Total = {o.content_weight:g} × content + {o.style_weight:g} × style + {o.tv_weight:g} × TV.
</figcaption></figure>"""
        return self._section("question", body)

    def _result(self) -> str:
        m = self.main.metrics
        w, h = m["size"]
        out_size = (w, h)
        pics = [
            _Picture(resize(self.content_img, out_size), f"photo: {self.content_name}"),
            _Picture(
                resize(self.style_img, style_size(self.style_img, out_size, self.opts)),
                f"painting: {self.style_name}",
            ),
            _Picture(self.main.image, "result"),
        ]
        body = _gallery(pics, "three") + _caption(
            f"The stylisation this report dissects: {w}×{h} px, {m['steps']} steps of "
            f"{'L-BFGS' if self.opts.optimizer == 'lbfgs' else 'Adam'} "
            f"from the {_init_words(self.opts.init)}, {m['seconds']:.0f} s on {m['device']}. "
            "Small on purpose so the report is quick; the ideas do not depend on size."
        )
        return self._section("result", body)

    def _losses(self) -> str:
        o = self.opts
        hist = self.main.metrics["history"]
        terms = {
            f"content × {o.content_weight:g}": (
                [o.content_weight * h["content"] for h in hist],
                _SERIES_COLOURS["content"],
            ),
            f"style × {o.style_weight:g}": (
                [o.style_weight * h["style"] for h in hist],
                _SERIES_COLOURS["style"],
            ),
            f"TV × {o.tv_weight:g}": (
                [o.tv_weight * h["tv"] for h in hist],
                _SERIES_COLOURS["tv"],
            ),
            "total": ([h["total"] for h in hist], _SERIES_COLOURS["total"]),
        }
        n = len(self.style_layers)
        per_layer = {
            layer: ([h[f"style:{layer}"] for h in hist], _layer_colour(i, n))
            for i, layer in enumerate(self.style_layers)
        }
        relative = o.loss_form == "relative"
        unit = (
            "relative Gram error: 1 means an error as large as the painting's Gram matrix itself"
            if relative
            else "the book's unnormalised form"
        )
        dropped = [k for k, (v, _) in terms.items() if not any(x > 0 for x in v)]
        dropped_note = (
            f" Zero throughout, so not drawn on a log scale: {', '.join(dropped)}."
            if dropped
            else ""
        )
        first, last = hist[0], hist[-1]
        style_story = f"the style loss falls from {_num(first['style'])} to {_num(last['style'])}"
        if o.init == "content":
            story = (
                "The run starts from the photo itself, so the content loss starts at "
                f"{_num(first['content'])} and can only grow as the style pulls the image away "
                f"from the photo (it ends at {_num(last['content'])}), while {style_story}."
            )
        else:
            story = (
                f"The run starts from the {_init_words(o.init)}: the content loss goes from "
                f"{_num(first['content'])} to {_num(last['content'])} and {style_story}."
            )
        left = log_chart_svg(terms, title="Loss terms as they enter the total", dashed=["total"])
        right = log_chart_svg(per_layer, title="Style loss of each layer (unweighted)")
        body = (
            f'<div class="charts"><figure>{left}</figure><figure>{right}</figure></div>'
            + _caption(
                "Left: the terms of the loss as the optimiser sees them, each multiplied by "
                "its weight; the total is their sum. Right: each style layer's own loss ("
                f"{unit}); the style term is their mean. Log scale, so a straight line down "
                "means the loss shrinks by a constant factor per step. " + story + dropped_note
            )
        )
        return self._section("losses", body)

    def _content_recon(self) -> str:
        body = _gallery(self.content_pics, "row") + _caption(
            "Each picture started as the same random noise and was changed, pixel by pixel, "
            "until the network's activations at <em>one</em> layer matched the photo's; "
            "nothing else was asked (style and TV weights 0, "
            f"{self.recon_steps} L-BFGS steps at {self.recon_size} px). What survives is "
            "what that layer's activations hold. Shallow layers pin down the exact pixels "
            "and colours; deeper layers, after more pooling, keep where things are but "
            "let go of the exact pixels, which is why the content loss is measured at a "
            f"deep layer (<code>{html.escape(self.content_layer)}</code>, outlined): it "
            "keeps the photo's layout and leaves the style free to repaint the surface. "
            "(Gatys, Ecker and Bethge, 2016, Fig. 1.)"
            + (
                " With random weights the deep layers hold less of the layout than a "
                "trained VGG19's would."
                if self.offline
                else ""
            )
        )
        return self._section("content-reconstructions", body)

    def _style_recon(self) -> str:
        body = _gallery(self.style_pics, "row") + _caption(
            "Each picture started as random noise and was changed until its Gram matrices "
            "at the listed layers matched the painting's (content and TV weights 0, "
            f"{self.recon_steps} L-BFGS steps at {self.recon_size} px). A Gram matrix is "
            "averaged over all positions: it records which features occur together but not "
            "where, so what comes back is a texture, not a picture. The first layer alone "
            "sees only a few pixels at a time: it fixes the palette and how sharp the edges are, "
            "but nothing larger, so the colours come out as shapeless patches. Each deeper "
            "layer sees a larger patch, and adding it brings back structure at a larger "
            "scale: strokes, then swirls. This is the whole of what the style loss asks of "
            "the result."
        )
        return self._section("style-reconstructions", body)

    def _gram(self) -> str:
        layer = self.style_layers[len(self.style_layers) // 2]
        out_size = tuple(self.main.metrics["size"])
        styled = style_size(self.style_img, out_size, self.opts)
        grams = {}
        for key, img, size in (
            ("photo", self.content_img, out_size),
            ("painting", self.style_img, styled),
            ("result", self.main.image, out_size),
        ):
            grams[key] = gram_mean(_features(self.encoder, img, size, [layer])[layer])[0]
        c = grams["painting"].shape[0]
        # The channels the painting uses most (largest diagonal), strongest first, so that
        # the 64 x 64 corner shows the correlations that carry most of the style.
        order = torch.argsort(torch.diagonal(grams["painting"]), descending=True)
        pick = order[: min(GRAM_CHANNELS, c)]
        sub = {k: g[pick][:, pick].numpy() for k, g in grams.items()}
        # Square root for display: a few large (diagonal) entries would otherwise leave
        # every correlation dark. One scale for all three so colours compare.
        vmax = max(float(np.percentile(np.sqrt(np.maximum(g, 0)), 99.5)) for g in sub.values())
        cell = max(1, 192 // len(pick))
        pics = [
            _Picture(heatmap(np.sqrt(np.maximum(g, 0)), 0, vmax, VIRIDIS, cell), name)
            for name, g in (
                ("photo", sub["photo"]),
                ("painting (the target)", sub["painting"]),
                ("result", sub["result"]),
            )
        ]
        before = sub["photo"] - sub["painting"]
        after = sub["result"] - sub["painting"]
        dmax = float(np.percentile(np.abs(before), 99.5)) or 1.0
        energy = float((sub["painting"] ** 2).sum()) or 1.0
        diffs = [
            _Picture(
                heatmap(before, -dmax, dmax, DIVERGING, cell),
                "photo − painting",
                f"relative error (part shown): {_num(float((before**2).sum()) / energy)}",
            ),
            _Picture(
                heatmap(after, -dmax, dmax, DIVERGING, cell),
                "result − painting",
                f"relative error (part shown): {_num(float((after**2).sum()) / energy)}",
            ),
        ]
        hist = self.main.metrics["history"]
        body = (
            _gallery(pics + diffs, "row")
            + _bars()
            + _caption(
                f"The Gram matrix of layer <code>{html.escape(layer)}</code>: row i, column "
                "j is how strongly channels i and j fire together, averaged over every "
                f"position in the image. The layer has {c} channels; shown are the "
                f"{len(pick)} the painting uses most, strongest first, the same ones in "
                "every panel. First three: the photo's, the painting's (the target) and the "
                "result's (colour: square root of the value, one scale for all three). Last "
                "two: what the style loss penalises at this layer, the difference from the "
                "painting's Gram, before and after the run (blue: too weak, red: too strong; "
                "its squared sum, relative to the target's, is the loss). The run took this "
                "layer's loss "
                f"from {_num(hist[0][f'style:{layer}'])} to {_num(hist[-1][f'style:{layer}'])}; "
                "the pixels moved, the network's weights did not."
            )
        )
        return self._section("gram", body)

    def _feature_maps(self) -> str:
        layer = self.content_layer
        out_size = tuple(self.main.metrics["size"])
        photo = _features(self.encoder, self.content_img, out_size, [layer])[layer][0]
        result = _features(self.encoder, self.main.image, out_size, [layer])[layer][0]
        c, fh, fw = photo.shape
        energy = (photo**2).mean(dim=(1, 2))
        pick = torch.argsort(energy, descending=True)[: min(FEATURE_MAPS, c)].tolist()
        cell = max(1, round(150 / max(fh, fw)))
        cells = []
        for ch in pick:
            p, r = photo[ch].numpy(), result[ch].numpy()
            vmax = float(max(np.percentile(p, 99.5), np.percentile(r, 99.5))) or 1.0
            cells.append(
                [
                    heatmap(p, 0, vmax, VIRIDIS, cell),
                    heatmap(r, 0, vmax, VIRIDIS, cell),
                    heatmap(r - p, -vmax, vmax, DIVERGING, cell),
                ]
            )
        rows = ("photo", "result", "result − photo")
        grid = ['<div class="fmaps">', '<div class="fhead"></div>']
        grid += [f'<div class="fhead">channel {ch}</div>' for ch in pick]
        for r_i, row in enumerate(rows):
            grid.append(f'<div class="frow">{row}</div>')
            grid += [f'<img src="{data_uri(col[r_i])}" alt="{row}">' for col in cells]
        grid.append("</div>")
        hist = self.main.metrics["history"]
        relative = (
            ", divided by the sum of the photo's squared activations"
            if self.opts.loss_form == "relative"
            else ""
        )
        body = (
            "".join(grid)
            + _bars()
            + _caption(
                f"{len(pick)} of the {c} feature maps of <code>{html.escape(layer)}</code>, the "
                f"content layer ({fw}×{fh} positions for the {out_size[0]}×{out_size[1]} px "
                "image; the channels most active on the photo). Each is one filter's "
                "response at every position: bright where the filter finds its pattern. "
                "Top two rows, one colour scale per channel: the photo's and the result's. "
                "Bottom: their difference (blue: weaker, red: stronger in the result). The "
                "content loss is the sum of these squared differences over all channels and "
                f"positions{relative}: {_num(hist[-1]['content'])} at the end of the run. "
                "It asks the result to light up the same filters in the same places as the "
                "photo, which it can do with quite different pixels."
            )
        )
        return self._section("features", body)

    def _settings(self, seconds: float) -> str:
        o = self.opts
        m = self.main.metrics
        rows = [
            ("encoder", self.encoder_words() + f" (<code>{html.escape(self.encoder.name)}</code>)"),
        ]
        if self.fallback_reason:
            rows.append(("why offline", "pretrained weights not cached, download failed"))
        rows += [
            ("device", html.escape(m["device"])),
            (
                "stylisation",
                f"{m['size'][0]}×{m['size'][1]} px, {m['steps']} steps, "
                f"{m['seconds']:.1f} s ({m['ms_per_step']:.0f} ms/step)",
            ),
            (
                "reconstructions",
                f"long side {self.recon_size} px, {self.recon_steps} "
                f"L-BFGS steps each from noise, one term weighted {RECON_WEIGHT:g}, others 0",
            ),
        ]
        times = [f"{k} {v:.1f} s" for k, v in self.timings.items()]
        rows.append(("time", " · ".join([*times, f"whole report {seconds:.1f} s"])))
        rows.append(("painterly", __version__))
        opts_rows = []
        for name in Options.__dataclass_fields__:
            v = getattr(o, name)
            if isinstance(v, tuple):
                shown = ",".join(v)
            elif isinstance(v, bool):
                shown = "yes" if v else "no"
            else:
                shown = "—" if v is None else str(v)
            opts_rows.append((f"--{name.replace('_', '-')}", html.escape(shown)))
        body = (
            _table(rows)
            + "<h3>Options of the stylisation</h3>"
            + _table(opts_rows, code_keys=True)
            + _caption(
                "The same options <code>painterly stylize</code> takes; the reconstructions "
                "change only size, steps, start (noise), layers and weights."
            )
        )
        return self._section("settings", body)


def _init_words(init: str) -> str:
    return {"content": "photo itself", "noise": "random noise"}.get(init, f"image {init}")


def _caption(text: str) -> str:
    return f'<p class="caption">{text}</p>'


def _table(rows, code_keys: bool = False) -> str:
    cells = "".join(
        f"<tr><th>{f'<code>{html.escape(k)}</code>' if code_keys else html.escape(k)}</th>"
        f"<td>{v}</td></tr>"
        for k, v in rows
    )
    return f'<table class="settings">{cells}</table>'


def _gallery(pics: list[_Picture], kind: str) -> str:
    items = []
    for p in pics:
        cls = ' class="hl"' if p.highlight else ""
        note = f'<span class="note">{html.escape(p.note)}</span>' if p.note else ""
        items.append(
            f'<figure{cls}><img src="{data_uri(p.image)}" alt="{html.escape(p.label)}">'
            f"<figcaption><b>{html.escape(p.label)}</b>{note}</figcaption></figure>"
        )
    columns = f' style="grid-template-columns:repeat({len(pics)}, 1fr)"' if kind == "row" else ""
    return f'<div class="gallery {kind}"{columns}>{"".join(items)}</div>'


def _bars() -> str:
    return (
        f'<div class="scale"><span>0</span><img src="{data_uri(colour_bar(VIRIDIS))}" '
        'alt="colour scale">'
        f'<span>high</span><span class="gap"></span><span>−</span><img src="'
        f'{data_uri(colour_bar(DIVERGING))}" alt="difference scale"><span>+</span></div>'
    )


_CSS = """
:root { --ink:#1d1d1f; --muted:#5f6368; --line:#e3e3e6; --accent:#c7352b; --bg:#fbfaf7; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1080px; margin:0 auto; padding:28px 28px 60px; }
header h1 { font-size:30px; margin:0 0 4px; letter-spacing:-0.01em; }
header p { margin:0; color:var(--muted); }
nav { display:flex; flex-wrap:wrap; gap:6px 14px; margin:18px 0 8px; font-size:14px; }
nav a { color:var(--muted); text-decoration:none; border-bottom:1px dotted #bbb; }
section { margin-top:34px; padding-top:6px; border-top:1px solid var(--line); }
h2 { font-size:22px; margin:14px 0 12px; }
h3 { font-size:17px; margin:22px 0 8px; }
code { font:13.5px ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;
  background:#efeee9; padding:1px 4px; border-radius:4px; }
.lead { font-size:17.5px; }
.banner { margin:18px 0 4px; padding:12px 16px; border-radius:10px; background:#fff4d6;
  border:1px solid #f0d48a; font-size:15px; }
figure { margin:0; }
figure.wide { margin:14px 0 0; }
.diagram { width:100%; height:auto; background:#fff; border:1px solid var(--line);
  border-radius:12px; }
.diagram .box-in { fill:#eef3fa; stroke:#8fb0d8; }
.diagram .box-var { fill:#fdecea; stroke:var(--accent); stroke-width:2; }
.diagram .box-frozen { fill:#eceff1; stroke:#78909c; stroke-width:2; stroke-dasharray:6 4; }
.diagram .box-loss { fill:#f6f3ea; stroke:#c9b98a; }
.diagram .dlabel { font-size:15px; fill:var(--ink); }
.diagram .strong { font-weight:650; }
.diagram .dsub { font-size:12px; fill:var(--muted); }
.diagram .dgrad { font-size:13px; fill:var(--accent); }
.diagram .flow { fill:none; stroke:#555; stroke-width:1.6; }
.diagram .flow-skip { fill:none; stroke:#999; stroke-width:1.2; stroke-dasharray:3 3; }
.diagram .grad { fill:none; stroke:var(--accent); stroke-width:2.2; stroke-dasharray:7 5; }
figcaption, .caption { color:var(--muted); font-size:14.5px; }
.caption { margin:10px 0 0; max-width:900px; }
.gallery { display:grid; gap:14px; align-items:start; }
.gallery.three { grid-template-columns:repeat(3, 1fr); }
.gallery.row { gap:10px; }
.gallery img { width:100%; height:auto; display:block; border-radius:6px;
  image-rendering:auto; background:#fff; box-shadow:0 1px 3px rgba(0,0,0,.12); }
.gallery figcaption { margin-top:5px; font-size:13.5px; line-height:1.35; }
.gallery figcaption b { color:var(--ink); font-weight:600; display:block;
  overflow-wrap:anywhere; }
.gallery .note { display:block; }
.gallery figure.hl img { outline:3px solid var(--accent); outline-offset:2px; }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
.chart { width:100%; height:auto; background:#fff; border:1px solid var(--line);
  border-radius:10px; }
.chart .grid { stroke:#ececec; }
.chart .axis { stroke:#999; }
.chart .frame { fill:none; stroke:#cfcfcf; }
.chart .tick { font-size:11px; fill:#666; }
.chart .chart-title { font-size:13px; font-weight:600; fill:#333; }
.legend { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:13px; color:var(--muted);
  margin-top:6px; }
.key i { display:inline-block; width:16px; height:3px; margin:0 5px 4px 0;
  vertical-align:middle; border-radius:2px; }
.scale { display:flex; align-items:center; gap:6px; margin-top:8px; font-size:12px;
  color:var(--muted); }
.scale img { width:160px; height:10px; border-radius:3px; }
.scale .gap { width:24px; }
.fmaps { display:grid; grid-template-columns:110px repeat(6, 1fr); gap:8px;
  align-items:center; }
.fmaps img { width:100%; height:auto; display:block; border-radius:4px;
  image-rendering:pixelated; }
.fhead { font-size:12.5px; color:var(--muted); text-align:center; }
.frow { font-size:13.5px; color:var(--ink); font-weight:600; }
table.settings { border-collapse:collapse; font-size:14px; width:100%; max-width:860px; }
table.settings th, table.settings td { text-align:left; padding:5px 10px;
  border-bottom:1px solid var(--line); vertical-align:top; }
table.settings th { width:220px; font-weight:600; }
footer { margin-top:40px; color:var(--muted); font-size:13px; }
@media (max-width:760px) { .charts, .gallery.three { grid-template-columns:1fr; }
  .fmaps { grid-template-columns:80px repeat(6, 1fr); } }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>What the losses see</h1>
<p>{heading}</p>
</header>
{banner}
<nav>{nav}</nav>
{body}
<footer>{footer}</footer>
</main>
</body>
</html>
"""


# --------------------------------------------------------------------------- the CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``painterly explain``, added after the Options flags; ``--size`` and
    ``--steps`` replace theirs (the parser resolves conflicts) to show the report's own
    defaults."""
    parser.add_argument("content", help="the photo")
    parser.add_argument("style", help="the painting")
    parser.add_argument("-o", "--output", required=True, help="report file (.html)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the report file if it exists"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=argparse.SUPPRESS,
        metavar="SIZE",
        help=f"long side of the stylisation in px (default: {REPORT_SIZE})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=argparse.SUPPRESS,
        metavar="STEPS",
        help=f"steps of the stylisation (default: {REPORT_STEPS})",
    )
    parser.add_argument(
        "--recon-size",
        type=int,
        metavar="PX",
        help="long side of each reconstruction in px (default: two thirds of --size)",
    )
    parser.add_argument(
        "--recon-steps",
        type=int,
        metavar="N",
        help="L-BFGS steps of each reconstruction (default: half of --steps)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def check_report_path(path: str | os.PathLike) -> Path:
    """Refuse a report path that cannot be written, before the slow part."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise OptionsError(f"{path}: the report is an HTML file; give a name ending in .html")
    if path.is_dir():
        raise OptionsError(f"{path} is a directory; give a file name such as report.html")
    parent = path.parent
    if not parent.is_dir():
        raise OptionsError(f"cannot write {path}: {parent} is not an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionsError(f"cannot write {path}: directory {parent} is not writable")
    return path


def write_report(text: str, path: Path) -> None:
    """Write atomically: a temporary file beside ``path``, then a rename over it."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PainterlyError(f"could not write {path} ({exc.strerror or exc})") from None


def command(args: argparse.Namespace) -> int:
    """``painterly explain``: returns the exit code (errors are raised for cli.main)."""
    from painterly.cli import EXIT_OK
    from painterly.config import option_fields
    from painterly.progress import ProgressPrinter

    given = {f.name: getattr(args, f.name) for f in option_fields() if hasattr(args, f.name)}
    output = check_report_path(args.output)
    if output.exists() and not args.overwrite:
        raise OptionsError(f"{output} exists; pass --overwrite to replace it")
    printer = ProgressPrinter(quiet=args.quiet)

    def on_stage(number: int, total: int, what: str) -> None:
        printer.close()
        if not args.quiet:
            counter = f"[{number}/{total}] " if number else ""
            print(f"painterly: {counter}{what}", file=sys.stderr, flush=True)

    try:
        report = explain(
            args.content,
            args.style,
            recon_size=args.recon_size,
            recon_steps=args.recon_steps,
            callback=printer,
            on_stage=on_stage,
            progress=not args.quiet,
            **given,
        )
    finally:
        printer.close()
    write_report(report.html, output)
    if not args.quiet:
        size_kb = len(report.html.encode("utf-8")) / 1024
        print(
            f"painterly: wrote {output} ({size_kb:.0f} KB, {report.seconds:.0f} s)",
            file=sys.stderr,
        )
    return EXIT_OK
