"""Painting photos with a fast model: one forward pass, in tiles when the photo is large.

The network is fully convolutional, so any size works in one pass if memory allows.
Beyond the budget (``max_memory``, or ``tile``) the photo is cut into overlapping tiles,
each painted on its own and blended back (tiling.map_tiles: linear ramps over the
overlaps, every pixel a weighted mean of the tiles covering it).

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
from painterly.fast.config import ApplyConfig
from painterly.fast.network import TransformerNet
from painterly.image import to_image, to_tensor
from painterly.settings import parse_bytes
from painterly.tiling import largest_tile, map_tiles

Tensor = torch.Tensor


def pass_bytes(width: int, pixels: int) -> int:
    """Estimated peak bytes of a forward pass over ``pixels`` with a network of ``width``:
    about six full-size maps of ``width`` channels live at once on the way up (the
    resized input, its padded copy, the convolution's output and normalisation), fp32."""
    return 4 * pixels * (6 * width + 16)


def choose_tile(width: int, size: tuple[int, int], budget: int, tile: int = 0) -> int:
    """0 (one pass) or the tile side for a photo of ``size`` (w, h): ``tile`` if given
    and the photo is larger, else the largest multiple of 16 whose pass fits ``budget``."""
    if tile:
        return tile if max(size) > tile else 0
    if pass_bytes(width, size[0] * size[1]) <= budget:
        return 0
    side = largest_tile(lambda side: pass_bytes(width, side * side), max(size), budget, 64)
    if not side:
        need = pass_bytes(width, 64 * 64) / 2**20
        raise OptionsError(
            f"not enough memory: a 64 px tile needs about {need:.0f} MB; raise --max-memory"
        )
    return side


@torch.no_grad()
def paint_tensor(net: TransformerNet, rgb: Tensor, tile: int = 0) -> Tensor:
    """(1, 3, H, W) in 0..1 -> the painted photo, in one pass or in ``tile`` px tiles."""
    return map_tiles(net, rgb, tile) if tile else net(rgb)


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

    ApplyConfig(tile=tile, max_memory=max_memory, preserve_color=preserve_color)  # checks
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
