"""How each weight set wants its input: the map between RGB in 0..1 and network input.

The optimised variable lives in network-input space, exactly as in the book (which
optimises the preprocessed image and computes its total variation there). Both maps are
affine, so gradients flow through them unchanged in direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_STATS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


@dataclass(frozen=True)
class Preprocessing:
    name: str
    bgr: bool  # flip RGB to BGR before the network
    scale: float  # multiply 0..1 values by this
    mean: tuple[float, float, float]  # subtracted after scaling, in the network's channel order
    std: tuple[float, float, float]  # divided after subtracting

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Made once per device and dtype: a CUDA graph cannot copy from the host.
        key = (self.name, x.device, x.dtype)
        if key not in _STATS:
            _STATS[key] = (
                torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1),
                torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1),
            )
        return _STATS[key]

    def to_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in 0..1 to network input."""
        x = rgb.flip(1) if self.bgr else rgb
        mean, std = self._stats(x)
        return (x * self.scale - mean) / std

    def to_rgb(self, x: torch.Tensor) -> torch.Tensor:
        """Network input back to RGB in 0..1 (not clipped: the optimiser may overshoot)."""
        mean, std = self._stats(x)
        rgb = (x * std + mean) / self.scale
        return rgb.flip(1) if self.bgr else rgb


# Keras vgg19.preprocess_input ("caffe" mode): BGR, 0..255, ImageNet means subtracted.
CAFFE = Preprocessing("caffe", True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision's ImageNet normalisation: RGB, 0..1, per-channel mean and std.
TORCH = Preprocessing("torch", False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

BY_NAME = {p.name: p for p in (CAFFE, TORCH)}
