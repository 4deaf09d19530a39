"""The one core API: images in, image out. The CLI, web app and report all call this.

It reads the files it is given, resolves options and the encoder, sizes the images,
runs the optimiser and returns a :class:`Result`. It writes nothing and prints nothing.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from PIL import Image
from torch.nn import functional as F

from painterly import __version__
from painterly.color import style_color_noise
from painterly.config import Options, parse_bytes, preset
from painterly.controls import prepare as prepare_controls
from painterly.encoders import (
    Encoder,
    arch_of,
    canonical_layer,
    deepest,
    load_encoder,
    resolve_weights,
)
from painterly.errors import OptionsError
from painterly.events import Callback, Event, Notice, Progress, Started, ignore
from painterly.image import MIN_SIDE, fit_size, load_image, resize, to_image, to_tensor
from painterly.memory import available_bytes, step_estimator
from painterly.optimize import Objective, Outcome, optimize
from painterly.tiling import ALIGN, optimize_tiled, tile_count, tiled_grams, window_side

ImageLike = str | os.PathLike | Image.Image
StyleSpec = ImageLike | tuple[ImageLike, float]


@dataclass
class Result:
    image: Image.Image
    metrics: dict
    metadata: dict[str, str] = field(default_factory=dict)  # for the output file's text chunks
    interrupted: bool = False


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; ``cpu`` never touches CUDA."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError("--device cuda asked for, but PyTorch sees no CUDA GPU here")
        return torch.device("cuda")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise OptionsError("--device mps asked for, but this machine has no MPS device")
        return torch.device("mps")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_options(
    options: Options | None = None, *, weights_resolved: str | None = None, **overrides
) -> Options:
    """The options of a run: a base plus single-field ``overrides``.

    The base is ``options`` if given, else the preset named by ``preset=`` (default
    ``default``). When the default preset meets the offline encoder (``weights_resolved``
    is ``random``), the ``offline`` preset, tuned for that encoder, is the base instead;
    fields the caller set still win.
    """
    unknown = set(overrides) - set(Options.__dataclass_fields__)
    if unknown:
        raise OptionsError(f"unknown option '{sorted(unknown)[0]}'")
    name = overrides.get("preset", options.preset if options else "default")
    base = options or preset(name)
    if weights_resolved == "random" and not _names_a_preset(options, overrides):
        base = preset("offline")
    return base.replace(**overrides) if overrides else base


def _names_a_preset(options: Options | None, overrides: dict) -> bool:
    """Whether the caller chose a preset other than ``default`` (or passed Options): such
    presets name VGG's layers, so without pretrained weights they run on a random VGG19
    rather than switching to the ``offline`` preset. ``preset="default"``, as the web
    form sends it, counts as no choice."""
    return options is not None or overrides.get("preset", "default") != "default"


def _as_image(item: ImageLike) -> Image.Image:
    return item.convert("RGB") if isinstance(item, Image.Image) else load_image(item)


def _style_list(style: StyleSpec | Sequence[StyleSpec]) -> list[tuple[ImageLike, float]]:
    """(image, path or folder, weight) pairs; controls.prepare checks and loads them."""
    items = style if isinstance(style, list | tuple) and not _is_weighted(style) else [style]
    return [item if _is_weighted(item) else (item, 1.0) for item in items]


def _is_weighted(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], int | float)


def prepare_inputs(content: ImageLike, style: StyleSpec | Sequence[StyleSpec], opts: Options):
    """Read the content and styles and apply the artistic controls (controls.prepare):
    the content and (image, weight) styles the optimiser sees, the masks and ``finish``."""
    return prepare_controls(_as_image(content), _style_list(style), opts)


MIN_SCALE_STEPS = 10


def scale_plan(out_size: tuple[int, int], opts: Options) -> tuple[list[tuple[int, int]], list[int]]:
    """Sizes (w, h) from coarse to fine, and the steps spent at each.

    Coarse to fine by factors of sqrt(2) from ``min_size`` (long side) up to the output:
    the coarse scales settle the large structures of the style cheaply, and each finer
    scale starts from the upsampled result, so it only has to add detail. ``scales = 0``
    chooses the count from the sizes; 1 is a single-scale run. Each scale gets 1/sqrt(2)
    of the steps of the scale below it, so the budget goes mostly where steps are cheap;
    ``scale_steps`` gives the steps of each scale instead (and so their count).
    """
    long_side = max(out_size)
    min_side = max(opts.min_size, MIN_SIDE)
    if opts.scale_steps:  # --scale-steps: one scale per number, its steps as given
        opts = opts.replace(scales=len(opts.scale_steps), steps=sum(opts.scale_steps))
    if opts.scales == 0:
        ratio = long_side / min_side
        count = 1 + math.floor(math.log(ratio, math.sqrt(2)) + 0.25) if ratio > 1 else 1
    else:
        count = opts.scales
    count = max(1, min(count, opts.steps))
    # Long sides spaced geometrically from the smallest up to the output's.
    first = max(min_side, round(long_side / math.sqrt(2) ** (count - 1)))
    first = (
        min(first, long_side)
        if opts.scales == 0
        else round(long_side / math.sqrt(2) ** (count - 1))
    )
    first = max(MIN_SIDE, first)
    sizes = []
    for i in range(count):
        side = (
            long_side if i == count - 1 else round(first * (long_side / first) ** (i / (count - 1)))
        )
        w, h = fit_size(*out_size, side)
        grow = MIN_SIDE / min(w, h)
        sizes.append((round(w * grow), round(h * grow)) if grow > 1 else (w, h))
    if opts.scale_steps:
        return sizes, list(opts.scale_steps)
    # Every scale gets at least MIN_SCALE_STEPS (L-BFGS does nothing useful in fewer: at
    # 4096 px the two finest of nine scales got 3 and 5 steps and left the upsampled
    # image as it was); the rest of the budget decays by 1/sqrt(2) per scale.
    floor = min(MIN_SCALE_STEPS, opts.steps // count)
    spare = opts.steps - floor * count
    shares = [math.sqrt(2) ** -i for i in range(count)]
    steps = [floor + int(spare * sh / sum(shares)) for sh in shares]
    steps[0] += opts.steps - sum(steps)
    return sizes, [max(1, n) for n in steps]


def planned_work(sizes: Sequence[tuple[int, int]], steps: Sequence[int]) -> list[int]:
    """Each scale's share of a run's cost: its steps x its pixels."""
    return [n * w * h for (w, h), n in zip(sizes, steps, strict=True)]


def deadlines(
    sizes: Sequence[tuple[int, int]], steps: Sequence[int], opts: Options, start: float
) -> list[float | None]:
    """When each scale must end under ``--time-limit``: the time is shared out in
    proportion to each scale's planned work (steps x pixels). The deadlines are absolute,
    so time a scale leaves unused passes on to the next."""
    if not opts.time_limit:
        return [None] * len(sizes)
    work = planned_work(sizes, steps)
    done, out = 0.0, []
    for part in work:
        done += part
        out.append(start + opts.time_limit * done / sum(work))
    return out


class RunProgress:
    """The callback of a whole run: passes every event on, adding to each Started which
    scale it is, and to each Progress the share of the run's planned work done and the
    time since the run began, so that a bar and a time estimate need not start again at
    every scale (or tile)."""

    def __init__(self, callback: Callback, work: Sequence[int], start: float):
        self.callback, self.work, self.start = callback, list(work), start
        self.scale, self.tiles, self.started = 0, 1, 0

    def begin_scale(self, index: int, tiles: int) -> None:
        """Scale ``index`` (0-based) begins (or begins again), in ``tiles`` optimisations."""
        self.scale, self.tiles, self.started = index, max(1, tiles), 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started += 1
            event = replace(event, scale=self.scale + 1, scales=len(self.work))
        elif isinstance(event, Progress) and event.total_steps:
            inside = (self.started - 1 + event.step / event.total_steps) / self.tiles
            done = sum(self.work[: self.scale]) + self.work[self.scale] * min(1.0, inside)
            event = replace(
                event,
                run_fraction=done / sum(self.work),
                run_elapsed=time.perf_counter() - self.start,
            )
        self.callback(event)


def _optimize_scale(encoder, content_t, style_ts, init, opts, guide, tile: int, run_kwargs):
    """One scale, whole or (``tile`` > 0) in tiles that match the whole style's Grams."""
    if tile and guide is None:
        w, h = content_t.shape[-1], content_t.shape[-2]
        why = "as --tile asks" if opts.tile else "it does not fit in memory at once"
        run_kwargs["callback"](Notice(f"{w}x{h} in tiles of {tile} px, {why}"))
        grams = tiled_grams(encoder, style_ts, opts.style_layers, tile)
        return optimize_tiled(encoder, content_t, init, grams, opts, tile, **run_kwargs)
    objective = Objective(encoder, content_t, style_ts, opts, guide)
    return optimize(objective, init, opts, **run_kwargs)


def is_out_of_memory(err: Exception) -> bool:
    text = str(err).lower()
    return (
        isinstance(err, torch.OutOfMemoryError)
        or "out of memory" in text
        or ("can't allocate memory" in text)
    )


def tile_side(encoder: Encoder, opts: Options, size: tuple[int, int], device) -> int:
    """0 if a step at ``size`` fits the memory budget, else the tile side to use.

    ``--tile`` forces tiles of that side (when the image is larger). Otherwise the
    budget is ``--max-memory`` or most of the free memory, and the tile is the largest
    that fits; if not even a 128 px tile fits, the run is refused before it starts.
    """
    layers = (opts.content_layer, *opts.style_layers)
    if opts.tile:
        tile = opts.tile if max(size) > opts.tile else 0
    else:
        budget = memory_budget(opts, device)
        estimate = step_estimator(encoder.net, layers, opts.lbfgs_history)  # probes once
        tile = 0 if estimate(*size) <= budget else _fitting_tile(estimate, size, budget)
    if tile and opts.loss_form == "book":
        raise OptionsError(
            "the book's losses depend on the image size, so they cannot be tiled; "
            "use a smaller --size or the default preset for large images"
        )
    return tile


def memory_budget(opts: Options, device: torch.device) -> int:
    """Bytes a step may use: ``--max-memory``, or most of the free memory."""
    return parse_bytes(opts.max_memory) or available_bytes(device)


def _fitting_tile(estimate, size: tuple[int, int], budget: int) -> int:
    # The network sees each tile with a margin of context around it (tiling.Window).
    tile = min(max(size), 4096) // ALIGN * ALIGN
    while tile >= 128:
        side = window_side(tile)
        if estimate(side, side) <= budget:
            return tile
        tile = int(tile * 0.8) // ALIGN * ALIGN
    need = estimate(window_side(128), window_side(128)) / 2**20
    raise OptionsError(
        f"not enough memory: even a 128 px tile needs about {need:.0f} MB and the budget is "
        f"{budget / 2**20:.0f} MB; raise --max-memory or free some memory"
    )


def style_size(style: Image.Image, out_size: tuple[int, int], opts: Options) -> tuple[int, int]:
    """Size of the style image for an output of ``out_size``: stretched to it (the book)
    or its long side ``style_scale`` times the output's, aspect ratio kept."""
    if opts.style_stretch:
        return out_size
    w, h = fit_size(*style.size, round(max(out_size) * opts.style_scale))
    grow = MIN_SIDE / min(w, h)  # keep a thin or small style usable by the network
    return (round(w * grow), round(h * grow)) if grow > 1 else (w, h)


def output_size(content_size: tuple[int, int], opts: Options) -> tuple[int, int]:
    """(w, h) of the output: ``height`` wins over ``size``; neither keeps the photo's size."""
    if opts.height:
        return fit_size(*content_size, height_px=opts.height)
    if opts.size:
        return fit_size(*content_size, long_side=opts.size)
    return content_size


def _init_rgb(opts: Options, content: torch.Tensor, seed: int, styles=()) -> torch.Tensor:
    if opts.init == "content":
        return content
    if opts.init == "style-colors":
        return style_color_noise(content.shape, styles, seed).to(content.device)
    if opts.init == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(content.shape, generator=gen).to(content.device)
        return noise
    img = resize(load_image(opts.init), (content.shape[-1], content.shape[-2]))
    return to_tensor(img).to(content.device)


def _canonical_layers(opts: Options, arch: str) -> Options:
    """Layer names as ``arch`` spells them (the offline encoder has its own)."""
    return opts.replace(
        content_layer=canonical_layer(opts.content_layer, arch),
        style_layers=tuple(canonical_layer(n, arch) for n in opts.style_layers),
    )


def run(
    content: ImageLike,
    style: StyleSpec | Sequence[StyleSpec],
    options: Options | None = None,
    *,
    callback: Callback = ignore,
    preview_every: int = 0,
    progress_every: int = 1,
    encoder: Encoder | None = None,
    **overrides,
) -> Result:
    """Stylise ``content`` with one or more styles and return a :class:`Result`.

    ``style`` is an image, a path, a ``(image, weight)`` pair or a list of these; several
    styles are blended by their weights. ``options`` (or a ``preset=`` name) gives the
    defaults and keyword ``overrides`` change single fields. Pass a loaded ``encoder`` to
    reuse it across calls. Progress events come every ``progress_every`` steps (each one
    reads the losses back from the device), previews every ``preview_every`` steps.
    """
    # Validate the options and read the images before anything slow (a download).
    content_img, styles, guide, finish = prepare_inputs(
        content, style, make_options(options, **overrides)
    )
    opts, encoder, device, fallback_reason = resolve_run(options, overrides, callback, encoder)
    out_size = output_size(content_img.size, opts)
    torch.manual_seed(opts.seed)
    outcomes = []
    rgb = None
    sizes, plan = scale_plan(out_size, opts)
    start = time.perf_counter()
    ends = deadlines(sizes, plan, opts, start)
    progress = RunProgress(callback, planned_work(sizes, plan), start)
    for index, (size, steps, deadline) in enumerate(zip(sizes, plan, ends, strict=True)):
        content_t, style_ts, init = scale_inputs(content_img, styles, size, opts, device, rgb)
        run_kwargs = dict(
            callback=progress,
            preview_every=preview_every,
            progress_every=progress_every,
            device_name=str(device),
            deadline=deadline,
        )
        tile = tile_side(encoder, opts, size, device)
        if tile and rgb is None:
            callback(
                Notice(
                    "the coarsest scale is tiled, so the tiles start from the photo and may "
                    "come out unequal; a smaller --min-size or a larger --tile avoids it"
                )
            )
        while True:
            tiled = tile and guide is None  # as _optimize_scale decides
            progress.begin_scale(index, tile_count(size[1], size[0], tile) if tiled else 1)
            try:
                outcome = _optimize_scale(
                    encoder,
                    content_t,
                    style_ts,
                    init,
                    opts.replace(steps=steps),
                    guide,
                    tile,
                    run_kwargs,
                )
                break
            except (torch.OutOfMemoryError, RuntimeError) as err:
                if not is_out_of_memory(err):
                    raise
                # The estimate was wrong for this device: the scales already done are kept
                # and this one is redone in smaller tiles.
                tile = (tile or max(size)) // 2 // ALIGN * ALIGN
                if tile < 128:
                    raise OptionsError(
                        f"out of memory at {size[0]}x{size[1]} even in 128 px tiles; "
                        "use a smaller --size or free some memory"
                    ) from None
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                callback(
                    Notice(f"out of memory at {size[0]}x{size[1]}; retrying in {tile} px tiles")
                )
        outcomes.append(outcome)
        rgb = outcome.rgb
        if outcome.interrupted:
            break
    return make_result(outcomes, opts, encoder, device, out_size, finish, fallback_reason)


def resolve_run(
    options: Options | None,
    overrides: dict,
    callback: Callback,
    encoder: Encoder | None,
    *,
    progress: bool = True,
) -> tuple[Options, Encoder, torch.device, str | None]:
    """The options, encoder and device of a run, and why ``auto`` fell back (or None).

    ``auto`` weights that cannot be had fall back to the offline encoder, with one
    Notice; with a named preset, to a random VGG19, whose layer names the preset uses.
    ``progress`` shows a download's progress bar on stderr.
    """
    weights = make_options(options, **overrides).weights
    fallback_reason = None
    if encoder is not None:
        weights = encoder.name
        encoder.to(resolve_device(make_options(options, **overrides).device))
    else:
        weights, fallback_reason = resolve_weights(weights, progress=progress)
        instead = "the offline encoder"
        if fallback_reason and _names_a_preset(options, overrides):
            # A named preset (chollet, gatys, ...) names VGG's layers: keep them offline.
            weights = "random-vgg19"
            instead = "VGG19 with random weights, as this preset names VGG19's layers"
        if fallback_reason:
            callback(
                Notice(
                    f"pretrained VGG19 weights are not cached and could not be downloaded; "
                    f"using {instead}. For the real ones run `painterly weights fetch vgg19`, "
                    "or download them yourself and `painterly weights import FILE`"
                )
            )
    opts = make_options(options, weights_resolved=weights, **overrides).replace(weights=weights)
    opts = _canonical_layers(opts, encoder.arch if encoder is not None else arch_of(weights))
    device = resolve_device(opts.device)
    if encoder is None:
        upto = deepest((opts.content_layer, *opts.style_layers), arch_of(weights))
        encoder = load_encoder(
            weights,
            upto=upto,
            pooling=opts.pooling,
            seed=opts.seed,
            device=device,
            progress=progress,
        )
    return opts, encoder, device, fallback_reason


def scale_inputs(
    content: Image.Image,
    styles: Sequence[tuple[Image.Image, float]],
    size: tuple[int, int],
    opts: Options,
    device: torch.device,
    previous: torch.Tensor | None,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, float]], torch.Tensor]:
    """Content, styles and starting image of one scale (w, h) as (1, 3, H, W) tensors.

    The first scale starts as ``--init`` says; each later one from ``previous``, the
    result of the scale below, upsampled.
    """
    content_t = to_tensor(resize(content, size)).to(device)
    style_ts = [
        (to_tensor(resize(img, style_size(img, size, opts))).to(device), w) for img, w in styles
    ]
    if previous is None:
        init = _init_rgb(opts, content_t, opts.seed, style_ts)
    else:
        init = F.interpolate(previous, size=(size[1], size[0]), mode="bicubic").clamp(0, 1)
    return content_t, style_ts, init


def make_result(
    outcomes: Sequence[Outcome],
    opts: Options,
    encoder: Encoder,
    device: torch.device,
    out_size: tuple[int, int],
    finish,
    fallback_reason: str | None,
) -> Result:
    """The :class:`Result` of one image from the outcomes of its scales, coarse to fine;
    ``finish`` (from controls.prepare) turns the last one's pixels into the output."""
    outcome = outcomes[-1]
    steps_done = sum(o.steps for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    history = [{**h, "scale": i} for i, o in enumerate(outcomes) for h in o.history]
    metrics = {
        "encoder": encoder.name,
        "device": str(device),
        "size": list(out_size),
        "steps": steps_done,
        "seconds": round(seconds, 3),
        "ms_per_step": round(1000 * seconds / max(steps_done, 1), 2),
        "losses": {k: outcome.final[k] for k in ("content", "style", "tv", "total")},
        "history": history,
        "scales": [list(o.rgb.shape[-1:-3:-1]) for o in outcomes],
        "steps_per_scale": [o.steps for o in outcomes],
        "interrupted": outcome.interrupted,
        "fallback_reason": fallback_reason,
        "version": __version__,
    }
    settings = asdict(opts)
    metadata = {
        "Software": f"painterly {__version__}",
        "painterly:settings": json.dumps(settings, sort_keys=True),
        "painterly:weights": encoder.name,
        "painterly:seed": str(opts.seed),
        "painterly:version": __version__,
    }
    rgb = outcome.rgb
    if rgb.shape[-2:] != (out_size[1], out_size[0]):  # interrupted at a coarse scale
        rgb = F.interpolate(rgb, size=(out_size[1], out_size[0]), mode="bicubic").clamp(0, 1)
    return Result(to_image(finish(rgb)), metrics, metadata, outcome.interrupted)


def stylize(
    content: ImageLike,
    style: StyleSpec | Sequence[StyleSpec],
    options: Options | None = None,
    **overrides,
) -> Image.Image:
    """Stylise ``content`` and return the image: ``painterly.stylize("photo.jpg", "art.jpg")``."""
    return run(content, style, options, **overrides).image
