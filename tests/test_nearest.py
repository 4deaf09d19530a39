"""The nearest-neighbour style loss (``--style-loss nearest``): the relaxed earth mover's
distance against a NumPy transcription, its samples, and every path it runs on (blends,
masks, batches and the book's refusal shared with ``meancov``, test_meancov.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import blob, stripes, tiny_encoder

import painterly
from painterly import losses, nearest
from painterly.batch import run_batch
from painterly.encoders import load_encoder
from painterly.errors import OptionsError
from painterly.image import to_tensor

RNG = np.random.default_rng(11)


def np_remd(points: np.ndarray, pool: np.ndarray) -> float:
    """The STROTSS formula as written: cosine cost, the larger of the two mean minima."""
    a = points / np.linalg.norm(points, axis=1, keepdims=True)
    b = pool / np.linalg.norm(pool, axis=1, keepdims=True)
    cost = 1 - a @ b.T
    return float(max(cost.min(1).mean(), cost.min(0).mean()))


def unit(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(t, dim=1)


def test_relaxed_emd_matches_numpy():
    for p, m, c in [(5, 7, 3), (40, 13, 8), (1, 9, 4)]:
        points = RNG.normal(size=(p, c)) + 0.3
        pool = RNG.normal(size=(m, c)) + 0.3
        got = losses.relaxed_emd(torch.tensor(points), unit(torch.tensor(pool)))
        assert float(got) == pytest.approx(np_remd(points, pool), rel=1e-5)


def test_relaxed_emd_gradient_is_that_of_the_dense_minimum():
    points = torch.tensor(RNG.normal(size=(30, 6)), requires_grad=True)
    pool = unit(torch.tensor(RNG.normal(size=(20, 6))))
    losses.relaxed_emd(points, pool).backward()
    fast = points.grad.clone()
    points.grad = None
    cost = 1 - unit(points) @ pool.float().t().to(points.dtype)
    dense = torch.maximum(cost.min(1).values.mean(), cost.min(0).values.mean())
    dense.backward()
    assert torch.allclose(fast.float(), points.grad.float(), atol=1e-6)


def test_both_directions_count():
    pool = unit(torch.tensor(RNG.normal(size=(16, 5)), dtype=torch.float32))
    assert float(losses.relaxed_emd(pool.clone(), pool)) == pytest.approx(0, abs=1e-6)
    # Every point is one of the painting's features, but most of the painting is missing:
    # the first direction alone would call this perfect.
    one = pool[:1].repeat(16, 1)
    cost = 1 - one @ pool.t()
    assert float(cost.min(1).values.mean()) == pytest.approx(0, abs=1e-6)
    assert float(losses.relaxed_emd(one, pool)) > 0.3


def test_positions_are_the_same_in_either_memory_layout():
    f = torch.randn(1, 6, 5, 7)
    a = nearest._positions(f[0])
    b = nearest._positions(f.contiguous(memory_format=torch.channels_last)[0])
    assert torch.equal(a, b) and a.shape == (35, 6)
    assert torch.equal(a[8], f[0, :, 1, 1])


def test_samples_hold_within_a_round_change_with_the_next_and_repeat_by_seed():
    pool = {"l": unit(torch.randn(50, 4))}
    first = nearest.NearestStyle([[(pool, 1.0)]], seed=3)
    again = first._draw(5000, None, 0, "cpu")
    assert torch.equal(first._draw(5000, None, 0, "cpu"), again)
    assert len(again) == nearest.SAMPLES and len(set(again.tolist())) == nearest.SAMPLES
    first.round += 1
    assert not torch.equal(first._draw(5000, None, 0, "cpu"), again)
    twin = nearest.NearestStyle([[(pool, 1.0)]], seed=3)
    assert torch.equal(twin._draw(5000, None, 0, "cpu"), again)
    other = nearest.NearestStyle([[(pool, 1.0)]], seed=4)
    assert not torch.equal(other._draw(5000, None, 0, "cpu"), again)


def test_a_region_is_sampled_inside_itself():
    where = torch.zeros(1, 40, 40)
    where[:, :10, :] = 1.0
    style = nearest.NearestStyle([], 0, regions=({}, [[({"l": torch.ones(1, 2)}, 1.0)]]))
    pick = style._draw(1600, where, 0, "cpu")
    assert len(pick) == 400 and int(pick.max()) < 400  # the top ten rows only


def test_the_painting_pool_is_unit_length_seeded_and_bounded():
    enc = load_encoder("offline", seed=0)
    painting = to_tensor(stripes(320, 200))
    pool = nearest.painting_pool(enc, painting, ("level1", "level3"), seed=0)
    assert pool["level1"].shape == (nearest.POOL_SIZE, 32)
    assert pool["level3"].shape[1] == 128 and pool["level3"].shape[0] <= nearest.POOL_SIZE
    assert torch.allclose(pool["level1"].norm(dim=1), torch.ones(nearest.POOL_SIZE), atol=1e-5)
    assert torch.equal(
        pool["level3"], nearest.painting_pool(enc, painting, ("level3",), 0)["level3"]
    )


def small(**kw):
    opts = dict(weights="offline", size=48, steps=40, style_loss="nearest")
    return painterly.run(blob(), stripes(), **{**opts, **kw})


def test_nearest_brings_the_paintings_own_features_closer_than_gram():
    """Judged by how far each pixel's colour is from the painting's two colours: the
    Gram keeps proportions and mixes, nearest neighbours take the painting's own. The
    two objectives alike in all else: the levels even (the offline preset weighs its
    deep levels lighter for the Gram loss only)."""
    even = {"style_layer_weights": (1.0,) * 5}
    near, gram = small(**even).image, small(style_loss="gram", **even).image
    colors = torch.tensor([[220, 40, 30], [30, 60, 200]]) / 255

    def off_palette(img):
        px = to_tensor(img)[0].flatten(1).t()
        return float(torch.cdist(px, colors).min(1).values.mean())

    assert off_palette(near) < off_palette(gram)


def test_a_round_is_new_samples_and_a_fresh_lbfgs(monkeypatch):
    made = []
    real = torch.optim.LBFGS

    def counting(params, **kwargs):
        made.append(kwargs["max_iter"])
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "LBFGS", counting)
    small(steps=50, scales=1)
    assert made == [nearest.ROUND] * 3  # 50 steps: rounds of 20, 20 and 10
    made.clear()
    small(steps=50, scales=1, style_loss="gram")
    assert made == [50]


def test_the_same_seed_paints_the_same_image():
    a, b = small(steps=25), small(steps=25)
    assert a.image.tobytes() == b.image.tobytes()
    assert small(steps=25, seed=1).image.tobytes() != a.image.tobytes()


@pytest.mark.parametrize(
    "extra",
    [
        dict(tile=64, size=96),  # tiles, matched against the whole painting's pool
        dict(optimizer="adam"),
        dict(precision="bf16"),
    ],
    ids=["tiles", "adam", "bf16"],
)
def test_every_path_runs_and_moves_the_image(extra):
    result = small(**extra)
    out = to_tensor(result.image)
    assert torch.isfinite(out).all()
    assert result.metrics["steps"] >= 40
    photo = to_tensor(blob().resize(result.image.size))
    assert (out - photo).abs().mean() > 0.01


@pytest.mark.parametrize("style_loss", ["nearest", "meancov"])
def test_a_blend_and_masks(tmp_path, style_loss):
    from test_controls import assert_halves_took_their_styles, greens, halves

    blend = painterly.run(
        blob(), [(stripes(), 1.0), (greens(), 1.0)], weights="offline", size=48, steps=20,
        style_loss=style_loss,
    )  # fmt: skip
    assert torch.isfinite(to_tensor(blend.image)).all()
    mask = tmp_path / "mask.png"
    halves().save(mask)
    out = painterly.run(
        blob(), [stripes(), greens()], weights="offline", size=48, steps=20,
        mask=str(mask), mask_styles="#ff0000=0,#0000ff=1", style_loss=style_loss,
    ).image  # fmt: skip
    assert_halves_took_their_styles(out)


@pytest.mark.parametrize("style_loss", ["nearest", "meancov"])
def test_a_batch_gives_each_image_its_own_painting(style_loss):
    from test_controls import greens

    items = [(blob(), stripes()), (blob(), greens())]
    results = run_batch(items, weights="offline", size=48, steps=20, style_loss=style_loss)
    assert [r.metrics["batch"] for r in results] == [2, 2]
    # By their blue and green means: stripes are red and blue, the checks green and
    # yellow (their red means are close: 0.49 and 0.53).
    striped, checked = (to_tensor(r.image)[0].mean((1, 2)) for r in results)
    assert striped[2] > checked[2] + 0.1 and checked[1] > striped[1] + 0.1


@pytest.mark.parametrize("style_loss", ["nearest", "meancov"])
def test_the_books_form_has_the_gram_loss_only(style_loss):
    with pytest.raises(OptionsError, match=f"{style_loss} needs .*loss.form relative"):
        painterly.run(blob(), stripes(), encoder=tiny_encoder(), preset="chollet",
                      style_loss=style_loss)  # fmt: skip
