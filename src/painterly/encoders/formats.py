"""Reading VGG weight files of any supported layout into one state dict.

Every reader returns the same thing, a state dict in *our* naming (``block1_conv1.weight``
as ``(out, in, 3, 3)`` float32, ``block1_conv1.bias`` as ``(out,)``), whatever the file's
layout:

- ``keras-h5``: legacy Keras HDF5 weights. The root (or the ``model_weights`` group of a
  full-model save) has an attribute ``layer_names``; each layer is a group whose attribute
  ``weight_names`` lists its datasets in order. Keras 1 files (the published ``notop``
  files) name them ``block1_conv1_W_1:0``; Keras 2 files nest them as
  ``block1_conv1/kernel:0``. Like Keras' own loader we follow ``weight_names`` and never
  guess dataset names. Kernels are ``(kh, kw, in, out)``.
- ``torch-pth``: ``torch.load(weights_only=True)`` of torchvision's ``features.{i}.*`` keys
  or of keys already in our naming.
- ``safetensors``: either naming.

Every failure the user can meet, a corrupt or foreign file included, raises
:class:`~painterly.errors.WeightsError` with one line that names the file and says what to
do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from painterly.encoders.vgg import BLOCK_CHANNELS, BLOCK_DEPTHS, layer_names
from painterly.errors import WeightsError

# --- architecture facts -------------------------------------------------------------------

# The architecture itself is defined once, in vgg.py.
VGG_LAYERS: dict[str, tuple[str, ...]] = {arch: layer_names(arch) for arch in BLOCK_DEPTHS}
VGG_CHANNELS: dict[str, int] = {
    name: BLOCK_CHANNELS[int(name[5]) - 1] for name in VGG_LAYERS["vgg19"]
}

# Index of each conv in torchvision's ``features`` Sequential (conv, ReLU, ..., MaxPool).
_TORCHVISION_INDEX: dict[str, dict[int, str]] = {}
for _arch, _depths in BLOCK_DEPTHS.items():
    _index, _names, _i = {}, iter(VGG_LAYERS[_arch]), 0
    for _depth in _depths:
        for _ in range(_depth):
            _index[_i] = next(_names)
            _i += 2  # conv, ReLU
        _i += 1  # MaxPool2d
    _TORCHVISION_INDEX[_arch] = _index


def _expected_shapes(arch: str) -> dict[str, tuple[int, int]]:
    """layer name -> (out, in) channels."""
    shapes, in_ch = {}, 3
    for name in VGG_LAYERS[arch]:
        shapes[name] = (VGG_CHANNELS[name], in_ch)
        in_ch = VGG_CHANNELS[name]
    return shapes


# --- reading weight files -----------------------------------------------------------------

_LAYER_NAME = re.compile(r"block\d+_conv\d+")
_OUR_KEY = re.compile(r"(block\d+_conv\d+)\.(weight|bias)")
_TV_KEY = re.compile(r"features\.(\d+)\.(weight|bias)")


@dataclass
class _Raw:
    """Conv layers as found in a file, before the architecture is known."""

    layers: dict[object, dict[str, torch.Tensor]]  # id -> {"weight"|"bias": tensor as stored}
    torchvision: bool  # ids are indices into ``features`` rather than layer names
    keras_kernels: bool  # weights are stored (kh, kw, in, out)


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise WeightsError(f"cannot read weights file {path} ({err.strerror})") from err
    if h5py.is_hdf5(path):
        return "keras-h5"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # zip (torch >= 1.6) or pickle
        return "torch-pth"
    if len(head) >= 9 and head[8:9] == b"{":
        # safetensors: little-endian u64 header length, then a JSON header
        if int.from_bytes(head[:8], "little") < path.stat().st_size:
            return "safetensors"
    raise WeightsError(
        f"{path} is not a Keras HDF5, PyTorch or safetensors weights file (it starts with"
        f" {head[:8]!r}); if it was downloaded, delete it and download it again"
    )


def _h5_attr_strings(obj: h5py.HLObject, name: str, path: Path) -> list[str] | None:
    """A string-list attribute, also when Keras split it into ``name0``, ``name1``, ...

    (Keras does that when the list would exceed HDF5's 64 KiB object-header limit.)
    None if the attribute is absent; WeightsError if it is not a list of text.
    """
    if name in obj.attrs:
        parts = [obj.attrs[name]]
    elif f"{name}0" in obj.attrs:
        parts, i = [], 0
        while f"{name}{i}" in obj.attrs:
            parts.append(obj.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    values = []
    for part in parts:
        array = np.asarray(part)
        if array.ndim != 1:
            raise WeightsError(f"{path}: the {name} attribute is not a list of names")
        for value in array:
            if isinstance(value, bytes):
                value = value.decode("utf8")
            if not isinstance(value, str):
                raise WeightsError(f"{path}: the {name} attribute is not a list of names")
            values.append(value)
    return values


# The largest VGG weight (a block5 kernel, 3x3x512x512). A dataset claiming more is not a VGG
# layer's, and reading it first could exhaust the memory before any shape check.
_MAX_ELEMENTS = 3 * 3 * 512 * 512


def _read_keras_h5(path: Path) -> _Raw:
    try:
        return _read_keras_groups(path)
    except WeightsError:
        raise
    except Exception as err:  # h5py raises KeyError, RuntimeError, OSError... on damage
        raise WeightsError(
            f"cannot read {path} as Keras weights, the file is damaged ({_first_line(err)});"
            " if it was downloaded, delete it and download it again"
        ) from err


def _read_keras_groups(path: Path) -> _Raw:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise WeightsError(f"cannot open {path} as an HDF5 file ({_first_line(err)})") from err
    with f:
        root = f
        if "layer_names" not in f.attrs and isinstance(f.get("model_weights"), h5py.Group):
            root = f["model_weights"]  # a full-model save
        layer_names = _h5_attr_strings(root, "layer_names", path)
        if layer_names is None:
            raise WeightsError(
                f"{path} is an HDF5 file but not Keras weights (no layer_names attribute)"
            )
        backend = root.attrs.get("backend", b"tensorflow")
        if (backend.decode() if isinstance(backend, bytes) else str(backend)) == "theano":
            # Theano kernels are flipped convolutions; the *_tf_kernels files are not.
            raise WeightsError(
                f"{path} holds Theano-ordered kernels; use the *_tf_dim_ordering_tf_kernels file"
            )
        layers: dict[object, dict[str, torch.Tensor]] = {}
        for lname in layer_names:
            if not _LAYER_NAME.fullmatch(lname):
                continue  # input, pooling and classifier layers
            group = root.get(lname)
            if not isinstance(group, h5py.Group):
                raise WeightsError(
                    f"{path}: layer_names lists {lname} but the file has no such group"
                )
            tensors = {}
            wnames = _h5_attr_strings(group, "weight_names", path) or []
            for wname in wnames:
                dataset = group.get(wname)
                if not isinstance(dataset, h5py.Dataset):
                    raise WeightsError(
                        f"{path}: {lname} lists weight {wname} but has no such dataset"
                    )
                if dataset.dtype.kind != "f":
                    what = "text" if h5py.check_string_dtype(dataset.dtype) else dataset.dtype
                    raise WeightsError(f"{path}: {lname} weight {wname} holds {what}, not floats")
                if dataset.size > _MAX_ELEMENTS:
                    raise WeightsError(
                        f"{path}: {lname} weight {wname} has shape {dataset.shape},"
                        " too large for a VGG layer"
                    )
                array = np.asarray(dataset)
                # Kernel and bias told apart by rank, not by Keras 1 vs 2 naming.
                part = "weight" if array.ndim == 4 else "bias"
                if part in tensors:
                    raise WeightsError(
                        f"{path}: {lname} has {len(wnames)} weights, expected a kernel and a bias"
                    )
                tensors[part] = torch.from_numpy(array)
            layers[lname] = tensors
        return _Raw(layers, torchvision=False, keras_kernels=True)


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message``, for errors from libraries with long messages."""
    # A KeyError's str() is its message in quotes.
    text = str(err.args[0] if isinstance(err, KeyError) and err.args else err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _read_torch(path: Path) -> _Raw:
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        # mmap keeps a 548 MB torchvision file (mostly classifier) out of memory.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as err:  # torch raises many types for a corrupt or foreign pickle
        raise WeightsError(f"cannot read {path} as PyTorch weights ({_first_line(err)})") from err
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return _from_keys(path, state)


def _read_safetensors(path: Path) -> _Raw:
    try:
        from safetensors import safe_open
    except ImportError as err:
        raise WeightsError(
            f"reading {path} needs the safetensors package: pip install 'painterly[safetensors]'"
        ) from err
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = [k for k in f.keys() if _OUR_KEY.fullmatch(k) or _TV_KEY.fullmatch(k)]
            _reject_batchnorm(path, f.keys())
            state = {k: f.get_tensor(k) for k in keys}
    except WeightsError:
        raise
    except Exception as err:  # safetensors raises its own error type for corrupt files
        raise WeightsError(f"cannot read {path} as safetensors ({err})") from err
    return _from_keys(path, state)


def _reject_batchnorm(path: Path, keys) -> None:
    # vgg19_bn interleaves BatchNorm layers, so its ``features`` indices mean other things.
    if any(isinstance(k, str) and k.endswith(".running_mean") for k in keys):
        raise WeightsError(
            f"{path} is a batch-norm VGG (e.g. vgg19_bn); use plain VGG weights instead"
        )


def _from_keys(path: Path, state: Mapping[str, object]) -> _Raw:
    """Group ``name.weight``/``name.bias`` keys, in our naming or torchvision's."""
    _reject_batchnorm(path, state.keys())
    ours: dict[object, dict[str, torch.Tensor]] = {}
    tv: dict[object, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue
        if m := _OUR_KEY.fullmatch(key):
            ours.setdefault(m.group(1), {})[m.group(2)] = value
        elif m := _TV_KEY.fullmatch(key):
            tv.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if ours:
        return _Raw(ours, torchvision=False, keras_kernels=False)
    if tv:
        return _Raw(tv, torchvision=True, keras_kernels=False)
    raise WeightsError(
        f"{path} has no VGG conv weights (expected keys like block1_conv1.weight or"
        " features.0.weight)"
    )


def _infer_arch(raw: _Raw) -> str:
    """The architecture whose layer set differs least from the file's (ties: vgg19)."""

    def distance(arch: str) -> int:
        ids = _TORCHVISION_INDEX[arch] if raw.torchvision else VGG_LAYERS[arch]
        return len(set(raw.layers).symmetric_difference(ids))

    return min(("vgg19", "vgg16"), key=distance)


def _label(raw: _Raw, layer_id: object, name: str, part: str) -> str:
    if raw.torchvision:
        return f"features.{layer_id}.{part} ({name})"
    return f"{name} {'kernel' if part == 'weight' else 'bias'}"


def _convert(path: Path, raw: _Raw, arch: str) -> dict[str, torch.Tensor]:
    """Name, check and convert every conv layer of ``arch`` to ``(out, in, kh, kw)`` float32."""
    names: dict[int, str] | dict[str, str]  # layer id (as raw.layers has it) -> name
    if raw.torchvision:
        names = _TORCHVISION_INDEX[arch]
    else:
        names = {n: n for n in VGG_LAYERS[arch]}
    for layer_id in raw.layers:
        if layer_id not in names:
            what = f"features.{layer_id}" if raw.torchvision else layer_id
            raise WeightsError(f"{path} has conv layer {what}, which {arch} does not have")
    shapes = _expected_shapes(arch)
    state = {}
    for layer_id, name in names.items():
        if layer_id not in raw.layers:
            raise WeightsError(f"{path}: missing layer {name}; is it a complete {arch} file?")
        out_ch, in_ch = shapes[name]
        kernel_shape = (3, 3, in_ch, out_ch) if raw.keras_kernels else (out_ch, in_ch, 3, 3)
        for part, expected in (("weight", kernel_shape), ("bias", (out_ch,))):
            label = _label(raw, layer_id, name, part)
            tensor = raw.layers[layer_id].get(part)
            if tensor is None:
                raise WeightsError(f"{path}: missing {label}")
            if tuple(tensor.shape) != expected:
                raise WeightsError(
                    f"{path}: {label} has shape {tuple(tensor.shape)}, expected {expected}"
                )
            if not tensor.is_floating_point():
                raise WeightsError(f"{path}: {label} has dtype {tensor.dtype}, expected floats")
            if part == "weight" and raw.keras_kernels:
                # (kh, kw, in, out) -> (out, in, kh, kw). Keras' TensorFlow kernels compute a
                # cross-correlation exactly like torch's conv2d, so no spatial flip; the input
                # channels stay in the file's order (BGR for Caffe-trained weights).
                tensor = tensor.permute(3, 2, 0, 1)
            # A fresh contiguous float32 copy: it also detaches from a memory-mapped file.
            tensor = tensor.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
            # The sum is finite iff every element is (barring overflow, re-checked exactly),
            # and summing is much faster than an elementwise isfinite on 80 MB.
            if not torch.isfinite(tensor.sum()) and not torch.isfinite(tensor).all():
                raise WeightsError(f"{path}: {label} contains NaN or infinite values")
            state[f"{name}.{part}"] = tensor
    return state


_READERS = {"keras-h5": _read_keras_h5, "torch-pth": _read_torch, "safetensors": _read_safetensors}


def load_state_dict(
    path: str | os.PathLike, arch: str | None = None
) -> tuple[str, dict[str, torch.Tensor]]:
    """Read a VGG weight file of any supported layout into ``(arch, state)``.

    ``state`` maps ``block1_conv1.weight`` to an ``(out, in, 3, 3)`` float32 tensor and
    ``block1_conv1.bias`` to ``(out,)``, for every conv layer of ``arch``; classifier
    weights are ignored. The layout is detected from the file's content, and ``arch``
    (``vgg19`` or ``vgg16``) from its layers when not given.
    """
    path = Path(path).expanduser()
    if arch is not None and arch not in VGG_LAYERS:
        raise WeightsError(f"unknown architecture '{arch}'; choose one of {', '.join(VGG_LAYERS)}")
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise WeightsError(f"weights file {path} {problem}")
    raw = _READERS[_sniff(path)](path)
    arch = arch or _infer_arch(raw)
    return arch, _convert(path, raw, arch)
