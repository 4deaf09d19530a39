"""Milliseconds per optimisation step: painterly's step beside a plain reference loop.

The reference is the loop of the PyTorch neural-style tutorial: VGG19 as an
``nn.Sequential`` up to conv5_1 with loss modules inserted after the chosen layers,
``torch.optim.LBFGS`` with default settings, the image clamped every step. Both use the
same random weights (speed does not depend on their values) and run in this process, so
the ratio is fair on a shared, noisy machine. Prints one JSON line per configuration.

    python benchmarks/bench_step.py                    # CPU: 128 and 256 px
    python benchmarks/bench_step.py --sizes 512 1024 --device cuda --configs fp32 bf16
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch
from torch import nn
from torch.nn import functional as F

import painterly
from painterly.config import BOOK_STYLE_LAYERS
from painterly.encoders import Encoder
from painterly.encoders.offline import random_vgg
from painterly.encoders.preprocessing import CAFFE
from painterly.encoders.vgg import BLOCK_CHANNELS, layer_names


def vgg_gflop(height: int, width: int, upto: str = "block5_conv1") -> float:
    """GFLOP of one step: the forward pass plus the input-gradient backward (about 2x)."""
    flop, in_ch = 0.0, 3
    for name in layer_names("vgg19")[: layer_names("vgg19").index(upto) + 1]:
        block = int(name[5])
        out_ch = BLOCK_CHANNELS[block - 1]
        pixels = (height >> (block - 1)) * (width >> (block - 1))
        flop += 2 * pixels * in_ch * out_ch * 9
        in_ch = out_ch
    return 2 * flop / 1e9


# --- the reference: the PyTorch tutorial's loop -------------------------------------


class _ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, x):
        self.loss = F.mse_loss(x, self.target)
        return x


def _gram(x):
    n, c, h, w = x.shape
    f = x.view(n * c, h * w)
    return f @ f.t() / (n * c * h * w)


class _StyleLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = _gram(target).detach()

    def forward(self, x):
        self.loss = F.mse_loss(_gram(x), self.target)
        return x


def reference_model(vgg, content, style):
    """nn.Sequential of VGG19 with loss modules after conv4_2 (content) and conv*_1."""
    model, content_losses, style_losses = nn.Sequential(), [], []
    for name in vgg.names:
        if name.endswith("_conv1") and name != "block1_conv1":
            model.add_module(f"pool_{name}", nn.MaxPool2d(2))
        model.add_module(name, getattr(vgg, name))
        model.add_module(f"relu_{name}", nn.ReLU(inplace=False))
        if name == "block4_conv2":
            loss = _ContentLoss(model(content))
            model.add_module(f"content_{name}", loss)
            content_losses.append(loss)
        if name in BOOK_STYLE_LAYERS:
            loss = _StyleLoss(model(style))
            model.add_module(f"style_{name}", loss)
            style_losses.append(loss)
    return model, content_losses, style_losses


def time_reference(vgg, content, style, steps: int, warmup: int) -> float:
    model, cls, sls = reference_model(vgg, content, style)
    img = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([img])
    count = [0]

    def closure():
        with torch.no_grad():
            img.clamp_(0, 1)
        opt.zero_grad()
        model(img)
        loss = 1e6 * sum(s.loss for s in sls) + sum(c.loss for c in cls)
        loss.backward()
        count[0] += 1
        return loss

    while count[0] < warmup:
        opt.step(closure)
    _sync(content.device)
    count[0], start = 0, time.perf_counter()
    while count[0] < steps:
        opt.step(closure)
    _sync(content.device)
    return 1000 * (time.perf_counter() - start) / count[0]


# --- painterly ------------------------------------------------------------------------


def time_painterly(encoder, content, style, steps: int, warmup: int, **options) -> float:
    images = [painterly.image.to_image(t) for t in (content, style)]
    common = dict(
        encoder=encoder,
        size=max(content.shape[-2:]),
        scales=1,  # every step at this size, as the reference's (multi-scale is the default)
        device=content.device.type,
        progress_every=10**9,  # no read-back of the losses inside the timed loop
    )
    painterly.run(*images, steps=warmup, **common, **options)
    result = painterly.run(*images, steps=steps, **common, **options)
    return result.metrics["ms_per_step"]


CONFIGS = {
    "fp32": {"precision": "fp32"},
    "tf32": {"precision": "tf32"},
    "bf16": {"precision": "bf16"},
    "bf16-eager": {"precision": "bf16", "cuda_graph": False},  # what the graph saves
    "bf16-adam": {"precision": "bf16", "optimizer": "adam"},  # no host sync at all
    "fp32-adam": {"precision": "fp32", "optimizer": "adam"},
}


def random_vgg19(device, upto: str = "block5_conv1", pooling: str = "max") -> Encoder:
    """VGG19 with random weights: the pretrained network's exact cost, nothing to download.
    Placed as painterly places a loaded encoder (channels-last on CUDA and CPUs)."""
    return Encoder(random_vgg(0, upto, pooling), CAFFE, "vgg19-random", "vgg19").to(device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=list(CONFIGS),
        help="default: fp32 on CPUs (bf16 convolutions without avx512_bf16 are 30x slower), "
        "all on GPUs",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    configs = args.configs or (list(CONFIGS) if device.type == "cuda" else ["fp32", "fp32-adam"])
    encoder = random_vgg19(device)
    # The reference gets a plain NCHW copy, as a plain loop would have it.
    reference_vgg = random_vgg(0, "block5_conv1", "max").to(device)
    gen = torch.Generator().manual_seed(0)
    for size in args.sizes:
        content = torch.rand(1, 3, size, size, generator=gen).to(device)
        style = torch.rand(1, 3, size, size, generator=gen).to(device)
        gflop = vgg_gflop(size, size)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        ref_ms = time_reference(reference_vgg, content, style, args.steps, args.warmup)
        rows = [("reference", ref_ms, _peak_mb(device))]
        for name in configs:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            ms = time_painterly(
                encoder,
                content,
                style,
                args.steps,
                args.warmup,
                pooling="max",
                content_layer="block4_conv2",
                **CONFIGS[name],
            )
            rows.append((name, ms, _peak_mb(device)))
        for name, ms, peak in rows:
            print(
                json.dumps(
                    {
                        "impl": "reference" if name == "reference" else "painterly",
                        "config": name,
                        "device": str(device),
                        "size": size,
                        "ms_per_step": round(ms, 2),
                        "speedup_vs_reference": round(ref_ms / ms, 2),
                        "tflops": round(gflop / ms, 3),
                        "peak_mb": round(peak),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
