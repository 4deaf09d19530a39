"""How much memory one optimisation step needs, and how much there is.

The estimate counts what autograd saves for the backward pass (on two small probes, then
extrapolated by pixel count, so it holds for any encoder), times a factor for the
backward's own temporaries, plus the optimiser's copies of the image. The factor was
measured on the CPU (see tests/test_tiling.py and README "High resolution").
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Peak bytes of a step per fp32 byte that autograd saves for the backward pass: the saved
# tensors themselves, plus the gradients flowing back and the Gram products. Measured on
# the CPU (peak RSS growth during one loss-and-gradient evaluation / saved bytes, one
# thread): offline encoder 0.91 at 256 px, 0.95 at 1024 px; VGG19 0.89 and 1.01. 1.25
# keeps the estimate 1.1x to 1.4x above all of them. Counting what autograd saves, not
# the outputs of modules, also sees the offline encoder's functional layers.
STEP_FACTOR = 1.25


def image_bytes_per_pixel(lbfgs_history: int) -> int:
    """Bytes per pixel besides the network: the image and its gradient, the best image so
    far, L-BFGS's pairs of history vectors and its working copies, 3 channels in fp32."""
    return 4 * 3 * (2 * lbfgs_history + 8)


_PROBE = 64  # side of the probe image used to count activations


def _saved_elements(net: nn.Module, layers) -> Callable[[int, int], int]:
    """``count(width, height)``: elements autograd keeps for the backward pass of ``net``
    at that size, plus the outputs.

    Counting what autograd saves (``saved_tensors_hooks``) rather than the outputs of
    modules also sees what functional code computes (the offline encoder's whitening,
    blurs and luminance branch), so one factor holds for every encoder. The count is
    made on two small probes and extrapolated linearly in the pixel count, which
    separates what grows with the image from what does not (the weights, also saved).
    """
    small, large = (_saved_at(net, layers, side) for side in (_PROBE, 2 * _PROBE))
    per_pixel = (large - small) / (3 * _PROBE * _PROBE)
    return lambda width, height: round(small + per_pixel * (width * height - _PROBE * _PROBE))


def _saved_at(net: nn.Module, layers, side: int) -> int:
    # Autograd keeps each hook's return value, and the hooks themselves, in the graph's
    # C++ nodes, where Python's cycle collector cannot see. So the hook hands back a
    # detached alias: it keeps the storage alive while counting (no address is freed and
    # reused by another tensor), yet links to no node, and ``saved`` holds only numbers.
    # Returning the tensor itself (a saved output -> its grad_fn -> the node -> the
    # output), or keeping tensors in a dict the hook closes over (node -> hook -> dict ->
    # tensor -> node), makes an uncollectable cycle that kept every probe's activations
    # for the life of the process.
    saved: dict[tuple[int, int | torch.SymInt], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[(t.untyped_storage().data_ptr(), t.storage_offset())] = t.numel()
        return t.detach()

    def unpack(t: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the memory probe's graph is for counting, not for backward")

    device = next(net.parameters()).device
    probe = torch.zeros(1, 3, side, side, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = net(probe, layers)
    return sum(saved.values()) + sum(t.numel() for t in out.values())


def step_estimator(net: nn.Module, layers, lbfgs_history: int) -> Callable[[int, int], int]:
    """``estimate(width, height)``: :func:`step_bytes` for many sizes, probing once."""
    elements = _saved_elements(net, layers)

    def estimate(width: int, height: int) -> int:
        image = image_bytes_per_pixel(lbfgs_history) * width * height
        return round(STEP_FACTOR * 4 * elements(width, height)) + image

    return estimate


def step_bytes(net: nn.Module, layers, width: int, height: int, lbfgs_history: int) -> int:
    """Estimated peak bytes of one loss-and-gradient evaluation at (width, height)."""
    return step_estimator(net, layers, lbfgs_history)(width, height)


def available_bytes(device: torch.device) -> int:
    """Memory a run may use: most of what is free on the GPU, or in RAM on the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.85)
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        return int(int(info["MemAvailable"].split()[0]) * 1024 * 0.7)
    except (OSError, KeyError, ValueError):
        return 8 * 2**30  # no /proc (macOS, Windows): assume a modest machine
