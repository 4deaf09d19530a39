"""Encoders: frozen networks that turn images into named feature maps.

:func:`load_encoder` is the one entry point. It resolves a weights choice (``auto``, a
registry name, a file path, or ``offline``) to a network plus the preprocessing it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from painterly.encoders import cache, offline
from painterly.encoders.formats import load_state_dict
from painterly.encoders.preprocessing import BY_NAME, CAFFE, Preprocessing
from painterly.encoders.registry import REGISTRY
from painterly.encoders.vgg import VGG, layer_names, resolve_layer
from painterly.errors import WeightsError

WEIGHT_FILE_SUFFIXES = (".h5", ".hdf5", ".pth", ".pt", ".safetensors")
OFFLINE = "offline"  # the offline encoder (painterly.encoders.offline)
ALIASES = {"random": OFFLINE}  # another name users type for the offline encoder


def canonical_weights(weights: str) -> str:
    """The name a weights choice goes by (``random`` -> ``offline``); others unchanged."""
    return ALIASES.get(weights, weights)


@dataclass
class Encoder:
    """A frozen network and what it needs to be fed."""

    net: nn.Module  # forward(x, layers) -> {name: (N, C, H, W)}
    preprocessing: Preprocessing
    name: str  # what the user would type to get this encoder again
    arch: str

    def features(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return self.net(x, layers)

    def to(self, device: torch.device | str) -> Encoder:
        """Move the network to ``device`` in the memory layout its convolutions run
        fastest in there, and return ``self``.

        NHWC (channels-last) on CUDA and CPUs: cuDNN's tensor-core convolutions want it,
        and so do oneDNN's on AVX-512 CPUs (a VGG19 step at 512 px: 1.59 s against
        1.90 s NCHW on two Xeon cores). Feature maps then come out NHWC too, targets
        included, and :func:`painterly.losses.gram` keeps that layout through its
        backward. The 3-channel image itself stays NCHW (L-BFGS flattens it with .view).
        """
        device = torch.device(device)
        self.net.to(device)
        if device.type in ("cuda", "cpu"):
            # Module.to takes memory_format at run time; torch's overloads leave it out.
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return self


def arch_of(weights: str) -> str:
    """The architecture whose layer names a weights choice uses, before it is loaded.

    The offline encoder names its own layers; everything else uses VGG19's Keras names (a
    VGG16 file is caught once loaded, see ``Encoder.arch``).
    """
    return offline.ARCH if canonical_weights(weights) == OFFLINE else "vgg19"


def layer_order(arch: str) -> tuple[str, ...]:
    """Every layer name of ``arch`` in forward order."""
    return offline.LAYER_NAMES if arch == offline.ARCH else layer_names(arch)


def weights_choices() -> list[str]:
    """What ``--weights`` takes by name (a file path works too), for forms and help."""
    return ["auto", OFFLINE, "random-vgg19", *REGISTRY]


def all_layer_names() -> list[str]:
    """VGG19's layer names, then the offline encoder's own (VGG names also work with it)."""
    return [*layer_names("vgg19"), *offline.LAYER_NAMES]


def pretrained_cached(name: str = "vgg19") -> bool:
    """Whether a genuine copy of the weight set ``name`` is cached (hashed on first use)."""
    return cache.weights_cached(name)


def canonical_layer(name: str, arch: str = "vgg19") -> str:
    """The canonical name of layer ``name`` in ``arch``; OptionsError if it has none."""
    return offline.resolve_layer(name) if arch == offline.ARCH else resolve_layer(name, arch)


def deepest(layers, arch: str = "vgg19") -> str:
    """The deepest of ``layers``, so the network can be truncated after it."""
    order = layer_order(arch)
    return max((canonical_layer(n, arch) for n in layers), key=order.index)


def _from_state(arch: str, state: dict, upto: str, pooling: str) -> VGG:
    net = VGG(arch, upto=upto, pooling=pooling)
    wanted = {k: v for k, v in state.items() if k.split(".")[0] in net.names}
    net.load_state_dict(wanted, strict=True)
    return net


def _pretrained(name: str, upto: str, pooling: str, progress: bool, timeout: float) -> Encoder:
    ws = REGISTRY[name]
    path = cache.checked_path(ws) or cache.download(ws, progress=progress, timeout=timeout)
    arch, state = load_state_dict(path, ws.arch)
    net = _from_state(arch, state, deepest([upto], arch), pooling)
    return Encoder(net, BY_NAME[ws.preprocessing], name, arch)


def _from_file(path: Path, upto: str, pooling: str) -> Encoder:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    arch, state = load_state_dict(path)
    # A .h5 file is Keras' layout and expects Caffe preprocessing; torch files expect
    # torchvision's normalisation.
    pre = CAFFE if path.suffix.lower() in (".h5", ".hdf5") else BY_NAME["torch"]
    net = _from_state(arch, state, deepest([upto], arch), pooling)
    return Encoder(net, pre, str(path), arch)


@dataclass(frozen=True)
class Fallback:
    """Why ``auto`` gave way to the offline encoder."""

    reason: str  # the one-line error behind it
    corrupt: bool = False  # a cached file failed its hash (else: none cached, no download)

    def notice(self, instead: str) -> str:
        """What to tell the user: what happened, that ``instead`` runs, and the fix."""
        if self.corrupt:
            return f"{self.reason}; using {instead} until then"
        return (
            "pretrained VGG19 weights are not cached and could not be downloaded; "
            f"using {instead}. For the real ones run `painterly weights fetch vgg19`, "
            "or download them yourself and `painterly weights import FILE`"
        )


def resolve_weights(weights: str, *, progress: bool = True) -> tuple[str, Fallback | None]:
    """Turn ``auto`` into a concrete choice: ``(name, why it fell back or None)``.

    ``auto`` means the pretrained VGG19 if a genuine copy is cached or can be downloaded
    now, and the offline encoder otherwise; a corrupt cached copy is left alone, not used.
    Every other choice is returned under its canonical name.
    """
    if weights != "auto":
        return canonical_weights(weights), None
    ws = REGISTRY["vgg19"]
    try:
        if cache.checked_path(ws):
            return "vgg19", None
    except WeightsError as err:
        return OFFLINE, Fallback(str(err), corrupt=True)
    try:
        cache.download(ws, progress=progress, timeout=10.0)
    except WeightsError as err:
        return OFFLINE, Fallback(str(err))
    return "vgg19", None


def load_encoder(
    weights: str,
    *,
    upto: str | None = None,
    pooling: str = "max",
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Encoder:
    """Load ``weights`` (a registry name, a file path or ``offline``) as an :class:`Encoder`
    on ``device``, truncated after ``upto`` (default: the whole network). Never falls
    back: it works or raises :class:`WeightsError`. Use :func:`resolve_weights` first to
    handle ``auto``. ``offline`` (alias ``random``) is the offline encoder
    (:mod:`painterly.encoders.offline`): its layers are ``luma1..luma3`` and
    ``level1..level5``, it is drawn from ``seed`` and it has no pooling choice (``pooling``
    is ignored for it).
    """
    if weights == "random-vgg19":
        # Plain VGG19 with He-scaled random weights: VGG's layer names and cost, nothing
        # downloaded. The report uses it, and the benchmarks time VGG19 with it.
        net: nn.Module = offline.random_vgg(seed, deepest([upto or "block5_conv4"]), pooling)
        return Encoder(net, CAFFE, "random-vgg19", "vgg19").to(device)
    if canonical_weights(weights) == OFFLINE:
        net = offline.OfflineNet(seed, deepest([upto or offline.LAYER_NAMES[-1]], offline.ARCH))
        return Encoder(net, offline.PREPROCESSING, OFFLINE, offline.ARCH).to(device)
    upto = upto or "block5_conv4"
    if weights in REGISTRY:
        enc = _pretrained(weights, upto, pooling, progress, timeout=30.0)
    elif weights.lower().endswith(WEIGHT_FILE_SUFFIXES) or Path(weights).exists():
        enc = _from_file(Path(weights).expanduser(), upto, pooling)
    else:
        known = ", ".join(["auto", OFFLINE, "random-vgg19", *REGISTRY])
        raise WeightsError(f"unknown weights '{weights}'; choose one of {known} or a file path")
    return enc.to(device)
