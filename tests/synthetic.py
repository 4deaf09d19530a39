"""Small synthetic images and a tiny stand-in encoder for the tests."""

from __future__ import annotations

import signal

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from painterly.encoders import Encoder
from painterly.encoders.preprocessing import CAFFE
from painterly.encoders.vgg import layer_names
from painterly.precision import stem


def stripes(width: int = 96, height: int = 64, period: int = 8) -> Image.Image:
    """Diagonal red/blue stripes: a style with strong, simple statistics."""
    y, x = np.mgrid[0:height, 0:width]
    on = ((x + y) // (period // 2)) % 2 == 0
    arr = np.zeros((height, width, 3), np.uint8)
    arr[on] = (220, 40, 30)
    arr[~on] = (30, 60, 200)
    return Image.fromarray(arr)


def blob(width: int = 96, height: int = 64) -> Image.Image:
    """A soft grey disc on a light background: a content image with one clear shape."""
    y, x = np.mgrid[0:height, 0:width]
    r = np.hypot((x - width / 2) / width, (y - height / 2) / height)
    v = np.clip(230 - 150 * (r < 0.3) - 40 * r, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([v, v, v], -1))


class TinyEncoder(nn.Module):
    """One 1x1 conv per VGG19 layer name, applied at that layer's resolution."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.convs = nn.ModuleDict({n: nn.Conv2d(3, 4, 1) for n in layer_names("vgg19")})
        for conv in self.convs.values():
            conv.weight.data = torch.randn(conv.weight.shape, generator=gen) * 0.05
            # As nn.Conv2d draws them, but from ``gen``: the same encoder in every test.
            conv.bias.data = (torch.rand(4, generator=gen) * 2 - 1) / 3**0.5
        self.requires_grad_(False)

    def forward(self, x, layers):
        out = {}
        for name in layers:
            block = int(name[5])
            out[name] = F.relu(self.convs[name](F.avg_pool2d(x, 2 ** (block - 1))))
        return out


def tiny_encoder() -> Encoder:
    return Encoder(TinyEncoder(), CAFFE, "tiny", "vgg19")


def default_sigint() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C as at a terminal: a shell starts
    background jobs (a CI runner's, say) with SIGINT ignored, and Python then never turns
    it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StemmedTinyEncoder(nn.Module):
    """A tiny encoder shaped like painterly's real ones for precision tests: a stem
    convolution reads the pixels in float32 under any autocast (precision.stem), and one
    1x1 convolution per VGG19 layer name reads the stem's output in whatever precision is
    active, at that layer's resolution."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.first = nn.Conv2d(3, 64, 3, padding=1)
        self.convs = nn.ModuleDict({n: nn.Conv2d(64, 4, 1) for n in layer_names("vgg19")})
        for conv in (self.first, *self.convs.values()):
            fan_in = conv.weight[0].numel()
            conv.weight.data = torch.randn(conv.weight.shape, generator=gen) / fan_in**0.5
            conv.bias.data = torch.rand(conv.bias.shape, generator=gen) / 3**0.5  # none dead
        self.requires_grad_(False)

    def forward(self, x, layers):
        h = F.relu(stem(self.first, x / 128))  # Caffe input is about -128..128
        out = {}
        for name in layers:
            block = int(name[5])
            out[name] = F.relu(self.convs[name](F.avg_pool2d(h, 2 ** (block - 1))))
        return out


def stemmed_tiny_encoder() -> Encoder:
    return Encoder(StemmedTinyEncoder(), CAFFE, "tiny-stemmed", "vgg19")


def tiny_model(path, style: str = "stripes", seed: int = 0):
    """A fast-model file of an untrained 4-channel, 1-block network: what a model file
    carries, at a fraction of a second's cost. Returns the path."""
    from painterly import __version__
    from painterly.fast.model_file import ModelInfo, save_model
    from painterly.fast.network import make_network

    info = ModelInfo(
        width=4,
        blocks=1,
        styles=[{"name": style, "sha256": "0" * 64, "weight": 1.0}],
        encoder="offline",
        options={"crop": 32},
        iterations=3,
        version=__version__,
    )
    return save_model(path, make_network(4, 1, seed), info)


def out_of_memory_once(monkeypatch) -> None:
    """Make ``painterly.pipeline.optimize`` raise CUDA's out-of-memory error on its first
    call and run as usual after."""
    import painterly.pipeline

    real, calls = painterly.pipeline.optimize, []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(painterly.pipeline, "optimize", fails_once)
