"""The three losses of neural style transfer, as pure functions.

Two forms of each:

* ``book``: Chollet's *Deep Learning with Python* (1st ed., 8.3), term for term, including
  its quirks (a hard-coded 3 where the paper has the channel count, the *input* image's
  pixel count in the style normaliser, TV raised to the power 1.25 on the preprocessed
  image). The ``chollet`` preset uses these so that it reproduces the book.
* ``relative``: every term divided by the size of its target, so that a weight means the
  same at 256 px and at 4096 px, for pretrained and random encoders alike. Gram matrices
  are averaged over positions (``F F^T / (H W)``, Gatys et al. normalise by layer size in
  the same spirit), and a layer's error is measured relative to the energy of its target,
  which also removes the 100x differences in activation scale between layers.

Every loss is one value per image, shape (N,): a batch is a stack of independent images
(batch.py optimises the sum), never one pooled image.

Nothing here is about the network's weights: what is compared are the *activations* a
fixed network computes for two different images.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

Tensor = torch.Tensor


def _at_least_f32(t: Tensor) -> Tensor:
    """Promote bf16/fp16 to float32; leave float32 and float64 as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _each(t: Tensor) -> Tensor:
    """Sum over all but the batch dimension: (N, ...) -> (N,).

    Summed over the dimensions in place, not via ``flatten(1)``: flattening a
    channels-last feature map copies it (20x slower at 512 px, 5 s of a 55 s run).
    """
    return t.sum(dim=tuple(range(1, t.dim())))


def gram(f: Tensor) -> Tensor:
    """Unnormalised Gram matrix: (N, C, H, W) -> (N, C, C), ``F @ F.T`` per image.

    Accumulating C x C sums over up to millions of positions in bf16 loses the style, so
    the product is always done in at least float32, with autocast switched off (autocast
    would otherwise cast the operands of ``@`` back to bf16). This is where the fast
    paths keep their precision. The gradient is computed by :class:`_Gram`.
    """
    return _Gram.apply(_at_least_f32(f))


class _Gram(torch.autograd.Function):
    """``F F^T`` with a backward that costs one matrix product and keeps ``F``'s layout.

    Autograd's own backward of ``F @ F.T`` makes two products and adds them, one of them
    transposed: at 512 px that add (64 x 196608 floats, strided) took longer than the
    products. As the Gram is symmetric, ``dF = (dG + dG^T) F`` is one product. ``F`` is
    read in its own memory layout (positions-major for channels-last tensors, so no copy),
    and the gradient comes back in that layout, so autograd adds it to the gradient from
    the next layer without converting either.
    """

    @staticmethod
    def forward(ctx, f: Tensor) -> Tensor:
        ctx.save_for_backward(f)
        with torch.autocast(f.device.type, enabled=False):
            if _channels_last(f):
                m = _positions_major(f)  # (N, HW, C), a view
                return m.transpose(1, 2) @ m
            m = f.reshape(f.shape[0], f.shape[1], -1)  # (N, C, HW)
            return m @ m.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (f,) = ctx.saved_tensors
        sym = grad + grad.transpose(1, 2)
        n, c, h, w = f.shape
        with torch.autocast(f.device.type, enabled=False):
            if _channels_last(f):
                d = _positions_major(f) @ sym  # (N, HW, C)
                return d.view(n, h, w, c).permute(0, 3, 1, 2)
            return (sym @ f.reshape(n, c, -1)).view(n, c, h, w)


def _channels_last(f: Tensor) -> bool:
    return f.shape[1] > 1 and f.is_contiguous(memory_format=torch.channels_last)


def _positions_major(f: Tensor) -> Tensor:
    n, c, h, w = f.shape
    return f.permute(0, 2, 3, 1).reshape(n, h * w, c)


def gram_mean(f: Tensor) -> Tensor:
    """Gram matrix averaged over positions: ``F F^T / (H W)``."""
    return gram(f) / (f.shape[-2] * f.shape[-1])


# --- the book's forms ---------------------------------------------------------------


def content_loss_book(gen: Tensor, target: Tensor) -> Tensor:
    """``sum((comb - base)**2)``, no normalisation."""
    return _each((gen - target) ** 2)


def style_loss_book(gen: Tensor, target_gram: Tensor, input_pixels: int) -> Tensor:
    """``sum((S - C)**2) / (4 * 3**2 * size**2)``; ``size`` is the input image's H*W.

    The book hard-codes ``channels = 3`` and uses the input image's size rather than the
    layer's (the paper divides by ``4 N_l**2 M_l**2``); kept here on purpose.
    """
    return _each((target_gram - gram(gen)) ** 2) / (4.0 * 3**2 * input_pixels**2)


def tv_loss_book(x: Tensor) -> Tensor:
    """``sum((a + b)**1.25)`` over neighbour differences of the (preprocessed) image."""
    a = (x[:, :, :-1, :-1] - x[:, :, 1:, :-1]) ** 2
    b = (x[:, :, :-1, :-1] - x[:, :, :-1, 1:]) ** 2
    return _each((a + b) ** 1.25)


# --- relative forms -----------------------------------------------------------------


def energy(t: Tensor) -> Tensor:
    """``sum(t**2)`` per image, kept off zero: what the relative losses divide by."""
    return _each(t**2).clamp_min(1e-12)


def content_loss_relative(
    gen: Tensor, target: Tensor, target_energy: Tensor | None = None
) -> Tensor:
    """``sum((F - P)**2) / sum(P**2)``: 1.0 means an error as large as the target.

    Pass ``target_energy`` (:func:`energy` of the target, which does not change during a
    run) to save recomputing it every step: at 512 px with the offline encoder's
    full-size content layer that was a third of the content loss's time.
    """
    if target_energy is None:
        target_energy = energy(target)
    return _each((_at_least_f32(gen) - target) ** 2) / target_energy


def style_loss_relative(gen: Tensor, target_gram: Tensor) -> Tensor:
    """Squared Gram error relative to the target Gram's energy, per layer."""
    g = gram_mean(gen)
    return _each((g - target_gram) ** 2) / energy(target_gram)


def style_loss_relative_sums(gen: Tensor, rest: tuple[Tensor, int], target_gram: Tensor) -> Tensor:
    """:func:`style_loss_relative` of a whole image of which ``gen`` is one part.

    ``rest`` is (sum of F F^T, number of positions) over the rest of the image, so that
    a tile is pulled toward the target *together with* the rest, not on its own: a tile
    of sky does not have to hold every colour of the painting.
    """
    g_sum, count = rest
    g = (g_sum + gram(gen)) / (count + gen.shape[-2] * gen.shape[-1])
    return _each((g - target_gram) ** 2) / energy(target_gram)


def relaxed_emd(points: Tensor, pool: Tensor) -> Tensor:
    """Relaxed earth mover's distance (Kolkin et al., STROTSS, 2019) between feature
    vectors ``points`` (P, C) and unit-length ``pool`` (M, C), by cosine distance:
    ``max(mean_i min_j C_ij, mean_j min_i C_ij)``, 0 when each set holds the other.

    The matches are found without gradient; the loss is then rebuilt from the matched
    pairs alone, which has the same value and gradient as the min over the whole cost
    matrix at a fraction of the backward's cost (no P x M gradient). The painting
    features matched to each point are summed first (``index_add_``, in a fixed order),
    as the backward of a gather with repeated indices adds in a different order each
    run on a CPU, and a run must repeat bit for bit. In float32 with
    autocast off, like the Gram: close features differ in the last digits of numbers
    near 1.
    """
    with torch.autocast(points.device.type, enabled=False):
        unit = F.normalize(points.float(), dim=1)
        pool = pool.float()
        with torch.no_grad():
            similarity = unit @ pool.t()
            to_pool = similarity.argmax(1)  # each point's nearest painting feature
            to_points = similarity.argmax(0)  # each painting feature's nearest point
            matched = torch.zeros_like(unit).index_add_(0, to_points, pool)
        near_pool = 1 - (unit * pool[to_pool]).sum(1).mean()
        near_points = 1 - (unit * matched).sum() / pool.shape[0]
    return torch.maximum(near_pool, near_points)


def tv_loss_relative(rgb: Tensor) -> Tensor:
    """Mean squared neighbour difference of an RGB image in 0..1.

    A mean rather than a sum, so that pixel-level noise costs the same at any size.
    """
    dy = (rgb[:, :, 1:, :] - rgb[:, :, :-1, :]) ** 2
    dx = (rgb[:, :, :, 1:] - rgb[:, :, :, :-1]) ** 2
    return dy.flatten(1).mean(1) + dx.flatten(1).mean(1)
