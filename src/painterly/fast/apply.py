"""Painting photos with a fast model: one forward pass, in tiles when the photo is large.

The network is fully convolutional, so any size works in one pass if memory allows.
Beyond the budget (``max_memory``, or ``tile``) the photo is cut into overlapping tiles
(tiling.tile_grid spreads them evenly), each painted on its own and blended back with
linear ramps over the overlaps (feathering), weights normalised so that every pixel is
a weighted mean of the tiles covering it.

Tiles are not free of seams in principle: instance normalisation uses each tile's own
statistics, so a tile of sky and a tile of trees are normalised differently. Wide
overlaps (a quarter of the tile) and the ramps hide that in practice; the default tile
is as large as the budget allows, so most photos need none.
"""

from __future__ import annotations

import torch
from PIL import Image

from painterly import color
from painterly.errors import OptionsError
from painterly.fast.network import TransformerNet
from painterly.image import to_image, to_tensor
from painterly.settings import parse_bytes
from painterly.tiling import ALIGN, Tile, tile_grid

Tensor = torch.Tensor
PRESERVE = ("none", "luminance", "histogram")


def pass_bytes(width: int, pixels: int) -> int:
    """Estimated peak bytes of a forward pass over ``pixels`` with a network of ``width``:
    about six full-size maps of ``width`` channels live at once on the way up (the
    resized input, its padded copy, the convolution's output and normalisation), fp32."""
    return 4 * pixels * (6 * width + 16)


def overlap_of(tile: int) -> int:
    return max(2 * ALIGN, tile // 4 // ALIGN * ALIGN)


def choose_tile(width: int, size: tuple[int, int], budget: int, tile: int = 0) -> int:
    """0 (one pass) or the tile side for a photo of ``size`` (w, h): ``tile`` if given
    and the photo is larger, else the largest multiple of 16 whose pass fits ``budget``."""
    if tile:
        return tile if max(size) > tile else 0
    if pass_bytes(width, size[0] * size[1]) <= budget:
        return 0
    side = int((budget / pass_bytes(width, 1)) ** 0.5) // ALIGN * ALIGN
    if side < 64:
        need = pass_bytes(width, 64 * 64) / 2**20
        raise OptionsError(
            f"not enough memory: a 64 px tile needs about {need:.0f} MB; raise --max-memory"
        )
    return side


def _ramp(n: int, device) -> Tensor:
    """``n`` weights rising strictly between 0 and 1."""
    return torch.linspace(0, 1, n + 2, device=device)[1:-1]


def feather(t: Tile, height: int, width: int, overlap: int, device) -> Tensor:
    """(1, 1, h, w) weights of tile ``t``: 1 inside, ramping down over ``overlap`` px at
    each side that another tile shares (not at the photo's own edges)."""
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


@torch.no_grad()
def paint_tensor(net: TransformerNet, rgb: Tensor, tile: int = 0) -> Tensor:
    """(1, 3, H, W) in 0..1 -> the painted photo, in one pass or in ``tile`` px tiles."""
    if not tile:
        return net(rgb)
    height, width = rgb.shape[-2:]
    overlap = overlap_of(tile)
    total = torch.zeros_like(rgb)
    weight = torch.zeros_like(rgb[:, :1])
    for t in tile_grid(height, width, tile, overlap):
        w = feather(t, height, width, overlap, rgb.device)
        total[..., t.y0 : t.y1, t.x0 : t.x1] += w * net(t.crop(rgb))
        weight[..., t.y0 : t.y1, t.x0 : t.x1] += w
    return total / weight


def paint(
    net: TransformerNet,
    photo: Image.Image,
    *,
    device: torch.device | str = "cpu",
    tile: int = 0,
    max_memory: str = "auto",
    preserve_color: str = "none",
) -> Image.Image:
    """``photo`` painted by ``net``. ``preserve_color``: ``luminance`` keeps the photo's
    colours under the painted light and shade, ``histogram`` moves the result's colours
    onto the photo's (as in ``stylize``, painterly.color), ``none`` leaves them."""
    from painterly.memory import available_bytes

    if preserve_color not in PRESERVE:
        raise OptionsError(f"--preserve-color must be one of {', '.join(PRESERVE)}")
    device = torch.device(device)
    budget = parse_bytes(max_memory) or available_bytes(device)
    side = choose_tile(net.width, photo.size, budget, tile)
    rgb = to_tensor(photo).to(device)
    out = paint_tensor(net.to(device), rgb, side).clamp(0, 1)
    if preserve_color == "luminance":
        out = color.combine(out, rgb)
    elif preserve_color == "histogram":
        out = color.match_colors(out, rgb)
    return to_image(out)


def paint_with_model(name: str, rgb: Tensor) -> Tensor:
    """``rgb`` (1, 3, H, W) painted by the model ``name`` (a file, or a name in
    ``painterly models``): where ``stylize --init model:NAME`` starts."""
    from painterly.fast.model_file import load_model, resolve_model_path

    net, _ = load_model(resolve_model_path(name))
    return paint_tensor(net.to(rgb.device), rgb).clamp(0, 1)
