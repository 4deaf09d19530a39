"""The one coarse-to-fine pipeline that every stylisation runs through.

:func:`optimize_scales` takes photos already through the artistic controls (:class:`Job`)
and runs them from the coarsest scale to the output size. It owns the scale plan, the
``--time-limit`` deadlines, whole-run progress, tile sizing, the out-of-memory retry and
the stall check. ``api.run`` calls it with one job; ``batch.run_batch`` with several jobs
of one output size, which it stacks into one tensor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from PIL import Image
from torch.nn import functional as F

from painterly import masks, nearest
from painterly.clock import RunClock
from painterly.color import style_color_noise
from painterly.config import Options
from painterly.encoders import Encoder
from painterly.errors import OptionsError
from painterly.events import Callback, Event, Notice, Progress, Started
from painterly.image import MIN_SIDE, fit_size, load_image, resize, to_tensor
from painterly.memory import available_bytes, step_bytes, step_estimator
from painterly.optimize import Objective, Outcome, optimize, style_targets
from painterly.precision import numerics, resolve_precision
from painterly.settings import flag, parse_bytes
from painterly.threads import cpu_threads
from painterly.tiling import (
    ALIGN,
    largest_tile,
    optimize_tiled,
    tile_count,
    tiled_grams,
    window_side,
)


@dataclass
class Job:
    """One photo after the artistic controls (controls.prepare), ready for the optimiser."""

    content: Image.Image
    styles: list[tuple[Image.Image, float]]
    guide: masks.Guide | None  # per-region styles and protected regions, or None
    finish: Callable[[torch.Tensor], torch.Tensor]  # the optimiser's pixels -> the output's
    # Optional: the image (1, 3, H, W) in 0..1, of any size, that the first scale starts
    # from instead of --init; and one more loss term (optimize.Objective's ``extra``).
    init: torch.Tensor | None = None
    extra: Callable[[torch.Tensor], torch.Tensor] | None = None


# --- sizes and plans ----------------------------------------------------------------


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


def run_parts(out_size: tuple[int, int], opts: Options, images: int = 1) -> list[tuple[int, int]]:
    """The parts of a run for :class:`painterly.clock.RunClock`: each scale's steps and
    pixels (of all ``images`` optimised together)."""
    sizes, steps = scale_plan(out_size, opts)
    return [(n, w * h * images) for (w, h), n in zip(sizes, steps, strict=True)]


def deadlines(
    parts: Sequence[tuple[int, int]], time_limit: float, start: float
) -> list[float | None]:
    """When each scale (``parts``: steps and pixels, :func:`run_parts`) must end under
    ``--time-limit``: the time is shared out in proportion to each scale's planned work
    (steps x pixels). The deadlines are absolute, so time a scale leaves unused passes on
    to the next."""
    if not time_limit:
        return [None] * len(parts)
    work = [steps * pixels for steps, pixels in parts]
    done = 0.0
    out: list[float | None] = []
    for part in work:
        done += part
        out.append(start + time_limit * done / sum(work))
    return out


# --- memory -------------------------------------------------------------------------


def is_out_of_memory(err: BaseException) -> bool:
    text = str(err).lower()
    return (
        isinstance(err, torch.OutOfMemoryError)
        or "out of memory" in text
        or ("can't allocate memory" in text)
    )


def tile_side(
    estimate: Callable[[int, int], int], opts: Options, size: tuple[int, int], device
) -> int:
    """0 if a step at ``size`` fits the memory budget, else the tile side to use.

    ``--tile`` forces tiles of that side (when the image is larger). Otherwise the
    budget is ``--max-memory`` or most of the free memory, ``estimate(w, h)`` a step's
    bytes (memory.step_estimator), and the tile is the largest that fits; if not even a
    128 px tile fits, the run is refused before it starts.
    """
    if opts.tile:
        tile = opts.tile if max(size) > opts.tile else 0
    else:
        budget = memory_budget(opts, device)
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
    def cost(tile: int) -> int:
        return estimate(window_side(tile), window_side(tile))

    tile = largest_tile(cost, min(max(size), 4096), budget, 128)
    if not tile:
        raise OptionsError(
            f"not enough memory: even a 128 px tile needs about {cost(128) / 2**20:.0f} MB "
            f"and the budget is {budget / 2**20:.0f} MB; raise --max-memory or free some memory"
        )
    return tile


def batch_size(
    encoder: Encoder, opts: Options, out_size: tuple[int, int], device, max_batch: int
) -> int:
    """Images of ``out_size`` to optimise at once: as many as the memory budget holds
    (a step's memory grows with the batch), at most ``max_batch`` if set; 1 where even
    one image would be tiled."""
    layers = (opts.content_layer, *opts.style_layers)
    fits = memory_budget(opts, device) // step_bytes(
        encoder.net, layers, *out_size, opts.lbfgs_history
    )
    if opts.tile and max(out_size) > opts.tile:
        fits = 1
    return max(1, min(fits, max_batch or fits))


# --- the pipeline -------------------------------------------------------------------


def optimize_scales(
    jobs: Sequence[Job],
    opts: Options,
    encoder: Encoder,
    device: torch.device,
    *,
    callback: Callback,
    preview_every: int = 0,
    progress_every: int = 1,
    clock: RunClock | None = None,
) -> list[list[Outcome]]:
    """Optimise ``jobs`` (all of one output size) together, coarse to fine; return each
    job's outcomes, one per scale done (fewer after an interruption). ``clock`` is the
    progress model of a larger job (a batch, a clip) whose parts include these scales
    (:func:`run_parts`); without one, the run is the whole job.

    One job may be tiled where a scale does not fit the memory budget, and an
    out-of-memory error redoes that scale in smaller tiles. Several jobs are one batch:
    they are never tiled, and an out-of-memory error propagates so that the caller can
    run them one by one. A KeyboardInterrupt between steps ends the run with the scales
    already done.
    """
    out_size = output_size(jobs[0].content.size, opts)
    torch.manual_seed(opts.seed)
    sizes, plan = scale_plan(out_size, opts)
    start = time.perf_counter()
    parts = run_parts(out_size, opts, len(jobs))
    ends = deadlines(parts, opts.time_limit, start)
    run = _Run(
        jobs,
        opts,
        encoder,
        device,
        callback,
        RunProgress(callback, clock or RunClock(parts, start), parts),
        resolve_precision(opts.precision, device, exact=opts.loss_form == "book"),
        dict(preview_every=preview_every, progress_every=progress_every, device_name=str(device)),
        scales=len(sizes),
    )
    outcomes: list[Outcome] = []
    with cpu_threads(opts.threads):
        for index, (size, steps, deadline) in enumerate(zip(sizes, plan, ends, strict=True)):
            try:
                previous = outcomes[-1].rgb if outcomes else None
                where = f"scale {index + 1} of {len(sizes)} ({size[0]}x{size[1]})"
                outcomes.append(run.scale(index, size, steps, deadline, previous, where))
            except KeyboardInterrupt:  # between steps: keep the scales already done
                if not outcomes:
                    raise
                outcomes[-1] = replace(outcomes[-1], interrupted=True)
            if outcomes and outcomes[-1].interrupted:
                break
    if any(o.out_of_time for o in outcomes):
        callback(Notice(_cut_short(opts.time_limit, [o.steps for o in outcomes], plan)))
    return [list(scales) for scales in zip(*(o.split() for o in outcomes), strict=True)]


def _cut_short(time_limit: float, done: Sequence[int], plan: Sequence[int]) -> str:
    """What the time limit cost: steps done of planned, in all and per scale."""
    done = [*done, *[0] * (len(plan) - len(done))]  # scales not reached: none done
    each = ", ".join(
        f"scale {i + 1}: {n} of {p}" for i, (n, p) in enumerate(zip(done, plan, strict=True))
    )
    return (
        f"{flag('time_limit')} {time_limit:g} s stopped the run short: {sum(done)} of "
        f"{sum(plan)} steps ({each})"
    )


@dataclass
class _Run:
    """What stays the same across the scales of one :func:`optimize_scales` call."""

    jobs: Sequence[Job]
    opts: Options
    encoder: Encoder
    device: torch.device
    callback: Callback
    progress: RunProgress
    precision: str  # fp32 from the first stall on, under auto
    run_kwargs: dict
    scales: int = 1
    _estimator: Callable[[int, int], int] | None = None

    def estimate(self, width: int, height: int) -> int:
        """A step's bytes at (width, height); the encoder is probed once, when needed."""
        if self._estimator is None:
            layers = (self.opts.content_layer, *self.opts.style_layers)
            self._estimator = step_estimator(self.encoder.net, layers, self.opts.lbfgs_history)
        return self._estimator(width, height)

    def precision_at(self, index: int) -> str:
        """The numerics of scale ``index``: under bf16-coarse, bf16 at every scale but
        the last, which gives the result its fp32 finish."""
        if self.precision == "bf16-coarse":
            return "bf16" if index < self.scales - 1 else "fp32"
        return self.precision

    def scale(self, index, size, steps, deadline, previous, where: str) -> Outcome:
        """One scale, redone in smaller tiles after running out of memory and in fp32
        after a stall under ``auto``."""
        opts, device, jobs = self.opts, self.device, self.jobs
        inputs = [
            scale_inputs(
                job.content,
                job.styles,
                size,
                opts,
                device,
                job.init if previous is None else previous[i : i + 1],
            )
            for i, job in enumerate(jobs)
        ]
        single = len(jobs) == 1
        tile = tile_side(self.estimate, opts, size, device) if single else 0
        if tile and previous is None:
            self.callback(
                Notice(
                    "the coarsest scale is tiled, so the tiles start from the photo and may "
                    "come out unequal; a smaller --min-size or a larger --tile avoids it"
                )
            )
        while True:
            tiled = tile and jobs[0].guide is None  # masks need the whole image at once
            self.progress.begin_scale(index, tile_count(size[1], size[0], tile) if tiled else 1)
            precision = self.precision_at(index)
            scale_opts = opts.replace(steps=steps, precision=precision)
            kwargs = dict(self.run_kwargs, callback=self.progress, deadline=deadline)
            try:
                with numerics(precision, device):  # targets as the features are computed
                    outcome = _optimize_scale(
                        self.encoder, inputs, scale_opts, jobs[0], tiled and tile, kwargs
                    )
            except (torch.OutOfMemoryError, RuntimeError) as err:
                if not single or not is_out_of_memory(err):
                    raise
                tile = self._smaller_tile(tile, size)
                continue
            if not outcome.stalled or outcome.interrupted:
                return outcome
            if opts.precision == "auto" and precision != "fp32":
                self.callback(
                    Notice(
                        f"{where}: no step improved on its start in {precision}; redoing it in fp32"
                    )  # fmt: skip
                )
                self.precision = "fp32"  # for the rest of the run too
                continue
            hint = "; --precision fp32 may help" if precision != "fp32" else ""
            self.callback(
                Notice(f"{where}: no step improved on its start, so it is kept as it began{hint}")
            )
            return outcome

    def _smaller_tile(self, tile: int, size: tuple[int, int]) -> int:
        """After running out of memory: the estimate was wrong for this device, so the
        scale is redone in tiles half as large (the scales already done are kept)."""
        tile = (tile or max(size)) // 2 // ALIGN * ALIGN
        if tile < 128:
            raise OptionsError(
                f"out of memory at {size[0]}x{size[1]} even in 128 px tiles; "
                "use a smaller --size or free some memory"
            ) from None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.callback(Notice(f"out of memory at {size[0]}x{size[1]}; retrying in {tile} px tiles"))
        return tile


def _optimize_scale(encoder, inputs, opts, job: Job, tile: int, run_kwargs) -> Outcome:
    """One scale: one job whole or (``tile`` > 0) in tiles that match the whole style's
    Grams, or a batch of jobs as one stacked optimisation (``job`` is the first)."""
    if len(inputs) == 1:
        content_t, style_ts, init = inputs[0]
        if tile and job.extra is not None:  # the extra term sees the whole image
            raise OptionsError(
                f"{content_t.shape[-1]}x{content_t.shape[-2]} does not fit in memory at "
                "once; use a smaller --size"
            )
        if tile:
            w, h = content_t.shape[-1], content_t.shape[-2]
            why = "as --tile asks" if opts.tile else "it does not fit in memory at once"
            run_kwargs["callback"](Notice(f"{w}x{h} in tiles of {tile} px, {why}"))
            grams = tiled_grams(
                encoder, style_ts, opts.style_layers, tile, style_loss=opts.style_loss
            )
            pools = _pools(encoder, [style_ts], opts)
            return optimize_tiled(
                encoder, content_t, init, grams, opts, tile, pools=pools, **run_kwargs
            )
        objective = Objective(encoder, content_t, style_ts, opts, job.guide, extra=job.extra)
        return optimize(objective, init, opts, **run_kwargs)
    book = opts.loss_form == "book"
    targets = [
        style_targets(encoder, styles, opts.style_layers, book, opts.style_loss)
        for _, styles, _ in inputs
    ]
    grams = {n: torch.cat([t[n] for t in targets]) for n in opts.style_layers}
    contents = torch.cat([content for content, _, _ in inputs])
    pools = _pools(encoder, [styles for _, styles, _ in inputs], opts)
    objective = Objective(encoder, contents, [], opts, grams=grams, pools=pools)
    return optimize(objective, torch.cat([init for _, _, init in inputs]), opts, **run_kwargs)


def _pools(encoder, styles_each, opts: Options) -> list[nearest.Paintings] | None:
    """The nearest-neighbour style's painting features, one blend per image, if used."""
    if opts.style_loss != "nearest":
        return None
    return [
        nearest.painting_pools(encoder, styles, opts.style_layers, opts.seed)
        for styles in styles_each
    ]


# --- one scale ----------------------------------------------------------------------


def init_rgb(opts: Options, content: torch.Tensor, seed: int, styles=()) -> torch.Tensor:
    if opts.init == "content":
        return content
    if opts.init == "style-colors":
        return style_color_noise(content.shape, styles, seed).to(content.device)
    if opts.init == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(content.shape, generator=gen).to(content.device)
        return noise
    if opts.init.startswith("model:"):  # api.model_start gives such jobs their Job.init
        raise ValueError("init model: is resolved into Job.init before the pipeline")
    img = resize(load_image(opts.init), (content.shape[-1], content.shape[-2]))
    return to_tensor(img).to(content.device)


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
        init = init_rgb(opts, content_t, opts.seed, style_ts)
    else:
        init = F.interpolate(previous, size=(size[1], size[0]), mode="bicubic").clamp(0, 1)
    return content_t, style_ts, init


class RunProgress:
    """The callback of one :func:`optimize_scales` call: passes every event on, adding
    to each Started which scale it is and to each Progress the whole job's share done,
    time since it began and time left (:class:`painterly.clock.RunClock`), so that a
    bar and a time estimate need not start again at every scale, tile or image."""

    def __init__(self, callback: Callback, clock: RunClock, plan: Sequence[tuple[int, int]]):
        self.callback, self.clock, self.plan = callback, clock, list(plan)
        self.scale, self.tiles, self.started, self.begun = 0, 1, 0, -1

    def begin_scale(self, index: int, tiles: int) -> None:
        """Scale ``index`` (0-based) begins (or begins again), in ``tiles`` optimisations."""
        self.scale, self.tiles, self.started = index, max(1, tiles), 0
        if index != self.begun:  # a redo (in tiles, in fp32) is the same part again
            self.clock.begin(*self.plan[index])
            self.begun = index

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started += 1
            event = replace(
                event, scale=self.scale + 1, scales=len(self.plan), part=self.clock.label
            )
        elif isinstance(event, Progress) and event.total_steps:
            inside = (self.started - 1 + event.step / event.total_steps) / self.tiles
            self.clock.advance(self.plan[self.scale][0] * min(1.0, inside))
            event = replace(
                event,
                run_fraction=self.clock.fraction,
                run_elapsed=self.clock.elapsed,
                run_left=self.clock.left,
            )
        self.callback(event)
