"""The optimisation loop: the generated image is the only thing that learns.

Targets (the content's activations and the styles' Gram matrices) are computed once
under ``no_grad``; each step runs the frozen encoder on the current image, sums the
weighted losses and lets L-BFGS or Adam move the pixels. Progress leaves as events; the
loop never prints. Ctrl-C ends the loop early and the latest image is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from painterly import losses
from painterly.config import Options
from painterly.encoders import Encoder
from painterly.events import Callback, Preview, Progress, Started, ignore
from painterly.image import to_image

Tensor = torch.Tensor


@dataclass
class Outcome:
    """What one optimisation produced."""

    rgb: Tensor  # (1, 3, H, W) in 0..1, clipped
    steps: int  # loss evaluations actually made
    seconds: float
    history: list[dict[str, float]]  # losses at every step
    final: dict[str, float]  # losses of the returned image
    interrupted: bool


class Objective:
    """The weighted sum of content, style and TV losses for fixed targets."""

    def __init__(
        self,
        encoder: Encoder,
        content_rgb: Tensor,
        styles: Sequence[tuple[Tensor, float]],
        opts: Options,
    ):
        self.encoder = encoder
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
            self.grams = self._blend_grams(styles)

    def _blend_grams(self, styles: Sequence[tuple[Tensor, float]]) -> dict[str, Tensor]:
        """Blend several styles by averaging their Gram matrices with the given weights."""
        gram = losses.gram if self.book else losses.gram_mean
        total = sum(w for _, w in styles)
        blended: dict[str, Tensor] = {}
        for rgb, weight in styles:
            feats = self.encoder.features(
                self.encoder.preprocessing.to_input(rgb), self.style_layers
            )
            for name in self.style_layers:
                g = gram(feats[name]) * (weight / total)
                blended[name] = blended[name] + g if name in blended else g
        return blended

    def __call__(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its parts (unweighted) for the network input ``x``."""
        feats = self.encoder.features(x, self.layers)
        if self.book:
            content = losses.content_loss_book(feats[self.content_layer], self.content_target)
            per_layer = {
                n: losses.style_loss_book(feats[n], self.grams[n], self.input_pixels)
                for n in self.style_layers
            }
            tv = losses.tv_loss_book(x)
        else:
            content = losses.content_loss_relative(feats[self.content_layer], self.content_target)
            per_layer = {
                n: losses.style_loss_relative(feats[n], self.grams[n]) for n in self.style_layers
            }
            tv = losses.tv_loss_relative(self.encoder.preprocessing.to_rgb(x))
        # Each style layer weighs 1/L, as in the book's `style_weight / len(style_layers)`.
        style = sum(per_layer.values()) / len(per_layer)
        o = self.opts
        total = o.content_weight * content + o.style_weight * style + o.tv_weight * tv
        parts = {"total": total, "content": content, "style": style, "tv": tv}
        parts.update({f"style:{n}": v for n, v in per_layer.items()})
        return total, parts


def _floats(parts: dict[str, Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in parts.items()}


def optimize(
    objective: Objective,
    init_rgb: Tensor,
    opts: Options,
    *,
    callback: Callback = ignore,
    preview_every: int = 0,
    device_name: str = "cpu",
) -> Outcome:
    """Run ``opts.steps`` loss evaluations from ``init_rgb`` and return the result."""
    pre = objective.encoder.preprocessing
    x = pre.to_input(init_rgb).detach().clone().requires_grad_(True)
    h, w = x.shape[-2:]
    callback(Started(opts.steps, (w, h), objective.encoder.name, device_name))
    history: list[dict[str, Tensor]] = []
    start = time.perf_counter()

    def closure() -> Tensor:
        if len(history) >= opts.steps:
            # L-BFGS may ask once more at the end of a round; the budget is spent.
            raise _BudgetSpent
        total, parts = objective(x)
        x.grad = None
        total.backward()
        history.append({k: v.detach() for k, v in parts.items()})
        step = len(history)
        callback(Progress(step, opts.steps, _floats(parts), time.perf_counter() - start))
        if preview_every and step % preview_every == 0 and step < opts.steps:
            callback(Preview(step, to_image(pre.to_rgb(x.detach()))))
        return total

    interrupted = False
    try:
        if opts.optimizer == "lbfgs":
            _run_lbfgs(x, closure, opts)
        else:
            _run_adam(x, closure, opts, pre)
    except _BudgetSpent:
        pass
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start

    with torch.no_grad():
        _, final = objective(x)
    rgb = pre.to_rgb(x.detach()).clamp(0, 1)
    return Outcome(
        rgb=rgb,
        steps=len(history),
        seconds=seconds,
        history=[_floats(p) for p in history],
        final=_floats(final),
        interrupted=interrupted,
    )


class _BudgetSpent(Exception):
    """Raised inside the closure when the step budget is used up."""


def _run_lbfgs(x: Tensor, closure, opts: Options) -> None:
    """L-BFGS without line search, so that every iteration costs exactly one evaluation.

    With ``lbfgs_restart = R`` the run is split into rounds of R evaluations, each with a
    fresh optimiser (the book calls scipy's ``fmin_l_bfgs_b(maxfun=20)`` 20 times, each
    call starting its curvature memory anew). Tolerances are disabled so a round never
    stops early: the step budget is the budget.
    """
    round_len = opts.lbfgs_restart or opts.steps
    for _ in range(math.ceil(opts.steps / round_len)):
        opt = torch.optim.LBFGS(
            [x],
            lr=1.0,
            max_iter=round_len,
            max_eval=round_len,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
            history_size=100,
        )
        opt.step(closure)


def _run_adam(x: Tensor, closure, opts: Options, pre) -> None:
    # The learning rate is given in 0..1 pixel units; convert it to network-input units.
    std = sum(pre.std) / 3
    opt = torch.optim.Adam([x], lr=opts.learning_rate * pre.scale / std)
    for _ in range(opts.steps):
        opt.zero_grad(set_to_none=True)
        closure()
        opt.step()
