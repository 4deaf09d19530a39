"""The arithmetic a run's objective is computed in.

``fp32`` is full single precision everywhere. ``bf16`` runs the convolutions of the
encoder under bf16 autocast, which halves their memory traffic and uses the bf16 units of
GPUs and of CPUs that have them; three things stay in float32 so that the optimiser still
sees a smooth objective:

* the **stem**, the encoder's first layer, which reads the image itself: bf16 keeps 8
  bits of mantissa, so a pixel of value 100 moves in steps of 0.5 in bf16, and L-BFGS's
  first trial steps (far smaller) would see a flat, stair-shaped loss and never move.
  With the stem in float32 its output varies smoothly with the pixels, and the rounding
  of the deeper layers' inputs happens at millions of activations at different points,
  so the loss changes with any step, in proportion to it on average;
* the Gram matrices and every loss (losses.py accumulates in float32);
* total variation, which reads the image directly.

``tf32`` lets CUDA matrix units use TF32 for float32 convolutions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


def resolve_precision(precision: str, device: torch.device, *, exact: bool = False) -> str:
    """What ``auto`` means on ``device``: bf16 on CUDA GPUs, fp32 on CPUs and elsewhere.

    On CPUs, bf16 (even with AVX512-BF16) ended further than 2 % above fp32's final loss
    on a bundled pair, with L-BFGS, so ``auto`` keeps fp32 there (benchmarks/
    bench_precision.py, docs/performance.md). With ``exact`` (the book's losses, which
    promise Keras' numbers) ``auto`` is fp32 everywhere. An explicit choice always stands.
    """
    if precision == "auto":
        return "bf16" if device.type == "cuda" and not exact else "fp32"
    return precision


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX), as PyTorch sees it.

    PyTorch exposes this only through private helpers; where they are missing (another
    PyTorch version) the answer is False, which only affects the figures benchmarks print.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    answers = []
    for name in checks:
        probe = getattr(torch.cpu, name, None)
        try:
            answers.append(bool(probe()) if callable(probe) else False)
        except Exception:  # a private helper that changed its signature or fails
            answers.append(False)
    return any(answers)


@contextlib.contextmanager
def numerics(precision: str, device: torch.device) -> Iterator[None]:
    """Run the objective in ``precision``: autocast for bf16, TF32 switches for tf32/fp32.

    The TF32 switches are process-wide, so they are restored afterwards. PyTorch lets
    cuDNN use TF32 by default; ``fp32`` turns that off so that it means full precision.
    """
    if device.type != "cuda":
        with torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False
        ):
            yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        # No autocast weight cache: it would not survive CUDA-graph capture.
        with torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False
        ):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def stem(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` in float32 whatever autocast is active: the encoder's first layer,
    which must see the pixels unrounded (see the module docstring)."""
    if not torch.is_autocast_enabled(x.device.type):
        return layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())
