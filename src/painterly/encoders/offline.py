"""The offline encoder: a small random network designed for style transfer, drawn from a seed.

Nothing is downloaded or shipped. The weights are drawn at run time on the CPU from
``torch.Generator().manual_seed(seed)``, so a seed gives the same weights on every machine;
they are then moved to the run's device.

Why not simply a random VGG19 (:func:`random_vgg`, ``--weights random-vgg19``)? It is slow
on a CPU (305 GFLOP per step at 512 px), and its deep layers answer as much to the photo's
colours as to its shapes, so its content loss fights the painting's palette and the style
wins by repainting the photo (edge correlation with the photo 0.37 in the gallery, against
0.84 here). :class:`OfflineNet` is built from what the literature and our measurements
(docs/offline-encoder.md) say a random network needs to carry style:

* **Opponent-colour whitening in front** (a fixed 3x3 map to luminance, red-green and
  blue-yellow, each scaled to unit spread for typical photos). Photo RGB channels are
  ~90% correlated, so random filters on raw RGB see mostly luminance; whitened input lets
  the Gram matrices carry the painting's palette as strongly as its strokes.
* **One 3x3 convolution per scale, five scales, widths 32-64-128-256-256**, like VGG's
  block structure with one convolution per block: ``level5`` sees about 110 px, at a
  fifteenth of VGG19's cost (about 20 GFLOP per step at 512 px). Ustyuzhaninov et al. (ICLR
  2017) show that random filters carry texture if they cover many scales; here the scales
  come from the pyramid instead of 3-55 px kernels, which are too slow on a CPU.
* **Anti-aliased downsampling** (a [1, 3, 3, 1] binomial blur with stride 2, as in Zhang,
  "Making convolutional networks shift-invariant again", ICML 2019) instead of 2x2
  pooling: with plain pooling the optimiser paints a visible 2/4/8/16 px grid into the
  image, because the gradient of a 2x2 block average is constant over the block.
* **Each channel calibrated** so that its pre-activation has zero mean and unit variance on
  seeded 1/f ("pink") noise, which has the spectrum of natural images. With Kaiming
  weights and zero biases, 8-11% of the channels of levels 2-5 never fire on a photo and
  6-21% fire almost everywhere (Tübingen, 256 px): dead or linear, they add little to the
  Gram matrices. Calibrated: 1-2% and 5-9%. Centred channels are about half on, where
  the ReLU is most informative (the aim Wang et al., CVPR 2021, reach with a softmax on
  peaky ResNet activations). It also keeps every layer at one scale at any input size.
* **A separate content branch, ``luma1..luma3``**: the luminance alone, standardised per
  image (zero mean, unit variance), blurred down 0, 1 or 2 times and passed through two
  calibrated random 3x3 layers. A random net's colour features change completely when
  the palette changes, so a content loss on them fights the style (the output then keeps
  whatever the optimiser has not yet repainted, and the style weight stops mattering).
  The luminance branch is blind to colour and to global brightness and contrast, so the
  content loss keeps shapes and edges and lets the painting's colours in.

The calibration constants are rounded to a coarse grid (1/64 of an octave for scales,
1/256 for biases) after a float64 pass, so that the last-bit differences of convolution
kernels between CPUs cannot change a weight: the same seed gives bit-identical weights
everywhere (the features are then identical on one machine and equal to float rounding
across machines).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from painterly.encoders.preprocessing import Preprocessing
from painterly.encoders.vgg import VGG
from painterly.errors import OptionsError
from painterly.precision import stem

ARCH = "offline"
WIDTHS = (32, 64, 128, 256, 256)  # channels of level1..level5
LUMA_WIDTHS = (32, 32)  # channels of the two layers of the content branch
STYLE_LAYERS = tuple(f"level{i + 1}" for i in range(len(WIDTHS)))
LUMA_LAYERS = ("luma1", "luma2", "luma3")  # the content branch at full, 1/2 and 1/4 size
# Forward order, used to truncate the network after the deepest layer a run asks for.
# The content branch is cheap and always built, so it counts as the shallowest.
LAYER_NAMES = LUMA_LAYERS + STYLE_LAYERS

# RGB in 0..1 centred on mid grey; the net does its own colour whitening.
PREPROCESSING = Preprocessing("offline", False, 1.0, (0.45, 0.45, 0.45), (1.0, 1.0, 1.0))

# Luminance, red-green, blue-yellow, each divided by its typical spread in photos and
# paintings (standard deviations measured on the bundled examples: 0.13-0.22, 0.02-0.08
# and 0.04-0.11 in 0..1 units).
_OPPONENT = torch.tensor(
    [[1 / 3, 1 / 3, 1 / 3], [1 / 2, -1 / 2, 0.0], [1 / 4, 1 / 4, -1 / 2]], dtype=torch.float64
) / torch.tensor([0.18, 0.05, 0.07], dtype=torch.float64).view(3, 1)

_CALIBRATION_NOISE_SEED = 20170424  # fixed: the probe image does not depend on the seed
_CALIBRATION_SIZE = 192


# VGG's names for a layer at 1/2**(K-1) of the input size: block4_conv2, conv4_2, relu4_2.
_VGG_NAME = re.compile(r"^(?:block([1-5])_conv\d|(?:conv|relu)([1-5])_\d)$")


def resolve_layer(name: str) -> str:
    """The offline encoder's name for layer ``name``; OptionsError with a suggestion if none.

    VGG names are accepted for the level at the same scale (``block4_conv2`` -> ``level4``)
    so that options written for VGG19 still run; the ``offline`` preset's own layers, with
    content from the colour-blind ``luma1``, are what it is designed for.
    """
    if name in LAYER_NAMES:
        return name
    vgg = _VGG_NAME.match(name)
    if vgg:
        return f"level{vgg.group(1) or vgg.group(2)}"
    close = difflib.get_close_matches(name, LAYER_NAMES, n=1)
    hint = (
        f"did you mean {close[0]}?"
        if close
        else f"it has {', '.join(LUMA_LAYERS)} (content) and {', '.join(STYLE_LAYERS)} (style)"
    )
    raise OptionsError(f"unknown layer '{name}' for the offline encoder; {hint}")


def pink_noise(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 3, size, size) float64 noise with a 1/f amplitude spectrum, unit variance per
    channel: the second-order statistics of natural images, without any image."""
    gen = torch.Generator().manual_seed(seed)
    white = torch.randn(n, 3, size, size, generator=gen, dtype=torch.float64)
    fy = torch.fft.fftfreq(size, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.rfftfreq(size, dtype=torch.float64).view(1, -1)
    f = torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / size)
    out = torch.fft.irfft2(torch.fft.rfft2(white) / f, s=(size, size))
    out = out - out.mean((2, 3), keepdim=True)
    return out / out.std((2, 3), keepdim=True)


def _blur_down(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Binomial [1, 3, 3, 1]^2 / 64 blur with stride 2 (anti-aliased halving)."""
    c = x.shape[1]
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(x, kernel.expand(c, 1, 4, 4), stride=2, groups=c)


def _conv(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    # Reflect padding: zero padding would make the border a dark frame that the style
    # loss then paints into the output's edges.
    return conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


def _standardise(y: torch.Tensor) -> torch.Tensor:
    """Per image: zero mean, unit variance (blind to global brightness and contrast).

    The floor (a spread of 0.1, a tenth of a typical photo's) keeps a nearly flat photo
    from having its noise blown up into structure that the content loss would then keep.
    """
    y = y - y.mean((2, 3), keepdim=True)
    return y / (y.pow(2).mean((2, 3), keepdim=True) + 1e-2).sqrt()


def _calibration(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, bias) that give ``z`` zero mean and unit variance, rounded to a
    coarse grid (1/64 octave, 1/256) so that they come out the same on every CPU."""
    scale = torch.exp2(torch.round(-torch.log2(z.std((0, 2, 3))) * 64) / 64)
    bias = torch.round(-z.mean((0, 2, 3)) * scale * 256) / 256
    return scale, bias


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    """``conv``'s bias, which every convolution here has (nn.Conv2d's default)."""
    assert conv.bias is not None
    return conv.bias


def _draw(gen: torch.Generator, cin: int, cout: int) -> nn.Conv2d:
    """Kaiming-normal (fan-in, ReLU gain) 3x3 weights in float64; bias set later."""
    conv = nn.Conv2d(cin, cout, 3, dtype=torch.float64)
    w = torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64)
    conv.weight.data.copy_(w * math.sqrt(2.0 / (cin * 9)))
    _bias(conv).data.zero_()
    return conv


@functools.lru_cache(maxsize=4)
@torch.no_grad()
def _calibrated_weights(seed: int):
    """``(levels, luma)``: the float32 (weight, bias) of every convolution for ``seed``.

    Every weight is drawn in a fixed order (levels, then the branch), so a truncated net
    has exactly the layers of the full one. Then every channel gets zero mean and unit
    variance before its ReLU on pink noise, layer by layer in float64, and the constants
    are rounded. This takes seconds, so a process computes it once per seed (a server
    runs many jobs) and every net built from it gets its own copy.
    """
    gen = torch.Generator().manual_seed(seed)
    levels, cin = [], 3
    for width in WIDTHS:
        levels.append(_draw(gen, cin, width))
        cin = width
    luma, cin = [], 1
    for width in LUMA_WIDTHS:
        luma.append(_draw(gen, cin, width))
        cin = width
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
    blur = (k[:, None] * k[None, :]).view(1, 1, 4, 4)
    probe = pink_noise(1, _CALIBRATION_SIZE, _CALIBRATION_NOISE_SEED)

    def settle(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        scale, bias = _calibration(_conv(x, conv))
        conv.weight.data.mul_(scale.view(-1, 1, 1, 1))
        _bias(conv).data.copy_(bias)
        return F.relu(_conv(x, conv))

    x = probe  # already whitened: unit variance per opponent channel
    for i, conv in enumerate(levels):
        x = settle(conv, _blur_down(x, blur) if i else x)
    y = _blur_down(_standardise(probe[:, :1]), blur)  # calibrated at luma2's scale
    for conv in luma:
        y = settle(conv, y)
    return tuple(
        tuple((c.weight.float(), _bias(c).float()) for c in group) for group in (levels, luma)
    )


def _conv_from(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3)
    conv.weight.data.copy_(weight)
    _bias(conv).data.copy_(bias)
    return conv


class OfflineNet(nn.Module):
    """The offline encoder's network: ``forward(x, layers) -> {name: (N, C, H, W)}``.

    Style layers ``level1..level5`` (full size down to 1/16, after ReLU) and content layers
    ``luma1..luma3`` (the luminance branch at full, 1/2 and 1/4 size). Built only up to
    ``upto``; the weights of a layer do not depend on ``upto``.
    """

    layer_names = LAYER_NAMES
    blur: torch.Tensor  # buffers, registered in __init__
    opponent: torch.Tensor

    def __init__(self, seed: int = 0, upto: str = STYLE_LAYERS[-1]):
        super().__init__()
        upto = resolve_layer(upto)
        k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
        self.register_buffer("blur", (k[:, None] * k[None, :]).view(1, 1, 4, 4).float())
        self.register_buffer("opponent", _OPPONENT.float().view(3, 3, 1, 1))
        levels, luma = ([_conv_from(w, b) for w, b in group] for group in _calibrated_weights(seed))
        depth = LAYER_NAMES.index(upto) - len(LUMA_LAYERS) + 1
        self.names = STYLE_LAYERS[: max(depth, 0)]
        self.levels = nn.ModuleList(levels[: len(self.names)])
        self.luma = nn.ModuleList(luma)
        self.requires_grad_(False)
        self.eval()

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.opponent.to(x.dtype))

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of the requested layers for a (N, 3, H, W) preprocessed input."""
        wanted = {resolve_layer(n) for n in layers}
        missing = wanted.difference(LUMA_LAYERS, self.names)
        if missing:
            raise OptionsError(f"layer {sorted(missing)[0]} is deeper than this network was built")
        x = stem(self._whiten, x)  # the image's first layer: float32 under any autocast
        out: dict[str, torch.Tensor] = {}
        deepest_luma = max((LUMA_LAYERS.index(n) for n in wanted if n in LUMA_LAYERS), default=-1)
        if deepest_luma >= 0:
            y = _standardise(x[:, :1])
            blur = self.blur.to(x.dtype)
            for i, name in enumerate(LUMA_LAYERS[: deepest_luma + 1]):
                if i:
                    y = stem(lambda t: _blur_down(t, blur.float()), y)
                if name in wanted:
                    h = F.relu(stem(lambda t: _conv(t, self.luma[0]), y))
                    for conv in self.luma[1:]:
                        h = F.relu(_conv(h, conv))
                    out[name] = h
        last = max((self.names.index(n) for n in wanted if n in self.names), default=-1)
        for i in range(last + 1):
            name, conv = self.names[i], self.levels[i]
            if i:
                x = _blur_down(x, self.blur.to(x.dtype))
            x = F.relu(stem(functools.partial(_conv, conv=conv), x) if i == 0 else _conv(x, conv))
            if name in wanted:
                out[name] = x
        return out


def random_vgg(seed: int = 0, upto: str = "block5_conv1", pooling: str = "max") -> VGG:
    """VGG19 with Kaiming-normal (fan-in, ReLU gain) weights and zero biases.

    The offline encoder before :class:`OfflineNet`, kept as the baseline of the gallery and
    the held-out benchmark. PyTorch's default initialisation shrinks activations layer
    after layer, so the deep Gram matrices carry almost nothing; the He scaling keeps their
    variance roughly constant through depth (He, Wang and Hopcroft, NeurIPS 2016).
    """
    net = VGG("vgg19", upto=upto, pooling=pooling)
    gen = torch.Generator().manual_seed(seed)
    for name in net.names:
        conv = getattr(net, name)
        fan_in = conv.in_channels * 9
        w = torch.randn(conv.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in)
        conv.weight.copy_(w)
        conv.bias.zero_()
    return net
