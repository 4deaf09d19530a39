"""Nearest-neighbour style (``--style-loss nearest``): match the painting's features
themselves, not only their statistics.

A Gram matrix keeps which channels fire together, averaged over the whole image; with
features that were never trained (the offline encoder), that describes texture energy,
and the optimiser answers with a regular hatch. Here the image's feature vectors are
compared with the painting's, one by one, by cosine distance ``C_ij`` between a sample
of the image's positions ``i`` and a sample of the painting's ``j``, with the relaxed
earth mover's distance of Kolkin, Salavon and Shakhnarovich (STROTSS, CVPR 2019):

    REMD = max(mean_i min_j C_ij, mean_j min_i C_ij)

The first term asks every part of the image to look like *some* part of the painting;
alone, it lets a flat sky copy the painting's flattest patch. The second asks every
part of the painting to appear *somewhere* in the image, so its strokes, edges and
hatching have to be painted in. The Gram term stays beside it (the moments of STROTSS):
it keeps the palette's proportions, which nearest neighbours do not count.

The painting is read at several sizes (strokes of every size are on offer) and at most
:data:`POOL_SIDE` px, so that a 4096 px output costs no more to match than a 1024 px
one. New image positions are drawn every :data:`ROUND` steps (one L-BFGS round), so the
matches follow the image as it changes while each round's objective stays fixed, as a
line search needs. Everything is drawn from ``--seed``: a run repeats exactly.

Blends: each painting keeps its own neighbours and the losses are averaged with the
blend's weights. A shared pool would let a painting with weight 0.1 win wherever its
features happen to be closest; averaging moves smoothly with the weight, as the Gram
blend does. Masks: each region is sampled inside itself and matched with its own
paintings only.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import cast

import torch
from torch.nn import functional as F

from painterly import losses

Tensor = torch.Tensor
Pool = dict[str, Tensor]  # layer -> (M, C) unit-length painting features
Paintings = list[tuple[Pool, float]]  # a blend: each painting's pool and its weight

POOL_SIDE = 1024  # the painting's long side is read at most this large
POOL_SCALES = (1.0, 0.71, 0.5)  # ... and at these fractions of it
POOL_SIZE = 2048  # painting features kept per layer
SAMPLES = 1024  # image positions per layer compared in a round
ROUND = 20  # steps between draws of new image positions
# The REMD's weight beside the Gram term in each layer's style loss: by eye and by the
# held-out benchmark (benchmarks/style_loss_heldout.py), 0.3 paints at equal or more
# structure than the Gram alone; 1.0 let the photo dissolve.
WEIGHT = 0.3


def _positions(f: Tensor) -> Tensor:
    """One image's (C, H, W) features as (H*W, C), a view in either memory layout."""
    c = f.shape[0]
    if c > 1 and f.stride(0) == 1:  # a channels-last map: positions-major already
        return f.permute(1, 2, 0).reshape(-1, c)
    return f.reshape(c, -1).t()


@torch.no_grad()
def painting_pool(encoder, rgb: Tensor, layers: Sequence[str], seed: int) -> Pool:
    """A seeded sample of the painting's features at every layer, from the painting
    ``rgb`` (1, 3, H, W) in 0..1 read at :data:`POOL_SCALES` of at most POOL_SIDE px."""
    pre = encoder.preprocessing
    side = min(max(rgb.shape[-2:]), POOL_SIDE)
    found: dict[str, list[Tensor]] = {n: [] for n in layers}
    for fraction in POOL_SCALES:
        scale = side * fraction / max(rgb.shape[-2:])
        size = (max(32, round(rgb.shape[-2] * scale)), max(32, round(rgb.shape[-1] * scale)))
        img = F.interpolate(rgb, size=size, mode="bilinear", antialias=True, align_corners=False)
        feats = encoder.features(pre.to_input(img.clamp(0, 1)), layers)
        for n in layers:
            found[n].append(_positions(feats[n][0].float()))
    pool = {}
    for n in layers:
        every = torch.cat(found[n])
        gen = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(n.encode())) % 2**63)
        pick = torch.randperm(every.shape[0], generator=gen)[:POOL_SIZE].to(every.device)
        pool[n] = F.normalize(every[pick], dim=1)
    return pool


def painting_pools(
    encoder, styles: Sequence[tuple[Tensor, float]], layers: Sequence[str], seed: int
) -> Paintings:
    """Each painting's pool with its blend weight."""
    return [(painting_pool(encoder, rgb, layers, seed + k), w) for k, (rgb, w) in enumerate(styles)]


class NearestStyle:
    """The nearest-neighbour term of the style loss for one objective.

    ``paintings`` has one blend per image of the batch (or one for all). ``regions``, for
    a masked run, is ``(masks, blends)``: each layer's region masks (K, 1, h, w) and each
    region's blend. Called with the image's features, it returns each layer's REMD, one
    value per image (N,).
    """

    def __init__(
        self,
        paintings: Sequence[Paintings],
        seed: int,
        regions: tuple[dict[str, Tensor], list[Paintings]] | None = None,
    ):
        self.paintings = list(paintings)
        self.regions = regions
        self.seed = seed
        self.round = 0
        self._drawn: dict[tuple, Tensor] = {}  # this round's positions, by what they are for
        blends = self.paintings if regions is None else regions[1]
        self.layers = tuple(blends[0][0][0])

    def _draw(self, count: int, where: Tensor | None, key: int, device) -> Tensor:
        """Up to SAMPLES of ``count`` positions (only those in ``where``, if given),
        the same for the same seed, round and key."""
        known = self._drawn.get((self.round, count, key))
        if known is not None:
            return known
        self._drawn = {k: v for k, v in self._drawn.items() if k[0] == self.round}
        mixed = (self.seed * 1_000_003 + self.round * 7919 + key) % 2**63
        gen = torch.Generator().manual_seed(mixed)
        if where is None:
            order = torch.randperm(count, generator=gen)
        else:
            inside = torch.nonzero(where.flatten().cpu() > 0.5).flatten()
            order = inside[torch.randperm(len(inside), generator=gen)]
        pick = self._drawn[(self.round, count, key)] = order[:SAMPLES].to(device)
        return pick

    def __call__(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for li, n in enumerate(self.layers):
            f = feats[n]
            count = f.shape[-2] * f.shape[-1]
            values = []
            for i in range(f.shape[0]):
                points = _positions(f[i])
                if self.regions is None:
                    blend = self.paintings[i if len(self.paintings) > 1 else 0]
                    pick = self._draw(count, None, li * 64 + i, points.device)
                    values.append(_blend_remd(points[pick], blend, n))
                    continue
                masks, blends = self.regions
                area, total = [], []
                for k, blend in enumerate(blends):
                    pick = self._draw(count, masks[n][k], li * 64 + k, points.device)
                    if len(pick) == 0:
                        continue
                    area.append(masks[n][k].mean())
                    total.append(_blend_remd(points[pick], blend, n))
                # A sum of a non-empty list of tensors is a tensor (not sum()'s start, 0).
                values.append(
                    cast(Tensor, sum(a * t for a, t in zip(area, total, strict=True)) / sum(area))
                    if area
                    else f.new_zeros(())
                )
            out[n] = torch.stack(values)
        return out


def _blend_remd(points: Tensor, blend: Paintings, layer: str) -> Tensor:
    total = sum(w for _, w in blend)
    # With no nonzero weight, the total is 0 and the division raises; with one, the sum
    # is a tensor, not sum()'s start (0).
    weighted = sum(w * losses.relaxed_emd(points, pool[layer]) for pool, w in blend if w)
    return cast(Tensor, weighted / total)
