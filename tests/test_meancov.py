"""The mean-and-covariance style loss (``--style-loss meancov``): the 2-Wasserstein
distance against a NumPy transcription, its statistics under sums, masks and blends,
and every path it runs on (blends, masks, batches: test_nearest.py, for both)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import blob, stripes

import painterly
from painterly import losses, masks
from painterly.image import to_tensor

RNG = np.random.default_rng(5)


def np_w2(a: np.ndarray, b: np.ndarray) -> float:
    """W2^2 between the Gaussians fitted to point sets a and b (P, C), by the textbook
    formula with SciPy-free matrix square roots, relative to b's second moment."""

    def sqrtm(m):
        vals, vecs = np.linalg.eigh(m)
        return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T

    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    rb = sqrtm(cb)
    cross = np.trace(sqrtm(rb @ ca @ rb))
    dist = np.sum((ma - mb) ** 2) + np.trace(ca) + np.trace(cb) - 2 * cross
    return float(dist / (np.sum(mb**2) + np.trace(cb)))


def features(c=6, h=5, w=7, shift=0.0):
    return torch.from_numpy(RNG.normal(shift, 1.0, (1, c, h, w)))


def stats(f, kind="meancov"):
    return losses.style_sums(f, kind) / (f.shape[-2] * f.shape[-1])


def points(f):
    return f[0].reshape(f.shape[1], -1).T.numpy()


def test_matches_numpy():
    a, b = features(), features(shift=0.5) * 2
    got = float(losses.meancov_distance(stats(a), stats(b)))
    assert got == pytest.approx(np_w2(points(a), points(b)), rel=1e-6)


def test_zero_for_the_same_statistics_and_positive_otherwise():
    a = features()
    assert abs(float(losses.meancov_distance(stats(a), stats(a)))) < 1e-9
    assert float(losses.meancov_distance(stats(a), stats(features()))) > 0.01


def test_a_mean_shift_alone_costs_its_square():
    """Two point sets that differ by a constant offset: the covariances agree, so the
    distance is the offset's squared length (the Gram loss has no such reading)."""
    a = features()
    b = a + torch.arange(6.0, dtype=a.dtype)[None, :, None, None]
    _, cov_b = losses.mean_and_covariance(stats(b))
    scale = float((stats(b)[0, :6, 6] ** 2).sum() + torch.diagonal(cov_b[0]).sum())
    got = float(losses.meancov_distance(stats(a), stats(b))) * scale
    assert got == pytest.approx(float((torch.arange(6.0) ** 2).sum()), rel=1e-6)


def test_the_statistics_add_over_parts_of_an_image():
    """What tiles rely on: the sums of two halves are the sums of the whole."""
    f = features(w=8)
    parts = losses.style_sums(f[..., :3], "meancov") + losses.style_sums(f[..., 3:], "meancov")
    assert torch.allclose(parts, losses.style_sums(f, "meancov"))


def test_a_full_mask_gives_the_whole_images_statistics():
    f = features()
    full = torch.ones(1, 1, 5, 7, dtype=f.dtype)
    assert torch.allclose(masks.masked_gram(f, full, "meancov"), stats(f))
    half = full.clone()
    half[..., 4:] = 0
    assert torch.allclose(masks.masked_gram(f, half, "meancov"), stats(f[..., :4]))


def test_the_gradient_is_finite_and_descends():
    """Low-rank covariances (more channels than positions) have zero eigenvalues, where
    the square root's slope is infinite: the gradient must stay finite."""
    target = stats(features(c=12, h=3, w=3, shift=1.0))
    x = features(c=12, h=3, w=3).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = losses.meancov_distance(stats(x), target).sum()
        loss.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        first = first if first is not None else float(loss.detach())
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def small(**kw):
    opts = dict(weights="offline", size=48, steps=30, style_loss="meancov")
    return painterly.run(blob(), stripes(), **{**opts, **kw})


@pytest.mark.parametrize(
    "extra",
    [dict(), dict(tile=64, size=96), dict(optimizer="adam"), dict(precision="bf16")],
    ids=["whole", "tiles", "adam", "bf16"],
)
def test_every_path_runs_and_moves_the_image(extra):
    result = small(**extra)
    out = to_tensor(result.image)
    assert torch.isfinite(out).all()
    photo = to_tensor(blob().resize(result.image.size))
    assert (out - photo).abs().mean() > 0.01
    assert off_palette(out) < 0.9 * off_palette(photo)  # toward the painting's colours


def off_palette(rgb: torch.Tensor) -> float:
    """Mean distance of each pixel's colour to the nearer of the stripes' two colours."""
    colors = torch.tensor([[220, 40, 30], [30, 60, 200]]) / 255
    return float(torch.cdist(rgb[0].flatten(1).t(), colors).min(1).values.mean())
