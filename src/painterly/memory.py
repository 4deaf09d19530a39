"""How much memory one optimisation step needs, and how much there is.

The estimate counts the activations a forward pass produces (measured once with hooks on
a small input, then scaled by pixel count, so it holds for any encoder), times a factor
for what autograd keeps for the backward pass and the backward's own temporaries. The
factor was measured on the CPU (see tests/test_tiling.py and README "High resolution").
"""

from __future__ import annotations

import re

import torch
from torch import nn

from painterly.errors import OptionsError

# Peak bytes of a step per fp32 byte of leaf-module outputs: forward outputs kept for the
# backward pass (conv inputs, ReLU outputs), gradients flowing back, the Gram products.
# Measured on the CPU with VGG19 (peak RSS growth during one step / counted bytes): 2.57
# at 256 px, 1.12 at 384 px, 1.55 at 512 px, 1.43 at 1024 px. 2.0 keeps the estimate
# within 0.5x to 2.5x of the measured peak (2.07x once at 384 px with one thread, which
# keeps fewer buffers), erring on the safe side for large images.
STEP_FACTOR = 2.0
_PROBE = 64  # side of the probe image used to count activations


def activation_elements(net: nn.Module, layers, width: int, height: int) -> int:
    """Elements of every intermediate output of ``net`` for a (1, 3, height, width) input."""
    counted = []

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            counted.append(output.numel())

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        device = next(net.parameters()).device
        with torch.no_grad():
            out = net(torch.zeros(1, 3, _PROBE, _PROBE, device=device), layers)
    finally:
        for h in handles:
            h.remove()
    total = sum(counted) or sum(t.numel() for t in out.values())
    return round(total * (width * height) / (_PROBE * _PROBE))


def step_bytes(net: nn.Module, layers, width: int, height: int) -> int:
    """Estimated peak bytes of one loss-and-gradient evaluation at (width, height)."""
    image = 12 * width * height * 4  # the image, its gradient, targets, the optimiser's copies
    return round(STEP_FACTOR * 4 * activation_elements(net, layers, width, height)) + image


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``8G``, ``512M``, ``1.5GB`` -> bytes; ``0`` or ``auto`` -> 0 (use what is free)."""
    if text in ("0", "auto", ""):
        return 0
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)I?B?\s*", text.upper())
    if not m or float(m.group(1)) <= 0:
        raise OptionsError(f"--max-memory '{text}' is not a size; write it like 8G or 512M")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


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
