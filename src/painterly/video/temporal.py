"""The temporal terms of Ruder et al. (2016) and the warping error of Lai et al. (2018).

Frame t's output x is held to the previous output warped onto frame t's grid, w, at the
pixels where the flow is reliable (c = 1):

    L_temporal = (1 / D) sum_i c_i (x_i - w_i)^2,      D = 3 H W,

a mean over pixels and channels in 0..1 RGB, like the relative TV loss, so that one
``--temporal-weight`` means the same at any size. Long-term terms add the same loss to
earlier outputs, each weighted only where no nearer frame is reliable (Ruder's
``c_long``), so that a region hidden for a few frames comes back as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from painterly.video.flow import warp

Tensor = torch.Tensor


def long_term_masks(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder's long-term weights for masks ordered nearest frame first:
    ``max(c_j - sum_{k nearer} c_k, 0)``. The nearest keeps its own mask."""
    out, covered = [], np.zeros_like(masks[0])
    for mask in masks:
        out.append(np.clip(mask - covered, 0, 1))
        covered = covered + mask
    return out


def to_tensor(array: np.ndarray, device) -> Tensor:
    """(H, W, C) or (H, W) float array -> (1, C, H, W) float32 tensor on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    t = t.unsqueeze(-1) if t.dim() == 2 else t
    return t.permute(2, 0, 1).unsqueeze(0).to(device)


class TemporalLoss:
    """``weight * sum_j mean(c_j (x - w_j)^2)`` over (warped output, mask) pairs, one
    value per image: the ``extra`` term of optimize.Objective. A scale smaller than the
    targets sees them resized."""

    def __init__(self, targets: Sequence[tuple[Tensor, Tensor]], weight: float):
        self.targets = list(targets)  # ((1, 3, H, W), (1, 1, H, W)), RGB and mask in 0..1
        self.weight = weight

    def __call__(self, rgb: Tensor) -> Tensor:
        total = rgb.new_zeros(rgb.shape[0])
        for target, mask in self.targets:
            if target.shape[-2:] != rgb.shape[-2:]:
                target = F.interpolate(target, size=rgb.shape[-2:], mode="bilinear")
                mask = F.interpolate(mask, size=rgb.shape[-2:], mode="bilinear")
            total = total + (mask * (rgb - target) ** 2).mean(dim=(1, 2, 3))
        return self.weight * total


def warping_error(a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray, mask: np.ndarray) -> float:
    """Lai et al.'s warping error of one frame pair: the mean squared difference between
    frame A and frame B warped onto A's grid, over the reliable pixels only; (H, W, 3)
    arrays in 0..1, the mean taken over the RGB channels too. 0 if nothing is reliable."""
    diff = ((a - warp(b, flow_ab)) ** 2).mean(-1)
    count = float(mask.sum())
    return float((diff * mask).sum() / count) if count else 0.0
