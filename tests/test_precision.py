"""Precision: bf16 never changes what the optimiser can see, and auto picks it only where
it is measured to be as good. These tests force each path explicitly, so a CPU without
bf16 instructions (where PyTorch emulates bf16, slowly) runs what a machine with them runs.
"""

from __future__ import annotations

import pytest
import torch
from synthetic import blob, stemmed_tiny_encoder, stripes, tiny_encoder

import painterly
from painterly import optimize, pipeline, precision
from painterly.api import make_options
from painterly.encoders import load_encoder
from painterly.encoders.preprocessing import CAFFE
from painterly.events import Notice
from painterly.image import resize, to_tensor
from painterly.optimize import Objective
from painterly.precision import numerics, resolve_precision

pytestmark = pytest.mark.precision  # the conftest leaves these tests' precision alone


def _loss(objective, x, mode):
    with torch.no_grad(), numerics(mode, x.device):
        return float(objective(x)[0])


def test_a_step_below_bf16_rounding_still_changes_the_loss_as_fp32_predicts():
    # The offline encoder on a photo-like image, its preset's losses.
    encoder = load_encoder("offline", seed=0)
    opts = make_options(preset="offline", size=64)
    content = to_tensor(resize(blob(), (64, 48)))
    style = to_tensor(resize(stripes(), (64, 48)))
    objective = Objective(encoder, content, [(style, 1.0)], opts)
    x0 = encoder.preprocessing.to_input(content).clone().requires_grad_(True)
    total, _ = objective(x0)
    (grad,) = torch.autograd.grad(total, x0)
    # Every pixel moves by 1/100 of a bf16 step at its value: in bf16 the image itself
    # would not change at all.
    ulp = (x0.detach().abs().clamp_min(1e-3) * 2.0**-8).detach()
    step = -grad.sign() * ulp / 100
    x1 = x0.detach() + step
    moved = (x1.bfloat16() != x0.detach().bfloat16()).float().mean()
    assert moved < 0.05  # below bf16's rounding: nearly every pixel rounds as before
    predicted = float((grad * step).sum())  # first-order change, < 0
    for mode in ("fp32", "bf16"):
        change = _loss(objective, x1, mode) - _loss(objective, x0.detach(), mode)
        assert 0.3 * predicted > change > 3 * predicted, (mode, change, predicted)


@pytest.mark.parametrize("optimizer,within", [("lbfgs", 3.0), ("adam", 1.05)])
def test_bf16_moves_the_image_and_comes_near_fp32s_loss(optimizer, within):
    # L-BFGS is the harder case: its line search reads loss differences, which bf16's
    # rounding of the deeper layers' inputs blurs; Adam only follows gradients.
    common = dict(encoder=stemmed_tiny_encoder(), size=64, steps=30, optimizer=optimizer)
    common.update(learning_rate=0.05, scales=1)
    full = painterly.run(blob(), stripes(), precision="fp32", **common)
    half = painterly.run(blob(), stripes(), precision="bf16", **common)
    start = full.metrics["history"][0]["total"]
    assert half.metrics["losses"]["total"] < 0.05 * start  # it moved, far
    assert half.metrics["losses"]["total"] < within * full.metrics["losses"]["total"]
    assert half.metrics["precision"] == "bf16" and full.metrics["precision"] == "fp32"


def test_auto_is_fp32_on_every_cpu_and_bf16_on_cuda_and_exact_presets_stay_fp32(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for has_bf16 in (False, True):
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda v=has_bf16: v)
        assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("auto", cuda) == "bf16"
    assert resolve_precision("auto", cuda, exact=True) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # an explicit choice stands
    assert resolve_precision("bf16", cuda, exact=True) == "bf16"
    assert isinstance(precision.cpu_has_bf16(), bool)


def test_a_stall_is_said_and_auto_redoes_the_scale_in_fp32(monkeypatch):
    # As on a GPU, auto picks bf16; the plain tiny encoder has no float32 stem, so in bf16
    # its loss is a staircase in the pixels and L-BFGS cannot move.
    monkeypatch.setattr(pipeline, "resolve_precision", lambda p, d, exact=False: "bf16")
    # A first step far below bf16's resolution, so that no step leaves the stair it is on
    # (the default one-grey-level step can jump a stair).
    monkeypatch.setattr(optimize, "FIRST_STEP", 1e-7)
    events = []
    common = dict(encoder=tiny_encoder(), size=64, scales=1, steps=20, style_weight=1.0)
    result = painterly.run(blob(), stripes(), callback=events.append, **common)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("no step improved on its start in bf16; redoing it in fp32" in m for m in notices)
    assert result.metrics["precision"] == "fp32"
    assert result.metrics["losses"]["total"] < 0.5 * result.metrics["history"][0]["total"]
    # Asked for explicitly, bf16 is kept, and the stall is said with a way out.
    events.clear()
    stuck = painterly.run(blob(), stripes(), precision="bf16", callback=events.append, **common)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("kept as it began; --precision fp32 may help" in m for m in notices), notices
    assert stuck.metrics["precision"] == "bf16"


def test_chollet_runs_fp32_where_auto_would_pick_bf16(monkeypatch):
    chosen = []

    def recorded(*args, **kwargs):
        chosen.append(_as_on_a_gpu(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(pipeline, "resolve_precision", recorded)
    common = dict(weights="random-vgg19", preset="chollet", height=32, steps=2)
    result = painterly.run(blob(), stripes(), **common)
    assert set(chosen) == {"fp32"} and result.metrics["precision"] == "fp32"
    # The default preset on the same "GPU" starts in bf16: the check above is not vacuous.
    # (Where no step improves in bf16, auto redoes the scale in fp32: a two-step run on
    # random weights can end either way, so what it starts in is what is checked.)
    chosen.clear()
    painterly.run(blob(), stripes(), weights="random-vgg19", size=32, steps=2)
    assert set(chosen) == {"bf16"}


def _as_on_a_gpu(p, device, exact=False):
    return resolve_precision(p, torch.device("cuda"), exact=exact)


def test_the_bf16_probe_survives_a_pytorch_without_its_private_helpers(monkeypatch):
    # cpu_has_bf16 reads private torch.cpu helpers, which another PyTorch may lack or
    # have changed: it then answers False instead of failing.
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    assert precision.cpu_has_bf16() is False

    def broken():
        raise RuntimeError("changed signature")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", broken, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.cpu_has_bf16() is True


def test_chollet_first_evaluation_matches_the_books_formulas_in_float64(monkeypatch):
    # Where auto would pick bf16 (as on a GPU), the chollet preset still computes the
    # book's losses in full precision: its first evaluation, of the content image, agrees
    # with the book's formulas evaluated in float64 on the same network to 1e-6.
    monkeypatch.setattr(pipeline, "resolve_precision", _as_on_a_gpu)
    common = dict(weights="random-vgg19", preset="chollet", height=32, steps=1, seed=2)
    result = painterly.run(blob(), stripes(), **common)
    got = result.metrics["history"][0]
    opts = make_options(**common)
    encoder = load_encoder("random-vgg19", seed=2, pooling="max").net.double()
    pre = CAFFE  # what a Keras VGG19 expects, as random-vgg19 uses
    size = painterly.pipeline.output_size(blob().size, opts)
    content = pre.to_input(to_tensor(resize(blob(), size)).double())
    style = pre.to_input(to_tensor(resize(stripes(), size)).double())
    layers = [opts.content_layer, *opts.style_layers]
    fc, fs = encoder(content, layers), encoder(style, layers)

    def gram(f):
        f = f.flatten(2)
        return f @ f.transpose(1, 2)

    pixels = size[0] * size[1]
    style_loss = sum(
        float(((gram(fs[n]) - gram(fc[n])) ** 2).sum()) / (4.0 * 9 * pixels**2)
        for n in opts.style_layers
    ) / len(opts.style_layers)
    a = (content[:, :, :-1, :-1] - content[:, :, 1:, :-1]) ** 2
    b = (content[:, :, :-1, :-1] - content[:, :, :-1, 1:]) ** 2
    tv = float(((a + b) ** 1.25).sum())
    assert result.metrics["precision"] == "fp32"
    assert got["content"] == 0.0  # the book starts from the content image
    assert got["style"] == pytest.approx(style_loss, rel=1e-6)
    assert got["tv"] == pytest.approx(tv, rel=1e-6)


@pytest.mark.parametrize(
    "asked, expected",
    [("bf16-coarse", ["bf16", "bf16", "fp32"]), ("bf16", ["bf16"] * 3), ("fp32", ["fp32"] * 3)],
)
def test_each_scale_runs_in_the_precision_asked(asked, expected):
    result = painterly.run(
        blob(96, 64), stripes(), encoder=tiny_encoder(), size=96, min_size=48, steps=12,
        precision=asked,
    )  # fmt: skip
    assert len(result.metrics["scales"]) == 3
    assert result.metrics["precision_per_scale"] == expected
