"""Artistic controls that are not about colour or masks: strength, per-layer weights,
style folders and blend weights."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import torch
from PIL import Image

from painterly.config import check_weight
from painterly.errors import OptionsError
from painterly.files import images_in
from painterly.image import load_image


def style_factor(strength: float) -> float:
    """What ``--strength`` multiplies the style weight by: ``(10**(4 s) - 1) / 99``.

    0 -> 0 (no style: the photo comes back), 0.5 -> exactly 1 (the preset's balance),
    1 -> about 101. Each step of 0.25 changes the style/content ratio about tenfold, which
    is how the look changes (a linear knob would do all its work near 0). The content
    weight is left alone, so it is the balance that moves, not the pixels that are blended.
    """
    return (10 ** (4 * strength) - 1) / 99


def layer_mean(per_layer: Mapping[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Style loss over layers: the plain mean (the book's 1/L each), or the mean weighted
    by ``--style-layer-weights`` (normalised, so --style-weight keeps its meaning)."""
    # With no layer this raises (0 / 0, or zip's strict check); with one, each sum is a
    # tensor, not sum()'s start (0).
    if not weights:
        return cast(torch.Tensor, sum(per_layer.values()) / len(per_layer))
    weighted = sum(w * v for w, v in zip(weights, per_layer.values(), strict=True))
    return cast(torch.Tensor, weighted / sum(weights))


def style_folder(path: Path) -> list[Image.Image]:
    """Every image in ``path`` (sorted by name, not recursive), for one style."""
    files = images_in(path)
    if not files:
        raise OptionsError(
            f"style folder {path} has no images; put .png/.jpg/.webp/.tif files in it"
        )
    return [load_image(p) for p in files]


def expand_styles(
    items: Sequence[tuple[str | os.PathLike | Image.Image, float]], blend: Sequence[float]
) -> tuple[list[tuple[Image.Image, float]], list[int]]:
    """Flatten (image-or-path-or-folder, weight) pairs into (image, weight) pairs.

    A folder is one style: its images share its weight equally. ``blend`` (from
    --style-blend) replaces the weights, one per style as given. Returns the pairs and,
    for each, the index of the style it came from (the masks refer to these indices).
    """
    if blend:
        if len(blend) != len(items):
            raise OptionsError(
                f"--style-blend has {len(blend)} weights for {len(items)} styles; give one each"
            )
        items = [(img, w) for (img, _), w in zip(items, blend, strict=True)]
    out: list[tuple[Image.Image, float]] = []
    groups: list[int] = []
    for index, (item, weight) in enumerate(items):
        weight = check_weight(weight)
        if isinstance(item, Image.Image):
            images = [item.convert("RGB")]
        elif os.path.isdir(item):
            images = style_folder(Path(item))
        else:
            images = [load_image(item)]
        out += [(img, float(weight) / len(images)) for img in images]
        groups += [index] * len(images)
    if not out or sum(w for _, w in out) <= 0:
        raise OptionsError("at least one style image with a weight above 0 is needed")
    return out, groups


def prepare(
    content: Image.Image,
    style_items: Sequence[tuple[str | os.PathLike | Image.Image, float]],
    opts,
):
    """Everything the artistic controls do before the optimiser starts.

    Returns the content and (image, weight) styles as the optimiser should see them, the
    masks (a :class:`masks.Guide` or None) and ``finish``, which turns the optimiser's
    result (1, 3, H, W) into the output: colours put back, protected regions copied.
    """
    from painterly import color, masks
    from painterly.image import resize, to_tensor

    styles, groups = expand_styles(style_items, opts.style_blend)
    guide = masks.load_guide(opts.mask, opts.mask_styles, opts.protect, content, groups)
    photo = content
    content, styles, recolor = color.prepare(content, styles, opts.preserve_color, opts.color_only)
    if guide is None or guide.protect is None:
        return content, styles, guide, recolor

    def finish(rgb: torch.Tensor) -> torch.Tensor:
        size = (rgb.shape[-1], rgb.shape[-2])
        keep = guide.protect_at(size).to(rgb.device)
        original = to_tensor(resize(photo, size)).to(rgb.device)
        return keep * original + (1 - keep) * recolor(rgb)

    return content, styles, guide, finish
