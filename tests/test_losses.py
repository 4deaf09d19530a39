"""The book's losses against a direct NumPy transcription of its formulas (Chollet, 8.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from painterly import losses

RNG = np.random.default_rng(7)


# --- independent NumPy transcription, channels-last like Keras ---------------------


def np_content(base, comb):
    return np.sum((comb - base) ** 2)


def np_gram(x):  # x: (H, W, C)
    f = np.transpose(x, (2, 0, 1)).reshape(x.shape[2], -1)
    return f @ f.T


def np_style(style, comb, img_h, img_w):
    s, c = np_gram(style), np_gram(comb)
    channels = 3
    size = img_h * img_w
    return np.sum((s - c) ** 2) / (4.0 * (channels**2) * (size**2))


def np_tv(x):  # x: (1, H, W, 3)
    h, w = x.shape[1], x.shape[2]
    a = np.square(x[:, : h - 1, : w - 1, :] - x[:, 1:, : w - 1, :])
    b = np.square(x[:, : h - 1, : w - 1, :] - x[:, : h - 1, 1:, :])
    return np.sum(np.power(a + b, 1.25))


def nchw(x_hwc):
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_hwc, -1, -3)))


def rel_err(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


def test_content_loss_matches_numpy():
    base, comb = RNG.normal(size=(2, 5, 7, 16)), RNG.normal(size=(2, 5, 7, 16))
    got = losses.content_loss_book(nchw(comb), nchw(base))  # one value per image
    assert rel_err(got.sum(), np_content(base, comb)) < 1e-5


def test_style_loss_matches_numpy_with_input_pixel_count():
    img_h, img_w = 20, 28  # the input image's size, not the layer's (the book's quirk)
    style, comb = RNG.normal(size=(5, 7, 16)), RNG.normal(size=(5, 7, 16))
    target = losses.gram(nchw(style)[None])
    got = losses.style_loss_book(nchw(comb)[None], target, img_h * img_w)
    assert rel_err(got, np_style(style, comb, img_h, img_w)) < 1e-5


def test_gram_matches_numpy():
    x = RNG.normal(size=(6, 5, 4))
    np.testing.assert_allclose(losses.gram(nchw(x)[None])[0].numpy(), np_gram(x), rtol=1e-10)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "cropped"])
def test_gram_gradient_in_every_memory_layout(layout):
    # losses.gram has its own backward, (dG + dG^T) F in F's layout: it must equal
    # autograd's gradient of the plain formula, and hand back channels-last gradients
    # for channels-last features (so autograd never adds two layouts).
    f = torch.randn(2, 6, 9, 10, dtype=torch.float64)
    if layout == "channels_last":
        f = f.contiguous(memory_format=torch.channels_last)
    if layout == "cropped":  # a tile's features: a strided slice, contiguous in neither
        f = f[..., 1:8, 2:9]
    f.requires_grad_(True)
    weights = torch.randn(2, 6, 6, dtype=torch.float64)
    (grad,) = torch.autograd.grad((losses.gram(f) * weights).sum(), f)
    plain = f.detach().clone().requires_grad_(True)
    flat = plain.flatten(2)
    (expected,) = torch.autograd.grad(((flat @ flat.transpose(1, 2)) * weights).sum(), plain)
    torch.testing.assert_close(grad, expected)
    assert grad.is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
    assert torch.autograd.gradcheck(losses.gram, (f,))


def test_tv_loss_matches_numpy():
    x = RNG.normal(size=(1, 9, 11, 3)) * 30
    got = losses.tv_loss_book(nchw(x))
    assert rel_err(got, np_tv(x)) < 1e-5


def test_float32_agrees_with_float64_reference():
    x = RNG.normal(size=(1, 16, 16, 3)) * 50
    got = losses.tv_loss_book(nchw(x).float())
    assert rel_err(got, np_tv(x)) < 1e-5


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: losses.content_loss_book(a, b),
        lambda a, b: losses.style_loss_book(a, losses.gram(b), 64),
        lambda a, b: losses.tv_loss_book(a) + 0 * b.sum(),
        lambda a, b: losses.content_loss_relative(a, b),
        lambda a, b: losses.style_loss_relative(a, losses.gram_mean(b).double()),
        lambda a, b: losses.tv_loss_relative(a) + 0 * b.sum(),
    ],
    ids=["content", "style", "tv", "content_rel", "style_rel", "tv_rel"],
)
def test_gradcheck(fn):
    a = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 3, 5, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: fn(t, b), (a,), eps=1e-6, atol=1e-5)


def test_properties():
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert losses.tv_loss_book(flat) == 0
    assert losses.tv_loss_relative(flat) == 0
    x = torch.rand(1, 3, 8, 8)
    assert losses.content_loss_relative(x, x) == 0
    assert losses.style_loss_relative(x, losses.gram_mean(x)) < 1e-12
    # Relative losses do not depend on the scale of the activations.
    y = torch.rand(1, 3, 8, 8)
    r1 = losses.style_loss_relative(x, losses.gram_mean(y))
    r2 = losses.style_loss_relative(10 * x, losses.gram_mean(10 * y))
    assert torch.isclose(r1, r2, rtol=1e-4)
    # Gram of a batch equals the Grams of its images stacked.
    batch = torch.rand(3, 4, 5, 5)
    stacked = torch.cat([losses.gram(batch[i : i + 1]) for i in range(3)])
    assert torch.allclose(losses.gram(batch), stacked)


def test_relative_style_is_size_independent_for_a_texture():
    # The same periodic texture at two sizes has the same mean Gram.
    tile = torch.rand(1, 4, 8, 8)
    small, large = tile.repeat(1, 1, 2, 2), tile.repeat(1, 1, 8, 8)
    assert torch.allclose(losses.gram_mean(small), losses.gram_mean(large), rtol=1e-5)
