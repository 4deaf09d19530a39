"""The published weight sets, described as data (like torchvision's weight enums).

A :class:`WeightSet` knows where its file can be downloaded, the hash that identifies the
genuine file, the file's layout, the architecture it fits and the preprocessing the
weights were trained with. :mod:`painterly.encoders.cache` fetches and checks the files,
:mod:`painterly.encoders.formats` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from painterly.errors import WeightsError


@dataclass(frozen=True)
class WeightSet:
    """A published weight file and everything needed to fetch, check and use it."""

    name: str  # registry key
    arch: str  # "vgg19" | "vgg16"
    filename: str
    urls: tuple[str, ...]  # tried in order
    md5: str | None
    sha256_prefix: str | None  # torchvision's convention: leading hex digits of the sha256
    layout: str  # "keras-h5" | "torch-pth" | "safetensors"
    preprocessing: str  # "caffe" (BGR, 0..255, mean-subtracted) | "torch" (RGB 0..1, mean/std)
    size_mb: int  # download size in megabytes (10**6 bytes), rounded
    licence: str  # one line
    description: str  # one line


def _keras(arch: str, md5: str, size_mb: int) -> WeightSet:
    filename = f"{arch}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return WeightSet(
        name=arch,
        arch=arch,
        filename=filename,
        urls=(
            f"https://github.com/fchollet/deep-learning-models/releases/download/v0.1/{filename}",
            f"https://storage.googleapis.com/tensorflow/keras-applications/{arch}/{filename}",
        ),
        md5=md5,
        sha256_prefix=None,
        layout="keras-h5",
        preprocessing="caffe",
        size_mb=size_mb,
        licence=(
            "Creative Commons Attribution: Oxford VGG's original weights (Simonyan & Zisserman"
            " 2015, cite them), ported to Keras by F. Chollet; trained on ImageNet"
        ),
        description=(
            f"Original {arch.upper()} convolutional layers (Keras 'notop' file), as used by"
            " Gatys et al. and Chollet's book"
        ),
    )


REGISTRY: dict[str, WeightSet] = {
    ws.name: ws
    for ws in (
        _keras("vgg19", "253f8cb515780f3b799900260a226db6", 80),
        _keras("vgg16", "6d6bbae143d832006294945121d1f1fc", 59),
        WeightSet(
            name="vgg19-torchvision",
            arch="vgg19",
            filename="vgg19-dcbb9e9d.pth",
            urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
            md5=None,
            sha256_prefix="dcbb9e9d",
            layout="torch-pth",
            preprocessing="torch",
            size_mb=575,
            licence=(
                "no explicit licence: torchvision's code is BSD-3-Clause and it says its"
                " pretrained weights may carry terms from their training data (ImageNet)"
            ),
            description=(
                "torchvision VGG19 IMAGENET1K_V1 (retrained by torchvision, includes the"
                " classifier); stylises differently from the original weights"
            ),
        ),
    )
}


def registry_entry(name: str) -> WeightSet:
    """The weight set called ``name``; WeightsError listing the known names if none."""
    if name not in REGISTRY:
        raise WeightsError(f"unknown weights '{name}'; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]
