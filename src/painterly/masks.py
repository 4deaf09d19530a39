"""Spatial control: a different style in each region of a mask, and protected regions.

The mask is an image drawn over the photo; ``--mask-styles "#ff0000=0,#0000ff=1"`` says
which style each colour gets (the number is the style's position on the command line; a
folder counts as one style). ``--protect`` is a grey image whose white keeps the photo.

Region k's style loss compares a *guided* Gram matrix of the generated image, the
features weighted by the region's mask, with the Gram of style k (Gatys, Ecker, Bethge,
Hertzmann and Shechtman, "Controlling Perceptual Factors in Neural Style Transfer",
2017). Masks are resized with the image at every scale and then to each layer's
resolution by area averaging, and their edges are feathered so regions blend instead of
meeting at a seam. Protected pixels get no style loss and are copied from the photo at the
end (through the same soft edge).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from painterly.errors import OptionsError
from painterly.image import fit_size, load_image, resize, to_tensor
from painterly.losses import compare_statistics, style_sums

Tensor = torch.Tensor

FEATHER = 0.02  # sigma of the soft edge, as a fraction of the image's long side
_FAR = 100.0  # RGB distance beyond which a mask pixel matches no mapped colour
_STRAY = 0.01  # fraction of such pixels tolerated (anti-aliasing, JPEG noise)
_LABEL_SIDE = 2048  # masks are labelled at most this large


def parse_mapping(text: str, n_styles: int) -> dict[tuple[int, int, int], int]:
    """``"#ff0000=0,#00f=1"`` -> {(255, 0, 0): 0, (0, 0, 255): 1}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        colour, sep, index = part.partition("=")
        hexes = colour.strip().lstrip("#")
        if len(hexes) == 3:
            hexes = "".join(c * 2 for c in hexes)
        try:
            r, g, b = (int(hexes[i : i + 2], 16) for i in (0, 2, 4))
            k = int(index)
            if not sep or len(hexes) != 6:
                raise ValueError
        except ValueError:
            raise OptionsError(
                f"--mask-styles entry '{part}' should look like #ff0000=0 (colour=style index)"
            ) from None
        if not 0 <= k < n_styles:
            raise OptionsError(
                f"--mask-styles maps {colour} to style {k}, but there are {n_styles} styles "
                f"(0 to {n_styles - 1})"
            )
        mapping[(r, g, b)] = k
    if not mapping:
        raise OptionsError("--mask needs --mask-styles, e.g. '#ff0000=0,#0000ff=1'")
    return mapping


def _check_aspect(what: str, path, mask: Image.Image, content: Image.Image) -> None:
    ratio_m, ratio_c = mask.width / mask.height, content.width / content.height
    if abs(ratio_m / ratio_c - 1) > 0.02:
        raise OptionsError(
            f"{what} {path} is {mask.width}x{mask.height} but the photo is "
            f"{content.width}x{content.height}; draw the mask at the photo's aspect ratio"
        )


def label_mask(img: Image.Image, mapping: dict[tuple[int, int, int], int], path) -> np.ndarray:
    """Each pixel's style index, by the nearest mapped colour; OptionsError if more than a
    sliver of the mask has colours that are far from all of them."""
    if max(img.size) > _LABEL_SIDE:  # labels are area-averaged to the output size later
        img = img.resize(fit_size(*img.size, _LABEL_SIDE), Image.Resampling.NEAREST)
    rgb = np.asarray(img.convert("RGB"), np.float32)
    dist = np.stack([np.linalg.norm(rgb - np.asarray(c, np.float32), axis=-1) for c in mapping], -1)
    nearest = dist.argmin(-1)
    stray = dist.min(-1) > _FAR
    if stray.mean() > _STRAY:
        r, g, b = (int(v) for v in rgb[stray][0])
        raise OptionsError(
            f"mask {path} has colours that --mask-styles does not map ({stray.mean():.0%} of "
            f"it, e.g. #{r:02x}{g:02x}{b:02x}); add them to --mask-styles"
        )
    return np.array(list(mapping.values()))[nearest]


def _feather(m: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (K, 1, H, W) masks, edges replicated."""
    if sigma < 0.5:
        return m
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=m.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    m = F.conv2d(F.pad(m, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(m, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


@dataclass
class Guide:
    """The masks of one run, at the mask's own resolution; ``at`` sizes them per scale."""

    labels: np.ndarray | None  # (H, W) style index per pixel, or None: one region
    n_styles: int
    groups: list[int]  # for each style image, the style it belongs to
    protect: Image.Image | None

    def regions(self, size: tuple[int, int], device) -> Tensor:
        """(n_styles, 1, h, w) soft masks at ``size`` (w, h), summing to 1 minus protect."""
        w, h = size
        if self.labels is None:
            m = torch.ones(1, 1, h, w)
        else:
            onehot = torch.from_numpy(
                (self.labels[None] == np.arange(self.n_styles)[:, None, None]).astype(np.float32)
            )[:, None]
            m = F.interpolate(onehot, size=(h, w), mode="area")
            m = _feather(m, FEATHER * max(w, h))
            m = m / m.sum(0, keepdim=True).clamp_min(1e-6)
        return (m * (1 - self.protect_at(size))).to(device)

    def protect_at(self, size: tuple[int, int]) -> Tensor:
        w, h = size
        if self.protect is None:
            return torch.zeros(1, 1, h, w)
        p = to_tensor(resize(self.protect, size))[:, :1]
        return _feather(p, FEATHER * max(w, h) / 2).clamp(0, 1)


def load_guide(
    mask: str | os.PathLike | None,
    mask_styles: str | None,
    protect: str | os.PathLike | None,
    content: Image.Image,
    groups: list[int],
) -> Guide | None:
    """The run's masks, checked against the photo, or None when there are none."""
    if mask is None and protect is None:
        if mask_styles:
            raise OptionsError("--mask-styles needs --mask MASK.png")
        return None
    n_styles = max(groups) + 1
    labels = None
    if mask is not None:
        img = load_image(mask)
        _check_aspect("mask", mask, img, content)
        labels = label_mask(img, parse_mapping(mask_styles or "", n_styles), mask)
    prot = None
    if protect is not None:
        prot = load_image(protect).convert("L").convert("RGB")
        _check_aspect("protect mask", protect, prot, content)
    return Guide(labels, n_styles if labels is not None else 1, groups, prot)


def masked_gram(f: Tensor, m: Tensor, style_loss: str = "gram") -> Tensor:
    """Gram of features ``f`` (1, C, H, W) weighted by mask ``m`` (1, 1, H, W): the mean of
    f f^T over the region (weights m^2), comparable with :func:`losses.gram_mean`. (For
    ``style_loss`` meancov, the statistics of :func:`losses.style_sums` over the region.)"""
    return style_sums(f * m, style_loss, weight=m) / (m**2).sum().clamp_min(1e-8)


def masked_style_loss(
    f: Tensor, targets: list[Tensor], masks: list[Tensor], style_loss: str = "gram"
) -> Tensor:
    """Relative Gram error of each region against its own style's Gram, weighted by the
    region's area (so a sliver does not count as much as the sky)."""
    areas = [m.mean() for m in masks]
    errs = [
        compare_statistics(masked_gram(f, m, style_loss), t, style_loss).sum()
        for t, m in zip(targets, masks, strict=True)
    ]
    # MaskedStyle refuses to run with no region, so there is a mask: the sum is a tensor.
    total_area = cast(Tensor, sum(areas))
    return sum(a * e for a, e in zip(areas, errs, strict=True)) / total_area.clamp_min(1e-8)


def layer_masks(regions: Tensor, shape: torch.Size) -> Tensor:
    """``regions`` (K, 1, H, W) area-averaged to a layer's (h, w)."""
    return F.interpolate(regions, size=tuple(shape[-2:]), mode="area")


class MaskedStyle:
    """Per-region style targets and layer masks for one scale; called with the generated
    image's features, returns the style loss of each layer."""

    def __init__(
        self,
        guide: Guide,
        content_rgb: Tensor,
        feats: dict[str, Tensor],
        styles,
        blend_grams,
        style_loss: str = "gram",
    ):
        self.style_loss = style_loss
        regions = guide.regions((content_rgb.shape[-1], content_rgb.shape[-2]), "cpu")
        self.targets: list[dict[str, Tensor]] = []
        self.members: list[list] = []  # each kept region's (style, weight) pairs
        kept = []
        for k in range(regions.shape[0]):
            members = [s for s, g in zip(styles, guide.groups, strict=True) if g == k]
            if guide.labels is None:  # protect only: one region with every style blended
                members = list(styles)
            if regions[k].sum() > 0 and sum(w for _, w in members) > 0:
                self.targets.append(blend_grams(members))
                self.members.append(members)
                kept.append(k)
        if not kept:
            raise OptionsError("the masks leave no region to stylise; paint less white")
        device = next(iter(feats.values())).device
        self.masks = {
            n: layer_masks(regions[kept], f.shape).to(device, f.dtype) for n, f in feats.items()
        }

    def __call__(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return {
            n: masked_style_loss(
                f, [t[n] for t in self.targets], [m[None] for m in self.masks[n]], self.style_loss
            )
            for n, f in feats.items()
            if n in self.masks
        }
