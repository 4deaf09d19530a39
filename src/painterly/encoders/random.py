"""The offline encoder: a VGG19 whose weights are drawn at run time from a fixed seed.

Nothing is downloaded or shipped; the same seed gives bit-identical weights on every
machine because they are drawn on the CPU with a private generator and only then moved.
"""

from __future__ import annotations

import math

import torch

from painterly.encoders.vgg import VGG


def random_vgg(seed: int = 0, upto: str = "block5_conv1", pooling: str = "max") -> VGG:
    """VGG19 with Kaiming-normal (fan-in, ReLU gain) weights and zero biases.

    PyTorch's default initialisation shrinks activations layer after layer, so the deep
    Gram matrices carry almost nothing; the He scaling keeps their variance roughly
    constant through depth (He, Wang and Hopcroft, NeurIPS 2016).
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
