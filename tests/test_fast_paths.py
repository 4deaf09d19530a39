"""Fast paths are numerically sound; the CPU path never touches CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from synthetic import blob, stripes, tiny_encoder

import painterly
from painterly.image import to_tensor
from painterly.optimize import Objective
from painterly.precision import numerics

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _objective(precision: str, device: str = "cpu"):
    enc = tiny_encoder()
    enc.to(device)
    content = to_tensor(blob(64, 48)).to(device)
    style = to_tensor(stripes(64, 48)).to(device)
    opts = painterly.Options(size=64, precision=precision)
    return enc, Objective(enc, content, [(style, 1.0)], opts), content


def test_bf16_objective_is_close_to_fp32():
    enc, objective, content = _objective("fp32")
    x = enc.preprocessing.to_input(content)
    with torch.no_grad():
        full, _ = objective(x)
        with numerics("bf16", x.device):
            half, parts = objective(x)
    assert parts["style"].dtype == torch.float32  # Gram sums stay in fp32
    assert abs(float(half) / float(full) - 1) < 0.02


def test_bf16_run_reaches_the_fp32_loss():
    common = dict(encoder=tiny_encoder(), size=64, steps=40, optimizer="adam")
    full = painterly.run(blob(), stripes(), precision="fp32", **common).metrics["losses"]
    half = painterly.run(blob(), stripes(), precision="bf16", **common).metrics["losses"]
    assert half["total"] < full["total"] * 1.05


def test_device_cpu_never_touches_cuda(tmp_path, content_path, style_path):
    # A fresh interpreter, so nothing else in the test session could have initialised CUDA.
    code = f"""
import torch, painterly
from painterly.cli import main
def refuse(*a, **k):
    raise SystemExit("CUDA was touched")
torch.cuda.is_available = refuse
torch.cuda.device_count = refuse
rc = main(["stylize", r"{content_path}", r"{style_path}", "-o", r"{tmp_path / "o.png"}",
           "--device", "cpu", "--weights", "offline", "--size", "40", "--steps", "2", "--quiet"])
assert rc == 0, rc
assert not torch.cuda.is_initialized()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@needs_cuda
def test_cuda_graph_step_is_identical_to_eager():
    # One loss-and-gradient evaluation, replayed from the graph at points the optimiser
    # would move to (x changed in place), against the same evaluation run eagerly. A whole
    # L-BFGS run is not compared: its line search amplifies last-bit differences.
    from painterly.optimize import Objective, _graphed

    enc = tiny_encoder()
    enc.to("cuda")
    content = painterly.image.to_tensor(blob()).cuda()
    style = painterly.image.to_tensor(stripes(96, 64)).cuda()
    opts = painterly.api.make_options(precision="fp32")
    objective = Objective(enc, content, [(style, 1.0)], opts)
    x = enc.preprocessing.to_input(content).clone().requires_grad_(True)
    replay = _graphed(objective, x, "fp32")
    gen = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(3):
        total, _parts = replay()
        graphed = (total.detach().clone(), x.grad.detach().clone())
        x.grad = None
        eager_total, _ = objective(x)
        eager_total.backward()
        torch.testing.assert_close(graphed[0], eager_total.detach(), rtol=1e-5, atol=0)
        torch.testing.assert_close(graphed[1], x.grad, rtol=1e-4, atol=1e-7)
        with torch.no_grad():
            x.add_(torch.randn(x.shape, generator=gen, device="cuda") * 5)


@needs_cuda
def test_cuda_graph_run_follows_the_eager_run():
    common = dict(encoder=tiny_encoder(), size=64, steps=20, device="cuda", precision="fp32")
    common["optimizer"] = "adam"  # no line search to amplify rounding differences
    eager = painterly.run(blob(), stripes(), cuda_graph=False, **common)
    graphed = painterly.run(blob(), stripes(), cuda_graph=True, **common)
    e = torch.tensor([h["total"] for h in eager.metrics["history"]])
    g = torch.tensor([h["total"] for h in graphed.metrics["history"]])
    assert torch.allclose(e, g, rtol=1e-3)


@needs_cuda
def test_bf16_on_cuda_is_close_to_fp32():
    common = dict(encoder=tiny_encoder(), size=64, steps=40, device="cuda", optimizer="adam")
    full = painterly.run(blob(), stripes(), precision="fp32", **common).metrics["losses"]
    half = painterly.run(blob(), stripes(), precision="bf16", **common).metrics["losses"]
    assert half["total"] < full["total"] * 1.05
