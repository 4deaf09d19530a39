"""Tiles, for images whose optimisation does not fit in memory at once.

At a scale too large for the memory budget, the image is optimised tile by tile, in
raster order, each tile overlapping its neighbours. Every tile matches the *global*
style statistics: the Gram targets come from the whole style image (computed tile by
tile too, summing F F^T over tile interiors, so they equal the whole-image Grams), never
from the part of the style under the tile, and a tile's style loss is measured on the
Gram of the whole current image with only the tile's part live.

The network sees each tile inside a margin of the current image around it (a
:class:`Window`), frozen, and only the features over the tile are scored. Cut out on
its own, a tile would be seen with zero padding at its borders and the optimiser would
paint a frame along every tile edge, which at the next, finer scale shows as a line.
Each tile starts from the current whole image, so it sees the tiles already done, and is
written back with a linear cross-fade over the overlap it shares with them.

Tiles work best at the finer scales of a multi-scale run (the default), where the
coarser scale has already laid the style out over the whole image and the tiles add
detail. A single-scale tiled run from the photo is a block-by-block optimisation of one
objective: the first tiles overshoot to pull the whole image's statistics toward the
painting, and the tiles come out unequal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from painterly import losses

Tensor = torch.Tensor
ALIGN = 16  # tile corners on multiples of 16 keep VGG's four poolings aligned


@dataclass(frozen=True)
class Tile:
    y0: int
    y1: int
    x0: int
    x1: int

    def crop(self, t: Tensor) -> Tensor:
        return t[..., self.y0 : self.y1, self.x0 : self.x1]


def overlap_of(tile: int) -> int:
    """Overlap between neighbouring tiles, and the margin of context around each."""
    return max(ALIGN, tile // 4 // ALIGN * ALIGN)


def window_side(tile: int) -> int:
    """Side of what the network sees for a tile: the tile and its margin on both sides."""
    return tile + 2 * overlap_of(tile)


def _starts(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """(side, starts) of tiles along one axis: as few tiles of at most ``tile`` as
    cover ``length`` sharing at least ``overlap``, then the smallest side that still
    does, spread evenly (corners on multiples of ALIGN, the last tile ending at the edge).
    Evenly spread tiles share equal overlaps, and a smaller side is less work per step."""
    if length <= tile:
        return length, [0]
    for count in range(2, length // ALIGN + 2):
        for side in range(tile % ALIGN or ALIGN, tile + 1, ALIGN):
            starts = _spread(length - side, count, side - overlap)
            if starts:
                return side, starts
    raise ValueError(f"no tiling of {length} px with tiles of {tile} overlapping by {overlap}")


def _spread(last: int, count: int, gap: int) -> list[int] | None:
    """``count`` starts from 0 to ``last``, all but the last on multiples of ALIGN, no
    two more than ``gap`` apart and as even as that allows; None if impossible."""
    if count == 2:
        return [0, last] if last <= gap else None
    inner = count - 2  # gaps between aligned starts; the last gap reaches ``last``
    most = inner * (gap // ALIGN)  # in units of ALIGN
    least = max(0, math.ceil((last - gap) / ALIGN))
    if least > most:
        return None
    units = min(max(round(last * inner / (count - 1) / ALIGN), least), most)
    return [ALIGN * (units * i // inner) for i in range(inner + 1)] + [last]


def _partition(height: int, width: int, tile: int) -> list[Tile]:
    """Non-overlapping tiles: every position belongs to exactly one."""
    return [
        Tile(y, min(y + tile, height), x, min(x + tile, width))
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    ]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Overlapping tiles of side ``tile`` at most, evenly spread over the image, raster order."""
    tile_h, ys = _starts(height, tile, overlap)
    tile_w, xs = _starts(width, tile, overlap)
    return [Tile(y, y + tile_h, x, x + tile_w) for y in ys for x in xs]


def tile_count(height: int, width: int, tile: int) -> int:
    """How many tiles :func:`optimize_tiled` makes of a ``height`` x ``width`` image."""
    return len(tile_grid(height, width, tile, overlap_of(tile)))


def _ramp(n: int, device) -> Tensor:
    """``n`` weights rising strictly between 0 and 1."""
    return torch.linspace(0, 1, n + 2, device=device)[1:-1]


def blend_weights(tile: Tile, done: Tensor, fade_bottom: int = 0, fade_right: int = 0) -> Tensor:
    """(1, 1, h, w) weights for writing ``tile`` back: ramps from 0 to 1 across the part
    of the tile already covered by earlier tiles (``done``), and from 1 down toward 0
    over the last ``fade_bottom`` rows and ``fade_right`` columns, which later tiles will
    cover; 1 elsewhere.

    The fade-out matters when a scale has few steps: written back at full weight, a
    tile's optimised pixels would meet the not-yet-optimised image in a hard edge, and
    the next tile, which starts from that image, may not have the steps to smooth it.
    """
    covered = tile.crop(done)[0, 0]
    h, w = covered.shape
    weight = torch.ones(h, w, device=done.device)

    rows = covered.all(dim=1).nonzero()  # top rows fully covered: overlap with tile above
    cols = covered.all(dim=0).nonzero()  # left columns fully covered
    if len(rows) and rows[-1] < h - 1:
        n = int(rows[-1]) + 1
        weight[:n] *= _ramp(n, done.device)[:, None]
    if len(cols) and cols[-1] < w - 1:
        n = int(cols[-1]) + 1
        weight[:, :n] *= _ramp(n, done.device)[None, :]
    if 0 < fade_bottom < h:
        weight[h - fade_bottom :] *= _ramp(fade_bottom, done.device).flip(0)[:, None]
    if 0 < fade_right < w:
        weight[:, w - fade_right :] *= _ramp(fade_right, done.device).flip(0)[None, :]
    return weight[None, None]


def feather(t: Tile, height: int, width: int, overlap: int, device) -> Tensor:
    """(1, 1, h, w) weights of tile ``t`` for :func:`map_tiles`: 1 inside, ramping down
    over ``overlap`` px at each side that another tile shares (not at the image's edges)."""
    h, w = t.y1 - t.y0, t.x1 - t.x0
    wy, wx = torch.ones(h, device=device), torch.ones(w, device=device)
    n_y, n_x = min(overlap, h), min(overlap, w)
    if t.y0 > 0:
        wy[:n_y] = torch.minimum(wy[:n_y], _ramp(n_y, device))
    if t.y1 < height:
        wy[h - n_y :] = torch.minimum(wy[h - n_y :], _ramp(n_y, device).flip(0))
    if t.x0 > 0:
        wx[:n_x] = torch.minimum(wx[:n_x], _ramp(n_x, device))
    if t.x1 < width:
        wx[w - n_x :] = torch.minimum(wx[w - n_x :], _ramp(n_x, device).flip(0))
    return (wy[:, None] * wx[None, :])[None, None]


def map_tiles(function: Callable[[Tensor], Tensor], image: Tensor, tile: int) -> Tensor:
    """``function`` (one image in, one of the same size out, such as a fast model's
    forward pass) applied to overlapping tiles of ``image`` and blended back: every
    pixel the mean of the tiles covering it, weighted by :func:`feather`.

    Unlike :func:`optimize_tiled`, each tile is independent of the others, so the tiles
    are blended symmetrically rather than cross-faded in raster order."""
    height, width = image.shape[-2:]
    overlap = overlap_of(tile)
    total = torch.zeros_like(image)
    weight = torch.zeros_like(image[:, :1])
    for t in tile_grid(height, width, tile, overlap):
        w = feather(t, height, width, overlap, image.device)
        t.crop(total).add_(w * function(t.crop(image)))
        t.crop(weight).add_(w)
    return total / weight


def largest_tile(cost: Callable[[int], float], longest: int, budget: int, least: int) -> int:
    """The largest tile side, a multiple of ALIGN from ``least`` up to ``longest``, whose
    ``cost(side)`` (bytes, growing with the side) fits ``budget``; 0 if not even
    ``least`` fits. The memory-budgeted tile of optimisation and of fast models alike."""
    low, high = least, max(least, longest // ALIGN * ALIGN)
    if cost(low) > budget:
        return 0
    while low < high:  # cost(low) fits; the answer lies in low..high
        middle = (low + high + ALIGN) // 2 // ALIGN * ALIGN
        if cost(middle) <= budget:
            low = middle
        else:
            high = middle - ALIGN
    return low


def gram_sums(
    encoder,
    rgb: Tensor,
    layers: Sequence[str],
    tile: int,
    halo: int = 64,
    style_loss: str = "gram",
) -> dict[str, tuple[Tensor, int]]:
    """Per layer: (sum over positions of F F^T, number of positions) of a whole image,
    computed tile by tile with ``halo`` px of context, every position counted once.
    (The sums of :func:`losses.style_sums` for ``style_loss``.)"""
    pre = encoder.preprocessing
    h, w = rgb.shape[-2:]
    out: dict[str, tuple[Tensor, int]] = {}
    for t in _partition(h, w, tile):
        y0, x0 = max(0, t.y0 - halo), max(0, t.x0 - halo)
        y1, x1 = min(h, t.y1 + halo), min(w, t.x1 + halo)
        with torch.no_grad():
            feats = encoder.features(pre.to_input(rgb[..., y0:y1, x0:x1]), layers)
        for name, f in feats.items():
            sy, sx = (y1 - y0) / f.shape[-2], (x1 - x0) / f.shape[-1]
            inner = f[
                ...,
                round((t.y0 - y0) / sy) : round((t.y1 - y0) / sy),
                round((t.x0 - x0) / sx) : round((t.x1 - x0) / sx),
            ]
            g, n = losses.style_sums(inner, style_loss), inner.shape[-2] * inner.shape[-1]
            out[name] = (out[name][0] + g, out[name][1] + n) if name in out else (g, n)
    return out


def tiled_grams(
    encoder,
    styles: Sequence[tuple[Tensor, float]],
    layers: Sequence[str],
    tile: int,
    halo: int = 64,
    style_loss: str = "gram",
) -> dict[str, Tensor]:
    """Position-averaged Gram matrices (statistics for ``style_loss``) of the weighted
    styles, computed tile by tile; they equal the whole-image Grams up to the context
    lost beyond ``halo``."""
    from painterly.optimize import blend_grams

    def grams(rgb: Tensor) -> dict[str, Tensor]:
        return {
            n: g / count
            for n, (g, count) in gram_sums(encoder, rgb, layers, tile, halo, style_loss).items()
        }

    return blend_grams((grams(rgb), weight) for rgb, weight in styles)


class Window:
    """The encoder as one tile sees it: the tile inside a margin of its surroundings.

    A tile cut out on its own would be seen by the network with zero padding at its
    borders, and the optimiser would paint against that: a dark or bright frame along
    every tile edge. Here the network sees the tile in ``context`` (the current image
    around it, frozen), and only the features over the tile itself are scored.
    """

    def __init__(self, encoder, context: Tensor, box: Tile):
        self.encoder, self.context, self.box = encoder, context, box
        self.net, self.preprocessing = encoder.net, encoder.preprocessing
        self.name, self.arch = encoder.name, encoder.arch

    def features(self, x: Tensor, layers) -> dict[str, Tensor]:
        """Features over the tile, for ``x`` the tile (set into the frozen context) or a
        whole window of another image (the content's)."""
        if x.shape[-2:] != self.context.shape[-2:]:
            window = self.context.clone()
            self.box.crop(window).copy_(x)  # differentiable: the gradient reaches x
            x = window
        feats = self.encoder.features(x, layers)
        return {name: self._inside(f, x.shape[-2:]) for name, f in feats.items()}

    def _inside(self, f: Tensor, size) -> Tensor:
        sy, sx = size[0] / f.shape[-2], size[1] / f.shape[-1]
        b = self.box
        return f[..., round(b.y0 / sy) : round(b.y1 / sy), round(b.x0 / sx) : round(b.x1 / sx)]


def window(t: Tile, height: int, width: int, margin: int) -> tuple[Tile, Tile]:
    """The window around tile ``t`` (``margin`` px more on each side, within the image)
    and the tile's place inside it."""
    w = Tile(max(0, t.y0 - margin), min(height, t.y1 + margin),
             max(0, t.x0 - margin), min(width, t.x1 + margin))  # fmt: skip
    return w, Tile(t.y0 - w.y0, t.y1 - w.y0, t.x0 - w.x0, t.x1 - w.x0)


def _tile_sums(seen: Window, layers, style_loss: str) -> dict[str, tuple[Tensor, int]]:
    """Per layer: (sum of F F^T, positions) over the tile, seen in its current window."""
    with torch.no_grad():
        feats = seen.features(seen.context, layers)
    return {
        n: (losses.style_sums(f, style_loss), f.shape[-2] * f.shape[-1]) for n, f in feats.items()
    }


def optimize_tiled(
    encoder,
    content_rgb: Tensor,
    init_rgb: Tensor,
    grams: dict[str, Tensor],
    opts,
    tile: int,
    pools=None,
    **optimize_kwargs,
):
    """Optimise ``init_rgb`` tile by tile, ``opts.steps`` steps per tile (about the work
    of the same steps on the whole image); returns an Outcome for the whole image.
    ``pools``: the nearest-neighbour style's painting features (nearest.py), drawn
    from the whole painting once; each tile matches its own positions with them."""
    from painterly.optimize import Objective, Outcome, optimize

    pre = encoder.preprocessing
    h, w = content_rgb.shape[-2:]
    overlap = margin = overlap_of(tile)
    image = init_rgb.clone()
    done = torch.zeros(1, 1, h, w, dtype=torch.bool, device=image.device)
    outcomes = []
    layers = tuple(grams)
    # Gram sums of the whole current image, kept up to date as tiles are written back.
    total = gram_sums(encoder, image, layers, tile, style_loss=opts.style_loss)
    for t in tile_grid(h, w, tile, overlap):
        win, box = window(t, h, w, margin)
        seen = Window(encoder, pre.to_input(win.crop(image)), box)
        before = _tile_sums(seen, layers, opts.style_loss)
        rest = {n: (total[n][0] - before[n][0], total[n][1] - before[n][1]) for n in layers}
        objective = Objective(
            seen, win.crop(content_rgb), [], opts, grams=grams, rest=rest, pools=pools
        )
        out = optimize(objective, t.crop(image), opts, **optimize_kwargs)
        # Fade out toward the edges the next tiles will cover (never the image's own).
        fade_bottom, fade_right = overlap * (t.y1 < h), overlap * (t.x1 < w)
        weight = blend_weights(t, done, fade_bottom, fade_right)
        region = t.crop(image)
        region.copy_(region * (1 - weight) + out.rgb * weight)
        t.crop(done).fill_(True)
        after = _tile_sums(
            Window(encoder, pre.to_input(win.crop(image)), box), layers, opts.style_loss
        )
        total = {n: (rest[n][0] + after[n][0], rest[n][1] + after[n][1]) for n in layers}
        outcomes.append(out)
        if out.interrupted:
            break
    finals = [o.final for o in outcomes]
    return Outcome(
        rgb=image,
        steps=sum(o.steps for o in outcomes),
        seconds=sum(o.seconds for o in outcomes),
        history=[{**hh, "tile": i} for i, o in enumerate(outcomes) for hh in o.history],
        final={k: sum(f[k] for f in finals) / len(finals) for k in finals[0]},
        interrupted=outcomes[-1].interrupted,
        stalled=any(o.stalled for o in outcomes),
        precision=outcomes[-1].precision,
        out_of_time=any(o.out_of_time for o in outcomes),
    )
