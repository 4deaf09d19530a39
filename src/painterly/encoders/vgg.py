"""VGG16/VGG19 feature extractors with Keras layer names.

Only the convolutional part is built, and only up to the deepest layer a run asks for: a
style transfer that reads ``block5_conv1`` never pays for ``block5_conv2..4``. One forward
pass returns every requested activation in a name-to-tensor map.

Names follow Keras (``block4_conv2``) because the seed's weights are Keras' and the book
uses them. As in Keras, a layer's output is *after* its ReLU. ``conv4_2`` and ``relu4_2``
(the paper's and Caffe's names) are accepted as aliases of the same activation.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from painterly.errors import OptionsError
from painterly.precision import stem

# Convolutions per block; every conv is 3x3, stride 1, padding 1, followed by ReLU, and a
# 2x2 pooling closes each block.
BLOCK_DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)

_ALIAS = re.compile(r"^(?:conv|relu)(\d)_(\d)$")


def layer_names(arch: str) -> tuple[str, ...]:
    """All conv layer names of ``arch`` in forward order."""
    return tuple(
        f"block{b + 1}_conv{i + 1}"
        for b, depth in enumerate(BLOCK_DEPTHS[arch])
        for i in range(depth)
    )


def resolve_layer(name: str, arch: str = "vgg19") -> str:
    """Canonical Keras name for ``name``; raises OptionsError with a suggestion if unknown."""
    known = layer_names(arch)
    m = _ALIAS.match(name)
    canonical = f"block{m.group(1)}_conv{m.group(2)}" if m else name
    if canonical in known:
        return canonical
    aliases = [f"conv{n[5]}_{n[-1]}" for n in known]
    close = difflib.get_close_matches(name, known + tuple(aliases), n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; {arch} has {known[0]} .. {known[-1]}"
    raise OptionsError(f"unknown layer '{name}' for {arch}{hint}")


class VGG(nn.Module):
    """The convolutional part of VGG, truncated after ``upto``.

    Parameters are registered under their Keras names (``block1_conv1.weight``), which is
    the key format every weight loader in :mod:`painterly.encoders.formats` produces.
    """

    def __init__(self, arch: str = "vgg19", upto: str = "block5_conv4", pooling: str = "max"):
        super().__init__()
        if arch not in BLOCK_DEPTHS:
            raise OptionsError(f"unknown architecture '{arch}'; choose vgg16 or vgg19")
        if pooling not in ("max", "avg"):
            raise OptionsError(f"unknown pooling '{pooling}'; choose max or avg")
        self.arch = arch
        self.pooling = pooling
        upto = resolve_layer(upto, arch)
        self.names = layer_names(arch)[: layer_names(arch).index(upto) + 1]
        in_ch = 3
        for name in self.names:
            out_ch = BLOCK_CHANNELS[int(name[5]) - 1]
            self.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
            in_ch = out_ch
        self.requires_grad_(False)
        self.eval()

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        # Gatys et al. prefer average pooling for image synthesis ("slightly more appealing
        # results"); Keras' VGG and the book use max pooling.
        return F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations (post-ReLU) of the requested layers for a (N, 3, H, W) input."""
        wanted = {resolve_layer(n, self.arch) for n in layers}
        missing = wanted.difference(self.names)
        if missing:
            raise OptionsError(f"layer {sorted(missing)[0]} is deeper than this network was built")
        last = max(self.names.index(n) for n in wanted)
        out = {}
        for i, name in enumerate(self.names[: last + 1]):
            if i > 0 and name.endswith("_conv1"):
                x = self._pool(x)
            conv = getattr(self, name)
            x = F.relu(stem(conv, x) if i == 0 else conv(x))
            if name in wanted:
                out[name] = x
        return out
