"""Colour controls: keep the photo's colours, or take only the painting's.

Gatys, Bethge, Hertzmann and Shechtman, "Preserving Color in Neural Artistic Style
Transfer" (2016) give two ways to keep the photo's colours:

* ``luminance``: transfer the style on luminance only, then put the photo's chroma back.
  We use **YIQ**, as the paper does. Its Y is BT.601 luma, the same Y as JPEG's YCbCr; I
  and Q are a rotation of Cb and Cr, so for copying the chroma plane whole the two spaces
  are equivalent, and YIQ keeps us comparable with the paper. Like the paper (and JPEG)
  we work on gamma-encoded sRGB values, not linear light: luma there follows perceived
  lightness more closely, which is what the style's brushwork lives in.
* ``histogram``: before the transfer, move the style image's colours onto the photo's by
  matching their mean and covariance (the paper's linear "colour histogram matching",
  with the symmetric matrix square root), so the style brings texture but not palette.

``color_only`` is the converse of ``luminance``: the transfer runs as usual and the
photo's luminance is put back under the result's chroma, so the painting's palette lands
on the photo's light and shade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from PIL import Image

from painterly.image import resize, to_image, to_tensor

Tensor = torch.Tensor

# RGB -> YIQ (FCC NTSC). Rows: Y, I, Q.
_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_RGB = torch.linalg.inv(_YIQ)


def rgb_to_yiq(rgb: Tensor) -> Tensor:
    """(N, 3, H, W) RGB in 0..1 -> YIQ (Y in 0..1, I and Q around 0)."""
    return torch.einsum("ij,njhw->nihw", _YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", _RGB.to(yiq), yiq)


def luminance_image(rgb: Tensor) -> Tensor:
    """The Y channel repeated three times: a grey RGB image the encoder can read."""
    return rgb_to_yiq(rgb)[:, :1].expand(-1, 3, -1, -1).clamp(0, 1)


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """Grey style whose luminance has the photo's mean and standard deviation (the paper's
    luminance matching: without it a dark painting would darken the photo)."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    y = (ys - ys.mean()) * (yc.std() / ys.std().clamp_min(1e-6)) + yc.mean()
    return y.expand(-1, 3, -1, -1).clamp(0, 1)


def combine(luma_from: Tensor, chroma_from: Tensor) -> Tensor:
    """RGB with the Y of ``luma_from`` and the I, Q of ``chroma_from`` (same size)."""
    yiq = torch.cat([rgb_to_yiq(luma_from)[:, :1], rgb_to_yiq(chroma_from)[:, 1:]], 1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _sqrtm(cov: Tensor, inverse: bool = False) -> Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8)
    vals = vals.rsqrt() if inverse else vals.sqrt()
    return vecs @ torch.diag(vals) @ vecs.T


def match_colors(source: Tensor, target: Tensor) -> Tensor:
    """``source`` with its RGB mean and covariance moved onto ``target``'s.

    x' = C_t^(1/2) C_s^(-1/2) (x - mu_s) + mu_t, in float64 so a flat image's near-singular
    covariance does not blow up (a small floor on the eigenvalues does the rest).
    """
    s = source[0].reshape(3, -1).double()
    t = target[0].reshape(3, -1).double()
    mu_s, mu_t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    eye = 1e-5 * torch.eye(3, dtype=torch.float64)
    a = _sqrtm(torch.cov(t) + eye) @ _sqrtm(torch.cov(s) + eye, inverse=True)
    out = (a @ (s - mu_s) + mu_t).clamp(0, 1)
    return out.reshape(source.shape).to(source.dtype)


def _pil(fn, *images: Image.Image) -> Image.Image:
    return to_image(fn(*(to_tensor(i) for i in images)))


def prepare(
    content: Image.Image, styles: list[tuple[Image.Image, float]], preserve: str, color_only: bool
) -> tuple[Image.Image, list[tuple[Image.Image, float]], Callable[[Tensor], Tensor]]:
    """Content and styles as the optimiser should see them, and the step that turns its
    result (an (1, 3, H, W) tensor) into the output."""
    photo = content

    def photo_at(rgb: Tensor) -> Tensor:
        return to_tensor(resize(photo, (rgb.shape[-1], rgb.shape[-2]))).to(rgb.device)

    finish: Callable[[Tensor], Tensor] = lambda rgb: rgb  # noqa: E731
    if preserve == "histogram":
        styles = [(_pil(match_colors, s, content), w) for s, w in styles]
    elif preserve == "luminance":
        styles = [(_pil(match_luminance, s, content), w) for s, w in styles]
        content = _pil(luminance_image, content)

        def finish(rgb: Tensor) -> Tensor:  # the result's luminance, the photo's chroma
            return combine(rgb, photo_at(rgb))

    if color_only:
        inner = finish

        def finish(rgb: Tensor) -> Tensor:  # the photo's luminance, the result's chroma
            return combine(photo_at(rgb), inner(rgb))

    return content, styles, finish


def style_color_noise(shape: torch.Size, styles: list[tuple[Tensor, float]], seed: int) -> Tensor:
    """Gaussian noise with the styles' weighted per-channel mean and standard deviation."""
    total = sum(w for _, w in styles)
    # With no style, 0 / 0 raises; with one, each sum is a tensor, not sum()'s start (0).
    mean = cast(Tensor, sum(w * s.mean((0, 2, 3)) for s, w in styles) / total)
    std = cast(Tensor, sum(w * s.std((0, 2, 3)) for s, w in styles) / total)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=gen).to(mean.device)
    return (noise * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)).clamp(0, 1)
