"""The optimisation loop: the generated image is the only thing that learns.

Targets (the content's activations and the styles' Gram matrices) are computed once
under ``no_grad``; each step runs the frozen encoder on the current image, sums the
weighted losses and lets L-BFGS or Adam move the pixels. Progress leaves as events; the
loop never prints. Ctrl-C ends the loop early and the latest image is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from painterly import controls, losses, masks, nearest
from painterly.config import Options
from painterly.encoders import Encoder
from painterly.events import Callback, Preview, Progress, Started, Stop, ignore
from painterly.image import to_image
from painterly.precision import numerics, resolve_precision

if TYPE_CHECKING:
    from painterly.tiling import Window

Tensor = torch.Tensor


@dataclass
class Outcome:
    """What one optimisation produced."""

    rgb: Tensor  # (N, 3, H, W) in 0..1, clipped; N > 1 for a batch (batch.py)
    steps: int  # loss evaluations actually made
    seconds: float
    history: list[dict[str, float]]  # losses at every step (a batch's: summed over images)
    final: dict[str, float]  # losses of the returned image (a batch's: summed)
    interrupted: bool
    each: list[tuple[list[dict[str, float]], dict[str, float]]] = field(default_factory=list)
    # ^ a batch's (history, final) of each image; empty for a single image
    stalled: bool = False  # some image (or tile) ended with no evaluation below its first
    precision: str = "fp32"  # what the objective was computed in
    out_of_time: bool = False  # its deadline (--time-limit) ended it before its steps

    def split(self) -> list[Outcome]:
        """One Outcome per image, each with its own losses (a single image: itself)."""
        if not self.each:
            return [self]
        return [
            replace(self, rgb=self.rgb[i : i + 1], history=history, final=final, each=[])
            for i, (history, final) in enumerate(self.each)
        ]


class Objective:
    """The weighted sum of content, style and TV losses for fixed targets.

    ``content_rgb`` may be a batch (N, 3, H, W) with ``grams`` of N targets (N, C, C)
    per layer (batch.py): each image is then scored against its own targets and the
    objective is the sum of the images' own objectives.

    ``extra``, if given, is one more loss term, already weighted: it takes the current
    image as RGB in 0..1 (N, 3, H, W) and returns one value per image (N,). It is added
    to the total and reported as the part ``extra`` (painterly video's temporal loss).

    With ``--style-loss nearest`` each style layer's loss is the Gram term plus the
    nearest-neighbour term (nearest.py). ``pools`` are then the paintings' features
    drawn once for a whole run (a tiled run's, a batch's: one blend per image, or one
    for all); without them they are drawn from ``styles``.
    """

    def __init__(
        self,
        encoder: Encoder | Window,  # a Window: one tile's view of the encoder (tiling.py)
        content_rgb: Tensor,
        styles: Sequence[tuple[Tensor, float]],
        opts: Options,
        guide: masks.Guide | None = None,
        *,
        grams: dict[str, Tensor] | None = None,
        rest: dict[str, tuple[Tensor, int]] | None = None,
        extra: Callable[[Tensor], Tensor] | None = None,
        pools: Sequence[nearest.Paintings] | None = None,
    ):
        self.encoder = encoder
        self.extra = extra
        # For a tile: Gram sums and position counts of the rest of the image, so the style
        # loss compares the whole image's statistics with the target (tiling.py).
        self.rest = rest
        self.opts = opts
        self.book = opts.loss_form == "book"
        self.content_layer = opts.content_layer
        self.style_layers = tuple(opts.style_layers)
        self.layers = (self.content_layer, *self.style_layers)
        self.input_pixels = content_rgb.shape[-2] * content_rgb.shape[-1]
        pre = encoder.preprocessing
        with torch.no_grad():
            self.content_target = encoder.features(pre.to_input(content_rgb), [self.content_layer])[
                self.content_layer
            ]
            self.content_energy = losses.energy(self.content_target)
            # Precomputed Grams (a tiled run's global targets, a batch's) replace the styles.
            self.grams = grams if grams is not None else self._blend_grams(styles)
            self.masked = None
            if guide is not None:  # per-region styles and protected regions (masks.py)
                feats = encoder.features(pre.to_input(content_rgb), self.style_layers)
                self.masked = masks.MaskedStyle(
                    guide, content_rgb, feats, styles, self._blend_grams, opts.style_loss
                )
            self.nearest = None
            if opts.style_loss == "nearest":
                self.nearest = self._nearest(styles, pools)

    def _nearest(self, styles, pools) -> nearest.NearestStyle:
        seed, layers = self.opts.seed, self.style_layers
        if self.masked is not None:
            blends = [
                nearest.painting_pools(self.encoder, members, layers, seed)
                for members in self.masked.members
            ]
            return nearest.NearestStyle([], seed, regions=(self.masked.masks, blends))
        if pools is None:
            pools = [nearest.painting_pools(self.encoder, styles, layers, seed)]
        return nearest.NearestStyle(pools, seed)

    @property
    def round(self) -> int:
        """Steps between new draws of the objective's samples (0: it never changes)."""
        return nearest.ROUND if self.nearest is not None else 0

    def refresh(self, round: int | None = None) -> None:
        """Start the next round (or round ``round``): the nearest-neighbour term draws
        new image positions."""
        if self.nearest is not None:
            self.nearest.round = self.nearest.round + 1 if round is None else round

    def _blend_grams(self, styles: Sequence[tuple[Tensor, float]]) -> dict[str, Tensor]:
        return style_targets(
            self.encoder, styles, self.style_layers, self.book, self.opts.style_loss
        )

    def __call__(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss (summed over a batch) and its parts, unweighted, one per image (N,),
        for the network input ``x``."""
        feats = self.encoder.features(x, self.layers)
        if self.book:
            content = losses.content_loss_book(feats[self.content_layer], self.content_target)
            per_layer = {
                n: losses.style_loss_book(feats[n], self.grams[n], self.input_pixels)
                for n in self.style_layers
            }
            tv = losses.tv_loss_book(x)
        else:
            content = losses.content_loss_relative(
                feats[self.content_layer], self.content_target, self.content_energy
            )
            if self.masked:
                per_layer = self.masked(feats)
            elif self.rest is not None:  # a tile: the whole image's Gram, this tile's part live
                per_layer = {
                    n: losses.style_loss_relative_sums(
                        feats[n], self.rest[n], self.grams[n], self.opts.style_loss
                    )
                    for n in self.style_layers
                }
            else:
                per_layer = {
                    n: losses.style_loss_relative(feats[n], self.grams[n], self.opts.style_loss)
                    for n in self.style_layers
                }
            if self.nearest is not None:
                near = self.nearest(feats)
                w = nearest.WEIGHT
                per_layer = {n: v + w * near[n] for n, v in per_layer.items()}
            tv = losses.tv_loss_relative(self.encoder.preprocessing.to_rgb(x))
        # Each style layer weighs 1/L, as in the book's `style_weight / len(style_layers)`,
        # unless --style-layer-weights says otherwise; --strength scales the style weight.
        o = self.opts
        style = controls.layer_mean(per_layer, o.style_layer_weights)
        style_weight = o.style_weight * controls.style_factor(o.strength)
        total = o.content_weight * content + style_weight * style + o.tv_weight * tv
        parts = {"total": total, "content": content, "style": style, "tv": tv}
        if self.extra is not None:
            more = self.extra(self.encoder.preprocessing.to_rgb(x).float())
            parts["total"] = total = total + more
            parts["extra"] = more
        parts.update({f"style:{n}": v for n, v in per_layer.items()})
        return total.sum(), parts


@torch.no_grad()
def style_targets(
    encoder: Encoder | Window,
    styles: Sequence[tuple[Tensor, float]],
    layers: Sequence[str],
    book: bool,
    style_loss: str = "gram",
) -> dict[str, Tensor]:
    """Blend several styles by averaging their Gram matrices (their statistics for
    ``style_loss``, :func:`losses.style_sums`) with the given weights: ``{layer: (1, C,
    C)}``, position-averaged unless ``book``. For ``meancov`` the average is the blend's
    mixture: its mean and second moment are the weighted means of the paintings'."""

    def grams(rgb: Tensor) -> dict[str, Tensor]:
        feats = encoder.features(encoder.preprocessing.to_input(rgb), layers)
        if book:
            return {name: losses.gram(feats[name]) for name in layers}
        return {name: losses.style_statistics(feats[name], style_loss) for name in layers}

    return blend_grams((grams(rgb), weight) for rgb, weight in styles)


def blend_grams(weighted: Iterable[tuple[dict[str, Tensor], float]]) -> dict[str, Tensor]:
    """``sum(w * G) / sum(w)`` per layer over ``(grams, w)`` pairs: the targets of a style
    blend, however each style's Grams were computed (whole, or tile by tile)."""
    pairs = list(weighted)
    total = sum(w for _, w in pairs)
    blended: dict[str, Tensor] = {}
    for grams, weight in pairs:
        for name, g in grams.items():
            g = g * (weight / total)
            blended[name] = blended[name] + g if name in blended else g
    return blended


def _floats(parts: dict[str, Tensor]) -> dict[str, float]:
    """The losses as numbers; a batch's summed over its images (what is minimised)."""
    return {k: float(v.detach().sum()) for k, v in parts.items()}


def _per_image(steps: list[dict[str, Tensor]], n: int) -> list[list[dict[str, float]]]:
    """Per image, the losses at each step as numbers (one read-back per loss name)."""
    if not steps:
        return [[] for _ in range(n)]
    table = {k: torch.stack([p[k].detach().expand(n) for p in steps]).tolist() for k in steps[0]}
    return [
        [{k: rows[s][i] for k, rows in table.items()} for s in range(len(steps))] for i in range(n)
    ]


def optimize(
    objective: Objective,
    init_rgb: Tensor,
    opts: Options,
    *,
    callback: Callback = ignore,
    preview_every: int = 0,
    progress_every: int = 1,
    device_name: str = "cpu",
    deadline: float | None = None,
) -> Outcome:
    """Run ``opts.steps`` loss evaluations from ``init_rgb`` and return the result.

    With a ``deadline`` (a ``time.perf_counter()`` value) the run also ends before the
    first evaluation that would, at the average pace so far, finish after it; the first
    evaluation is always made.
    """
    pre = objective.encoder.preprocessing
    device = init_rgb.device
    precision = resolve_precision(opts.precision, device, exact=opts.loss_form == "book")
    x = pre.to_input(init_rgb).detach().clone()
    x.requires_grad_(True)
    h, w = x.shape[-2:]
    callback(Started(opts.steps, (w, h), objective.encoder.name, device_name))
    history: list[dict[str, Tensor]] = []
    start = time.perf_counter()

    # A graph replays fixed samples: an objective that draws new ones runs eagerly.
    graph = _use_graph(device, opts) and not objective.round
    evaluate = _graphed(objective, x, precision) if graph else None
    limit = [opts.steps]  # evaluations allowed so far; L-BFGS rounds lower it
    # The image returned is the best one evaluated, not the last point an optimiser
    # moved to: a line search may stop at an untried point, and a NaN never wins. Each
    # image of a batch keeps its own best.
    best_x = x.detach().clone()
    best_loss = torch.full((x.shape[0],), float("inf"), device=device)

    def closure() -> Tensor:
        nonlocal best_loss
        if len(history) >= limit[0] or (deadline is not None and _past(deadline, start, history)):
            raise _BudgetSpent
        if evaluate is not None:
            total, parts = evaluate()  # refills x.grad in place
        else:
            with numerics(precision, device):
                total, parts = objective(x)
            x.grad = None
            total.backward()
        # Kept as device tensors (a graph's outputs are overwritten, hence the copy):
        # reading them back every step would stall the GPU.
        history.append({k: v.detach().clone() for k, v in parts.items()})
        with torch.no_grad():  # on the device: no host synchronisation
            each = parts["total"].detach()
            better = each < best_loss
            best_loss = torch.where(better, each, best_loss)
            best_x.copy_(torch.where(better.view(-1, 1, 1, 1), x, best_x))
        step = len(history)
        if step % progress_every == 0 or step == opts.steps:
            callback(Progress(step, opts.steps, _floats(parts), time.perf_counter() - start))
        if preview_every and step % preview_every == 0 and step < opts.steps:
            callback(Preview(step, to_image(pre.to_rgb(x.detach()))))
        return total

    def restore() -> None:
        x.detach().copy_(best_x)

    def new_round() -> None:
        # The objective changes (new samples): the best image is then the best of the
        # round, which starts from the best of the one before.
        objective.refresh()
        best_loss.fill_(float("inf"))

    interrupted = False
    try:
        if opts.optimizer == "lbfgs":
            first = FIRST_STEP * pre.scale / (sum(pre.std) / 3) if opts.loss_form != "book" else 0
            _run_lbfgs(x, closure, opts, limit, restore, objective.round, new_round, first)
        else:
            _run_adam(x, closure, opts, pre, objective.round, new_round)
    except _BudgetSpent:
        pass
    except (KeyboardInterrupt, Stop):  # Ctrl-C, or a callback that asked to stop
        interrupted = True
    seconds = time.perf_counter() - start
    # A stall: more than one evaluation, and none better than the first (the start). It
    # is what an objective too coarse for the optimiser's trial steps looks like.
    stalled = len(history) > 1 and bool((best_loss >= history[0]["total"]).any())
    if history:
        with torch.no_grad():
            x.copy_(best_x)

    with torch.no_grad(), numerics(precision, device):
        _, final = objective(x)
    rgb = pre.to_rgb(x.detach()).clamp(0, 1)
    n, each = x.shape[0], []
    if n > 1:  # a batch: each image's own losses too
        finals = [f[0] for f in _per_image([final], n)]
        each = list(zip(_per_image(history, n), finals, strict=True))
    return Outcome(
        rgb=rgb,
        steps=len(history),
        seconds=seconds,
        history=[_floats(p) for p in history],
        final=_floats(final),
        interrupted=interrupted,
        each=each,
        stalled=stalled,
        precision=precision,
        out_of_time=deadline is not None and len(history) < opts.steps and not interrupted,
    )


def _past(deadline: float, start: float, history: list) -> bool:
    """Whether one more evaluation, at the average pace so far, would end past ``deadline``."""
    if not history:
        return False
    now = time.perf_counter()
    return now + (now - start) / len(history) > deadline


# L-BFGS's first step, as the mean change of a pixel value (0..1 units): one grey level.
# PyTorch's own first step is 1 in total over all values, which with the relative losses
# is so small that the line search spent 7-8 evaluations of every scale growing it.
FIRST_STEP = 1 / 255


class _BudgetSpent(Exception):
    """Raised inside the closure when the step budget is used up."""


def _run_lbfgs(
    x: Tensor,
    closure,
    opts: Options,
    limit: list[int],
    restore,
    every: int,
    new_round,
    first_step: float = 0.0,
) -> None:
    """L-BFGS with a strong-Wolfe line search, spending exactly the step budget.

    With ``lbfgs_restart = R`` the run is split into rounds of at most R evaluations,
    each with a fresh optimiser: the book calls scipy's ``fmin_l_bfgs_b(maxfun=20)`` 20
    times, each call starting its curvature memory anew. The line search matters with
    the relative losses: their gradients are small in 0..255 input units, and without it
    L-BFGS's first step (at most 1 in total over all pixels) is lost in float32
    rounding, after which it never builds curvature. Tolerances are disabled so a round
    never stops early: the step budget is the budget.

    An objective that changes every ``every`` steps (the nearest-neighbour style's new
    samples) also ends a round there; ``new_round`` changes it.
    """
    round_len = min(r for r in (opts.lbfgs_restart, every, opts.steps) if r)
    # The optimiser moves u = x / c. L-BFGS and its line search are unchanged by such a
    # scaling except for the very first step, steepest descent of L1 length 1 (in u),
    # which becomes c in x: ``first_step`` per value (less if the gradient's L1 norm is
    # below 1 / c, where PyTorch takes a plain gradient step instead).
    c = first_step * x.numel() if first_step else 1.0
    u = (x.detach() / c).requires_grad_(True)

    def moved() -> Tensor:
        with torch.no_grad():
            x.copy_(u * c)
        total = closure()
        assert x.grad is not None  # the closure's backward() fills it
        u.grad = x.grad * c
        return total

    for done in range(0, opts.steps, round_len):
        if done and every:
            new_round()
        limit[0] = min(opts.steps, done + round_len)
        opt = torch.optim.LBFGS(
            [u],
            lr=1.0,
            max_iter=round_len,
            max_eval=round_len,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
            # 25 by default: 0.86-0.99x the final loss of 10 (scipy's m, the book's) after
            # 100 steps on three pairs with two encoders; the chollet preset keeps 10.
            history_size=opts.lbfgs_history,
            line_search_fn="strong_wolfe",
        )
        try:
            opt.step(moved)
        except _BudgetSpent:
            restore()  # spent inside a line search: go back to the best point evaluated
            with torch.no_grad():
                u.copy_(x / c)
    limit[0] = opts.steps


def _run_adam(x: Tensor, closure, opts: Options, pre, every: int, new_round) -> None:
    # The learning rate is given in 0..1 pixel units; convert it to network-input units.
    std = sum(pre.std) / 3
    fused = x.device.type == "cuda"  # one kernel for the whole update
    opt = torch.optim.Adam([x], lr=opts.learning_rate * pre.scale / std, fused=fused)
    for step in range(opts.steps):
        if step and every and step % every == 0:
            new_round()
        closure()
        opt.step()


def _use_graph(device: torch.device, opts: Options) -> bool:
    return device.type == "cuda" and opts.cuda_graph


def _graphed(objective: Objective, x: Tensor, precision: str):
    """Capture one loss-and-gradient evaluation at ``x`` as a CUDA graph.

    At 512 px a step's arithmetic takes about 0.5 ms on a big GPU, but launching its few
    hundred kernels one by one from Python takes longer; replaying a captured graph
    launches them all at once. ``x`` must keep its storage (optimisers update it in
    place); the graph reads it and rewrites ``x.grad``, the loss and its parts.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):  # warm up cuDNN's algorithm choice outside the capture
            x.grad = None
            with numerics(precision, x.device):
                total, _ = objective(x)
            total.backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        with numerics(precision, x.device):
            total, parts = objective(x)
        total.backward()

    def replay() -> tuple[Tensor, dict[str, Tensor]]:
        graph.replay()
        return total, parts

    return replay
