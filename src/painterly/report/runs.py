"""The runs behind the report: one stylisation and the reconstructions from noise.

Every picture is made by :func:`painterly.run` with one encoder, which
:func:`painterly.api.resolve_run` chooses and loads exactly as for ``painterly stylize``
(``auto`` without pretrained weights means the offline encoder, with one notice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from painterly.api import ImageLike, make_options, resolve_run, run
from painterly.config import Options
from painterly.encoders import Encoder, canonical_layer, layer_order
from painterly.events import Callback, ignore
from painterly.image import MIN_SIDE, fit_size, load_image, resize
from painterly.report import RECON_WEIGHT, REPORT_SIZE, REPORT_STEPS, ReportConfig
from painterly.report.charts import num
from painterly.report.page import Page, Picture

# (number, of how many, what), before each slow step; number 0 (of 0) is the encoder's
# loading, before the number of runs is known.
Stage = Callable[[int, int, str], None]


@dataclass
class Report:
    """A finished report: the page and what it took to make it."""

    html: str
    seconds: float
    encoder: str
    fallback_reason: str | None
    timings: dict[str, float] = field(default_factory=dict)


def _order(layers: Sequence[str], arch: str) -> list[str]:
    """Unique layers, shallow to deep (names the architecture does not list keep their order)."""
    known = layer_order(arch)
    unique = list(dict.fromkeys(layers))
    return sorted(unique, key=lambda n: (known.index(n) if n in known else len(known), 0))


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
    asked = ReportConfig(recon_size, recon_steps)  # refuses numbers out of range
    recon_size = asked.recon_size or max(MIN_SIDE, round(main_side * 2 / 3))
    recon_steps = asked.recon_steps or max(1, overrides["steps"] // 2)
    content_img, style_img = _load(content), _load(style)

    # One encoder for every run, built deep enough for the deepest layer any run reads:
    # every reconstruction reads one of the stylisation's layers.
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if encoder is None:
        stage(0, 0, "loading the encoder")
    given = encoder
    opts, encoder, _, fallback_reason = resolve_run(
        None, overrides, callback, encoder, progress=progress
    )
    if given is None:
        timings["loading the encoder"] = time.perf_counter() - t
    content_layer, style_layers, recon_layers = _layers(opts, encoder.arch)
    style_sets = [style_layers[: k + 1] for k in range(len(style_layers))]
    total = 1 + len(recon_layers) + len(style_sets)

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
    content_pics = [Picture(resize(content_img, _fit(content_img, recon_size)), "the photo")]
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
        content_pics.append(Picture(r.image, layer, note, highlight=layer == content_layer))
    timings["content reconstructions"] = time.perf_counter() - t

    t = time.perf_counter()
    style_pics = [Picture(resize(style_img, _fit(style_img, recon_size)), "the painting")]
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
        style_pics.append(Picture(r.image, label, note))
    timings["style reconstructions"] = time.perf_counter() - t

    page = Page(
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
    content_layer = canonical_layer(opts.content_layer, arch)
    style_layers = _order([canonical_layer(n, arch) for n in opts.style_layers], arch)
    return content_layer, style_layers, _order([*style_layers, content_layer], arch)


def _load(item: ImageLike) -> Image.Image:
    return item.convert("RGB") if isinstance(item, Image.Image) else load_image(item)


def _name(item: ImageLike, fallback: str) -> str:
    return fallback if isinstance(item, Image.Image) else Path(item).name


def _fit(img: Image.Image, long_side: int) -> tuple[int, int]:
    return fit_size(*img.size, long_side)


def _first_last(history: list[dict[str, float]], key: str) -> str:
    return f"{num(history[0][key])} → {num(history[-1][key])}"
