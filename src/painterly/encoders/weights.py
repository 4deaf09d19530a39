"""Pretrained VGG weights: what exists, where it is cached, how to fetch, check and read it.

A weight set is described as data (:class:`WeightSet`: URLs, hash, layout, the
preprocessing it expects), like torchvision's weight enums. Every reader returns the same
thing, a state dict in *our* naming (``block1_conv1.weight`` as ``(out, in, 3, 3)`` float32,
``block1_conv1.bias`` as ``(out,)``), whatever the file's layout:

- ``keras-h5``: legacy Keras HDF5 weights. The root (or the ``model_weights`` group of a
  full-model save) has an attribute ``layer_names``; each layer is a group whose attribute
  ``weight_names`` lists its datasets in order. Keras 1 files (the published ``notop``
  files) name them ``block1_conv1_W_1:0``; Keras 2 files nest them as
  ``block1_conv1/kernel:0``. Like Keras' own loader we follow ``weight_names`` and never
  guess dataset names. Kernels are ``(kh, kw, in, out)``.
- ``torch-pth``: ``torch.load(weights_only=True)`` of torchvision's ``features.{i}.*`` keys
  or of keys already in our naming.
- ``safetensors``: either naming.

Every failure the user can meet raises :class:`~painterly.errors.WeightsError` with one
line that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
import torch
from tqdm import tqdm

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


# --- the registry -------------------------------------------------------------------------


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

_HINT_IMPORT = "`painterly weights import PATH`"


# --- the cache ----------------------------------------------------------------------------


def cache_dir() -> Path:
    """$PAINTERLY_CACHE, else $XDG_CACHE_HOME/painterly, else ~/.cache/painterly."""
    if os.environ.get("PAINTERLY_CACHE"):
        return Path(os.environ["PAINTERLY_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "painterly"
    return Path.home() / ".cache" / "painterly"


def _weights_dir() -> Path:
    """The directory weight files live in, created on demand."""
    path = cache_dir() / "weights"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsError(
            f"cannot create the cache directory {path} ({err.strerror});"
            " set PAINTERLY_CACHE to a writable directory"
        ) from err
    return path


def weights_cached(name: str) -> bool:
    """Whether the registry's weight set ``name`` is in the cache (nothing downloaded)."""
    return cached_path(REGISTRY[name]) is not None


def cached_path(ws: WeightSet) -> Path | None:
    """The cached file of ``ws`` if it is present (not hash-checked, so this is fast)."""
    path = cache_dir() / "weights" / ws.filename
    return path if path.is_file() else None


@contextmanager
def _temp_file(directory: Path, filename: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A hidden ``.part`` file next to its destination, deleted unless the caller renames it.

    Living in the same directory makes the final ``os.replace`` atomic; deleting it on
    *any* exception (Ctrl-C included) is what guarantees no partial file is left behind.
    """
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{filename}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, tmp
    finally:
        tmp.unlink(missing_ok=True)


class _Hashes:
    """md5 and sha256 computed in one streaming pass."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)

    def mismatch(self, ws: WeightSet) -> str | None:
        """Why these hashes are not ``ws``'s file, or None if they match."""
        md5 = self.md5.hexdigest()
        if ws.md5 is not None and md5 != ws.md5.lower():
            return f"md5 is {md5}, expected {ws.md5}"
        sha = self.sha256.hexdigest()
        prefix = ws.sha256_prefix
        if prefix is not None and not sha.startswith(prefix.lower()):
            return f"sha256 starts {sha[: len(prefix)]}, expected {prefix}"
        return None

    def identifies(self, ws: WeightSet) -> bool:
        has_hash = ws.md5 is not None or ws.sha256_prefix is not None
        return has_hash and self.mismatch(ws) is None


_CHUNK = 1 << 20


def _hash_file(path: Path) -> _Hashes:
    hashes = _Hashes()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                hashes.update(chunk)
    except OSError as err:
        raise WeightsError(f"cannot read weights file {path} ({err.strerror})") from err
    return hashes


def verify(path: Path, ws: WeightSet) -> None:
    """Raise WeightsError unless ``path`` has ``ws``'s published hash."""
    problem = _hash_file(Path(path)).mismatch(ws)
    if problem:
        raise WeightsError(
            f"{path} is not the {ws.name} weights file: {problem};"
            f" delete it and download it again or run {_HINT_IMPORT}"
        )


# --- download -----------------------------------------------------------------------------


class _Failed(Exception):
    """One URL did not yield a good file; the message says why (for the final error)."""


def _fetch(url: str, ws: WeightSet, dest: Path, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "painterly"})
    with _temp_file(dest.parent, dest.name) as (out, tmp):
        hashes, received = _Hashes(), 0
        try:
            # ``timeout`` bounds the connection and every read, so a stalled server fails
            # instead of hanging; it is not a limit on the whole (548 MB) download.
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=ws.filename,
                    file=sys.stderr,
                    disable=not progress,
                ) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        hashes.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as err:
            raise _Failed(f"HTTP {err.code} {err.reason}") from err
        except urllib.error.URLError as err:
            raise _Failed(str(err.reason)) from err
        except TimeoutError as err:
            raise _Failed(f"timed out after {timeout:g} s") from err
        except http.client.IncompleteRead as err:
            raise _Failed(f"connection dropped after {received + len(err.partial)} bytes") from err
        except (OSError, http.client.HTTPException) as err:
            raise _Failed(f"{type(err).__name__}: {err}") from err
        if total is not None and received != total:
            raise _Failed(f"connection dropped after {received} of {total} bytes")
        problem = hashes.mismatch(ws)
        if problem:
            raise _Failed(problem)
        out.close()
        os.replace(tmp, dest)


def download(
    ws: WeightSet,
    *,
    progress: bool = True,
    urls: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``ws`` into the cache, verify its hash and return the cached path.

    URLs are tried in order (``urls`` replaces ``ws.urls``). The file is streamed into a
    hidden ``.part`` file in the cache and renamed only once complete and verified, so the
    cache never holds a partial or corrupt file. A progress bar goes to stderr unless
    ``progress`` is False.
    """
    urls = tuple(ws.urls if urls is None else urls)
    if not urls:
        raise WeightsError(
            f"no URL to download {ws.name} from; get {ws.filename} and run {_HINT_IMPORT}"
        )
    dest = _weights_dir() / ws.filename
    failures = []
    for url in urls:
        try:
            _fetch(url, ws, dest, progress, timeout)
        except _Failed as err:
            failures.append(f"{url}: {err}")
        else:
            return dest
    raise WeightsError(
        f"could not download the {ws.name} weights ({'; '.join(failures)});"
        f" download {ws.filename} by hand from {urls[0]} and run {_HINT_IMPORT}"
    )


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


def _h5_attr_strings(group: h5py.Group, name: str) -> list[str] | None:
    """A string-list attribute, also when Keras split it into ``name0``, ``name1``, ...

    (Keras does that when the list would exceed HDF5's 64 KiB object-header limit.)
    """
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _read_keras_h5(path: Path) -> _Raw:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise WeightsError(f"cannot open {path} as an HDF5 file ({err})") from err
    with f:
        root = f
        if "layer_names" not in f.attrs and "model_weights" in f:  # a full-model save
            root = f["model_weights"]
        layer_names = _h5_attr_strings(root, "layer_names")
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
        layers = {}
        for lname in layer_names:
            if not _LAYER_NAME.fullmatch(lname):
                continue  # input, pooling and classifier layers
            if lname not in root:
                raise WeightsError(
                    f"{path}: layer_names lists {lname} but the file has no such group"
                )
            group = root[lname]
            tensors = {}
            wnames = _h5_attr_strings(group, "weight_names") or []
            for wname in wnames:
                if wname not in group:
                    raise WeightsError(
                        f"{path}: {lname} lists weight {wname} but has no such dataset"
                    )
                array = np.asarray(group[wname])
                # Kernel and bias told apart by rank, not by Keras 1 vs 2 naming.
                part = "weight" if array.ndim == 4 else "bias"
                if part in tensors:
                    raise WeightsError(
                        f"{path}: {lname} has {len(wnames)} weights, expected a kernel and a bias"
                    )
                tensors[part] = torch.from_numpy(array)
            layers[lname] = tensors
        return _Raw(layers, torchvision=False, keras_kernels=True)


def _read_torch(path: Path) -> _Raw:
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        # mmap keeps a 548 MB torchvision file (mostly classifier) out of memory.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as err:  # torch raises many types for a corrupt or foreign pickle
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise WeightsError(
            f"cannot read {path} as PyTorch weights ({type(err).__name__}: {first_line})"
        ) from err
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


# --- import and listing -------------------------------------------------------------------


def import_file(path: str | os.PathLike, name: str | None = None) -> Path:
    """Copy a weight file the user obtained into the cache and return the cached path.

    A file whose hash matches a registry entry becomes that entry's cached file, whatever
    it is called. A file that claims to be an entry (by ``name`` or by its filename) but
    does not match its hash is refused rather than cached as if it were genuine. Any other
    valid file is cached under its own name. The file is checked by loading it first and
    copied atomically.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"{src} is not a file; give the path of a downloaded weights file")
    claimed = None
    if name is not None:
        if name not in REGISTRY:
            raise WeightsError(f"unknown weights '{name}'; choose one of {', '.join(REGISTRY)}")
        claimed = REGISTRY[name]
    else:
        claimed = next((ws for ws in REGISTRY.values() if ws.filename == src.name), None)
    load_state_dict(src, claimed.arch if claimed else None)

    directory = _weights_dir()
    with _temp_file(directory, src.name) as (out, tmp):
        hashes = _Hashes()
        try:
            with open(src, "rb") as f:
                while chunk := f.read(_CHUNK):
                    out.write(chunk)
                    hashes.update(chunk)
        except OSError as err:
            raise WeightsError(f"cannot copy {src} into {directory} ({err.strerror})") from err
        match = next((ws for ws in REGISTRY.values() if hashes.identifies(ws)), None)
        if claimed is not None and match is not claimed:
            why = f"it is the {match.name} file" if match else hashes.mismatch(claimed)
            raise WeightsError(
                f"{src} is not the {claimed.name} weights file ({why}); download"
                f" {claimed.filename} again from {claimed.urls[0]}"
            )
        out.close()
        dest = directory / (match.filename if match else src.name)
        os.replace(tmp, dest)
    return dest


def describe() -> list[dict]:
    """One dict per registry entry, for ``painterly weights list``."""
    return [
        {
            "name": ws.name,
            "arch": ws.arch,
            "size_mb": ws.size_mb,
            "path": cached_path(ws),
            "preprocessing": ws.preprocessing,
            "licence": ws.licence,
            "description": ws.description,
        }
        for ws in REGISTRY.values()
    ]
