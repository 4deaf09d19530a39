"""Colour maps, heat maps and PNG data URIs: the report's pictures, embedded in the page."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Colour maps as anchor colours, interpolated to 256 levels: viridis (perceptually even,
# readable in grey) for values >= 0, and a blue-white-red map for signed differences.
_VIRIDIS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 145, 140),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)
_DIVERGING = ((33, 102, 172), (103, 169, 207), (247, 247, 247), (239, 138, 98), (178, 24, 43))


def _lut(anchors) -> np.ndarray:
    a = np.asarray(anchors, np.float64)
    pos = np.linspace(0, 1, len(a))
    levels = np.linspace(0, 1, 256)
    return np.stack([np.interp(levels, pos, a[:, c]) for c in range(3)], -1).astype(np.uint8)


VIRIDIS, DIVERGING = _lut(_VIRIDIS), _lut(_DIVERGING)


def heatmap(values: np.ndarray, vmin: float, vmax: float, lut: np.ndarray, cell: int = 1):
    """A 2-D array as an RGB image through a colour map, each value a ``cell`` px square."""
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((np.asarray(values, np.float64) - vmin) / span, 0, 1)
    img = Image.fromarray(lut[np.rint(idx * 255).astype(np.int64)])
    if cell > 1:
        img = img.resize((img.width * cell, img.height * cell), Image.Resampling.NEAREST)
    return img


def color_bar(lut: np.ndarray, width: int = 256, height: int = 10) -> Image.Image:
    row = np.linspace(0, 255, width).astype(np.int64)
    return Image.fromarray(np.repeat(lut[row][None], height, 0))


def layer_color(i: int, count: int) -> str:
    """The line colour of layer ``i`` of ``count``: viridis, shallow (dark) to deep."""
    r, g, b = VIRIDIS[int(round(30 + 190 * i / max(count - 1, 1)))]
    return f"#{r:02x}{g:02x}{b:02x}"


def data_uri(img: Image.Image) -> str:
    """A PNG data URI: the picture inside the page, no file next to it."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
