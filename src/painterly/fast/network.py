"""The image transformation network of Johnson, Alahi and Fei-Fei, "Perceptual Losses
for Real-Time Style Transfer and Super-Resolution" (ECCV 2016), with the changes that
later work found better.

Layout, for ``width`` w (32 in the paper)::

    9x9 conv (w) -> 3x3 conv stride 2 (2w) -> 3x3 conv stride 2 (4w)
    -> residual blocks of two 3x3 convs (4w), 5 by default
    -> nearest-neighbour x2 + 3x3 conv (2w) -> nearest-neighbour x2 + 3x3 conv (w)
    -> 9x9 conv (3) -> sigmoid

Where it departs from the paper, and why:

* **Instance normalisation** instead of batch normalisation (Ulyanov et al., 2016): the
  style of one image should not depend on the others in its batch, and it trains faster.
* **Reflection padding** instead of zero padding, and residual blocks that keep their
  size instead of cropping: no dark frame along the borders, any input size works.
* **Upsampling by nearest-neighbour resize then a 3x3 conv**, never a transposed
  convolution: a stride-2 transposed conv paints a checkerboard (Odena et al.,
  "Deconvolution and checkerboard artifacts", Distill 2016). Each resize goes to the
  exact size of the matching downsampled map, so odd sizes come back whole.
* **A sigmoid output** in 0..1 RGB. painterly's losses take RGB in 0..1, and so does
  everything that saves an image; the paper's ``150 tanh`` (an output in the network's
  input units, clipped later) would let the network spend effort on values that
  clipping throws away, and clipping itself has no gradient. A sigmoid keeps every
  output in range with a gradient everywhere (it is a scaled tanh: ``(tanh(x/2)+1)/2``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from painterly.fast.config import DEFAULT_BLOCKS, DEFAULT_WIDTH

Tensor = torch.Tensor


class ConvNorm(nn.Sequential):
    """Reflection padding, a convolution, then instance normalisation and a ReLU
    (``last``: the bare convolution)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, last: bool = False):
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(cin, cout, kernel, stride),
        ]
        if not last:
            layers += [nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class Residual(nn.Module):
    """``x + conv(relu(conv(x)))``, both convs 3x3 with instance normalisation; no ReLU
    after the sum (Gross and Wilber's finding, which Johnson's code follows)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvNorm(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Photo (N, 3, H, W) in 0..1 -> stylised photo, same shape, in 0..1. Any H, W >= 8."""

    def __init__(self, width: int = DEFAULT_WIDTH, blocks: int = DEFAULT_BLOCKS):
        super().__init__()
        self.width, self.blocks = width, blocks
        w = width
        self.stem = ConvNorm(3, w, 9)
        self.down1 = ConvNorm(w, 2 * w, 3, stride=2)
        self.down2 = ConvNorm(2 * w, 4 * w, 3, stride=2)
        self.res = nn.Sequential(*(Residual(4 * w) for _ in range(blocks)))
        self.up1 = ConvNorm(4 * w, 2 * w, 3)
        self.up2 = ConvNorm(2 * w, w, 3)
        self.out = ConvNorm(w, 3, 9, last=True)

    def forward(self, rgb: Tensor) -> Tensor:
        # Only the sizes of the full- and half-size maps are kept for the way up, so the
        # maps themselves are freed early (inference on large photos, memory.py's budget).
        full = rgb.shape[-2:]
        x = self.stem(rgb - 0.5)  # (N, w, H, W); centred input
        x = self.down1(x)  # (N, 2w, H/2, W/2)
        half = x.shape[-2:]
        x = self.res(self.down2(x))  # (N, 4w, H/4, W/4)
        x = self.up1(F.interpolate(x, size=half, mode="nearest"))  # (N, 2w, H/2, W/2)
        x = self.up2(F.interpolate(x, size=full, mode="nearest"))  # (N, w, H, W)
        return torch.sigmoid(self.out(x))


def parameter_shapes(width: int, blocks: int) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of ``TransformerNet(width, blocks)``, found
    without allocating them (on PyTorch's meta device)."""
    with torch.device("meta"):
        net = TransformerNet(width, blocks)
    return {name: tuple(t.shape) for name, t in net.state_dict().items()}


def make_network(width: int, blocks: int, seed: int) -> TransformerNet:
    """A network with weights drawn from ``seed`` alone (not the global RNG), so the same
    seed gives the same starting weights on every run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TransformerNet(width, blocks)
