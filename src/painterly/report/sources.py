"""Where in the painting each part of the result comes from: the explain page's clearest
picture of what the nearest-neighbour style loss asks for.

Every position of the result, at one style layer, is matched with the painting's feature
vector nearest to it by cosine distance (the loss's own measure, nearest.py), over all of
the painting's positions. Three pictures follow: the painting coloured by place (a key),
the result coloured by the place of its match, and the result rebuilt from the
painting's own pixels at the matches (a collage). A result that copies strokes shows
pieces of the painting in the third picture, and :func:`coverage` counts how much of
the painting it has used.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

CHUNK = 2048  # result positions compared with the whole painting at once


@torch.no_grad()
def nearest_places(result: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """For features ``result`` (C, h, w) and ``painting`` (C, H, W): (h, w) indices into
    the painting's H*W positions of each result position's nearest feature."""
    c = result.shape[0]
    a = F.normalize(result.reshape(c, -1).t().float(), dim=1)
    b = F.normalize(painting.reshape(c, -1).t().float(), dim=1)
    found = [(a[i : i + CHUNK] @ b.t()).argmax(1) for i in range(0, a.shape[0], CHUNK)]
    return torch.cat(found).view(result.shape[1:])


def place_key(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: a colour for every place, red across, green down, blue from the
    top-left to the bottom-right corner, so that neighbours look alike."""
    y, x = np.mgrid[0:height, 0:width]
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    rgb = np.stack([u, v, 1 - (u + v) / 2], -1)
    return np.rint(40 + 200 * rgb).astype(np.uint8)


def coverage(places: torch.Tensor, count: int) -> float:
    """Share of the painting's ``count`` places that are some result position's match:
    what the loss's second direction asks to grow (a photo's flat sky, matched with one
    flat patch of the painting, uses few)."""
    return len(torch.unique(places)) / count


def pictures(
    places: torch.Tensor, grid: tuple[int, int], painting: Image.Image, out_size: tuple[int, int]
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """(the painting's place key, the result coloured by its matches' places, the result
    rebuilt from the painting's pixels) for ``places`` on the painting's feature ``grid``
    (H, W); the painting is shown at the size its features were computed at."""
    gh, gw = grid
    key = place_key(gh, gw)
    h, w = places.shape
    flat = places.numpy()
    by_place = Image.fromarray(key.reshape(-1, 3)[flat.reshape(-1)].reshape(h, w, 3))
    px = np.asarray(painting.convert("RGB"))
    sy, sx = px.shape[0] / gh, px.shape[1] / gw  # painting pixels per feature cell
    out_w, out_h = out_size
    ty, tx = out_h / h, out_w / w  # result pixels per feature cell
    yy, xx = np.mgrid[0:out_h, 0:out_w]
    cell_y, cell_x = (
        np.minimum(yy // ty, h - 1).astype(int),
        np.minimum(xx // tx, w - 1).astype(int),
    )
    src = flat[cell_y, cell_x]
    inner_y, inner_x = (yy - cell_y * ty) / ty, (xx - cell_x * tx) / tx  # place in the cell
    py = np.clip(((src // gw) + inner_y) * sy, 0, px.shape[0] - 1).astype(int)
    pxx = np.clip(((src % gw) + inner_x) * sx, 0, px.shape[1] - 1).astype(int)
    collage = Image.fromarray(px[py, pxx])
    key_img = Image.fromarray(key).resize((px.shape[1], px.shape[0]), Image.Resampling.NEAREST)
    shown = Image.blend(painting.convert("RGB"), key_img, 0.6)
    return shown, by_place.resize(out_size, Image.Resampling.NEAREST), collage
