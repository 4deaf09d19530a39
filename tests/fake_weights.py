"""Fake VGG weight files in the real layouts, for the weights tests.

The fakes mirror the published files: the same HDF5 groups, attributes, dataset names,
float32 dtype, Keras ``(kh, kw, in, out)`` kernels and the real VGG shapes (so the loader's
shape checks are the real ones). To stay small on disk, the Keras fakes store kernels as
gzip-chunked datasets that are mostly their fill value; HDF5 reads them like the published
contiguous ones. A few known values at chosen indices show where each weight lands.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch

# Written out independently of the module under test (from torchvision's vgg.py layout:
# conv, ReLU pairs with a MaxPool closing each block).
TORCHVISION_CONV_INDICES = {
    "vgg19": (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
    "vgg16": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
}
DEPTHS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}
CHANNELS = (64, 128, 256, 512, 512)


def conv_layers(arch):
    """[(name, in, out)] in forward order."""
    out, in_ch = [], 3
    for b, depth in enumerate(DEPTHS[arch]):
        for i in range(depth):
            out.append((f"block{b + 1}_conv{i + 1}", in_ch, CHANNELS[b]))
            in_ch = CHANNELS[b]
    return out


# --- writers for the real layouts ---------------------------------------------------------


def write_keras_h5(
    path,
    arch="vgg19",
    *,
    keras=1,
    full_model=False,
    values=None,
    skip=(),
    shapes=None,
    backend="tensorflow",
):
    """A Keras weights file as Keras ``save_weights`` writes it.

    keras=1: the published notop files (datasets ``block1_conv1_W_1:0`` directly in the
    layer group, root attribute ``layer_names`` only). keras=2: Keras 2's saver (datasets
    nested as ``block1_conv1/kernel:0``, plus ``backend`` and ``keras_version``).
    ``full_model`` wraps the layers in a ``model_weights`` group as ``model.save`` does.
    ``values`` maps (layer, "kernel"|"bias") to {index: value}, Keras axis order.
    """
    values = values or {}
    shapes = shapes or {}
    layer_names = ["input_1"]
    for b, depth in enumerate(DEPTHS[arch]):
        layer_names += [f"block{b + 1}_conv{i + 1}" for i in range(depth)]
        layer_names.append(f"block{b + 1}_pool")
    layer_names = [n for n in layer_names if n not in skip]
    convs = {name: (i, o) for name, i, o in conv_layers(arch)}
    with h5py.File(path, "w") as f:
        root = f
        if full_model:
            f.attrs["model_config"] = json.dumps({"class_name": "Functional"}).encode()
            f.attrs["keras_version"] = b"2.2.4"
            f.attrs["backend"] = backend.encode()
            root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        if keras == 2:
            root.attrs["backend"] = backend.encode()
            root.attrs["keras_version"] = b"2.2.4"
        for name in layer_names:
            g = root.create_group(name)
            if name not in convs:
                g.attrs["weight_names"] = []  # input and pooling layers: no weights
                continue
            in_ch, out_ch = convs[name]
            if keras == 1:
                wnames = [f"{name}_W_1:0", f"{name}_b_1:0"]
            else:
                wnames = [f"{name}/kernel:0", f"{name}/bias:0"]
            g.attrs["weight_names"] = np.array([w.encode() for w in wnames])
            for wname in wnames:
                part = "bias" if wname in (f"{name}_b_1:0", f"{name}/bias:0") else "kernel"
                shape = shapes.get(
                    (name, part), (3, 3, in_ch, out_ch) if part == "kernel" else (out_ch,)
                )
                if part == "kernel":
                    ds = g.create_dataset(
                        wname, shape, "float32", fillvalue=0.0, chunks=True, compression="gzip"
                    )
                else:
                    ds = g.create_dataset(wname, data=np.zeros(shape, np.float32))
                for index, value in values.get((name, part), {}).items():
                    ds[index] = value
    return Path(path)


def torchvision_state(arch="vgg19", values=None, drop=()):
    """A torchvision ``vgg19()``/``vgg16()`` state dict, classifier included.

    The classifier's 400 MB are stride-0 views of one element: same keys, shapes and dtype,
    almost nothing on disk.
    """
    values = values or {}
    state = OrderedDict()
    for i, (_, in_ch, out_ch) in zip(
        TORCHVISION_CONV_INDICES[arch], conv_layers(arch), strict=True
    ):
        for part, shape in (("weight", (out_ch, in_ch, 3, 3)), ("bias", (out_ch,))):
            key = f"features.{i}.{part}"
            if key in drop:
                continue
            t = torch.zeros(shape)
            for index, value in values.get(key, {}).items():
                t[index] = value
            state[key] = t
    for i, (out_f, in_f) in zip(
        (0, 3, 6), ((4096, 25088), (4096, 4096), (1000, 4096)), strict=True
    ):
        state[f"classifier.{i}.weight"] = torch.zeros(1).expand(out_f, in_f)
        state[f"classifier.{i}.bias"] = torch.zeros(out_f)
    return state


def write_torchvision_pth(path, arch="vgg19", **kwargs):
    # The published vgg19-dcbb9e9d.pth predates torch's zip format: write the legacy one.
    torch.save(torchvision_state(arch, **kwargs), path, _use_new_zipfile_serialization=False)
    return Path(path)


def our_state(arch, values=None):
    values = values or {}
    state = {}
    for name, in_ch, out_ch in conv_layers(arch):
        state[f"{name}.weight"] = torch.zeros(out_ch, in_ch, 3, 3)
        state[f"{name}.bias"] = torch.zeros(out_ch)
    for key, entries in values.items():
        for index, value in entries.items():
            state[key][index] = value
    return state


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def assert_one_line_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, message
