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

import weakref

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


def style_loss_relative(gen: Tensor, target: Tensor, kind: str = "gram") -> Tensor:
    """The style error of features ``gen`` against their target statistics (see
    :func:`style_sums`), relative to the target's size, per layer."""
    return compare_statistics(style_statistics(gen, kind), target, kind)


def style_loss_relative_sums(
    gen: Tensor, rest: tuple[Tensor, int], target: Tensor, kind: str = "gram"
) -> Tensor:
    """:func:`style_loss_relative` of a whole image of which ``gen`` is one part.

    ``rest`` is (the sums of :func:`style_sums`, number of positions) over the rest of
    the image, so that a tile is pulled toward the target *together with* the rest, not
    on its own: a tile of sky does not have to hold every colour of the painting.
    """
    sums, count = rest
    stats = (sums + style_sums(gen, kind)) / (count + _positions(gen))
    return compare_statistics(stats, target, kind)


def _positions(f: Tensor) -> int:
    return f.shape[-2] * f.shape[-1]


# --- style statistics: what a style loss compares -----------------------------------------


def style_sums(f: Tensor, kind: str = "gram", weight: Tensor | None = None) -> Tensor:
    """The statistics a style loss compares, summed over positions, (N, C, C) or more.

    ``gram`` and ``nearest``: ``F F^T``. ``meancov``: the same with a constant channel of
    ones beside the features, ``[[F F^T, F 1], [1^T F^T, n]]`` (N, C+1, C+1), which holds
    the features' sum and count too, so that the mean and covariance can be recovered
    after any sum or blend of these (tiles, regions, several paintings). ``weight`` (N, 1,
    H, W) is the ones channel of a masked region; ``f`` is then already weighted by it.
    Divided by the positions (the corner for ``meancov``), they are averages.
    """
    g = gram(f)
    if kind != "meancov":
        return g
    f32 = _at_least_f32(f)
    if weight is None:
        s = f32.sum(dim=(2, 3))
        count = torch.full_like(s[:, :1], float(_positions(f)))
    else:
        w = weight.to(f32.dtype)
        s = (f32 * w).sum(dim=(2, 3))
        count = (w**2).sum(dim=(2, 3))
    top = torch.cat([g, s[:, :, None]], dim=2)
    bottom = torch.cat([s, count], dim=1)[:, None, :]
    return torch.cat([top, bottom], dim=1)


def style_statistics(f: Tensor, kind: str = "gram") -> Tensor:
    """:func:`style_sums` averaged over positions: what a style target holds (for
    ``gram``, :func:`gram_mean`)."""
    return style_sums(f, kind) / _positions(f)


def compare_statistics(stats: Tensor, target: Tensor, kind: str) -> Tensor:
    """The relative style error of position-averaged statistics ``stats`` against
    ``target`` (both from :func:`style_sums`, divided by positions), per image."""
    if kind == "meancov":
        return meancov_distance(stats, target)
    return _each((stats - target) ** 2) / energy(target)


def mean_and_covariance(stats: Tensor) -> tuple[Tensor, Tensor]:
    """The mean (N, C) and covariance (N, C, C) held in averaged ``meancov`` statistics."""
    c = stats.shape[-1] - 1
    mean = stats[:, :c, c] / stats[:, c, c, None]
    second = stats[:, :c, :c] / stats[:, c, c, None, None]
    return mean, second - mean[:, :, None] * mean[:, None, :]


def meancov_distance(stats: Tensor, target: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance between the Gaussians with the features' mean and
    covariance and the target's, relative to the target's second moment:

        ( |m - m_t|^2 + tr(S) + tr(S_t) - 2 tr( (R S R)^(1/2) ) ) / ( |m_t|^2 + tr(S_t) )

    with ``R = S_t^(1/2)``. 1.0 is an error as large as the target itself. Where the Gram
    loss weighs every channel pair's co-firing alike, this is the optimal-transport
    distance of the two feature distributions (as far as two moments tell): a shift along
    a direction the painting hardly varies in costs as much as it moves the features.

    ``tr((R S R)^(1/2))`` is the sum of the square roots of the eigenvalues of the
    symmetric ``R S R``, and only eigenvalues are taken (no eigenvectors), whose gradient
    is stable when eigenvalues repeat. Done in float64 with autocast off: the eigenvalues
    of a covariance span many orders of magnitude.
    """
    with torch.autocast(stats.device.type, enabled=False):
        mean, cov = mean_and_covariance(stats.double())
        t_mean, t_cov, root, scale = _prepared(target)
        inner = root @ cov @ root
        eig = torch.linalg.eigvalsh((inner + inner.transpose(1, 2)) / 2)
        floor = 1e-12 * scale[:, None]
        cross = eig.clamp_min(floor).sqrt().sum(1)
        dist = ((mean - t_mean) ** 2).sum(1) + _trace(cov) + _trace(t_cov) - 2 * cross
        return (dist / scale.clamp_min(1e-12)).to(torch.promote_types(stats.dtype, torch.float32))


# A run's targets do not change; their square roots (an eigendecomposition each, a
# quarter of the loss's time) are kept while the target tensor lives, by its id (a
# WeakKeyDictionary would compare tensors with ``==``).
_PREPARED: dict[int, tuple[int, tuple[Tensor, ...]]] = {}


@torch.no_grad()
def _prepared(target: Tensor) -> tuple[Tensor, ...]:
    """The target's mean, covariance, covariance's square root and second moment."""
    kept = _PREPARED.get(id(target))
    if kept is not None and kept[0] == target._version:
        return kept[1]
    t_mean, t_cov = mean_and_covariance(target.double())
    prepared = (t_mean, t_cov, _sqrtm(t_cov), (t_mean**2).sum(1) + _trace(t_cov))
    if kept is None:
        weakref.finalize(target, _PREPARED.pop, id(target), None)
    _PREPARED[id(target)] = (target._version, prepared)
    return prepared


def _trace(m: Tensor) -> Tensor:
    return torch.diagonal(m, dim1=1, dim2=2).sum(1)


def _sqrtm(m: Tensor) -> Tensor:
    """Square root of symmetric positive semi-definite matrices (N, C, C)."""
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()[:, None, :]) @ vecs.transpose(1, 2)


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
