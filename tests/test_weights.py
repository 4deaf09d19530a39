"""Weight registry, cache, download and readers, on fake files in the real layouts.

The fakes mirror the published files: the same HDF5 groups, attributes, dataset names,
float32 dtype, Keras ``(kh, kw, in, out)`` kernels and the real VGG shapes (so the loader's
shape checks are the real ones). To stay small on disk, the Keras fakes store kernels as
gzip-chunked datasets that are mostly their fill value; HDF5 reads them like the published
contiguous ones. A few known values at chosen indices show where each weight lands.

Downloads run against a loopback HTTP server; nothing here touches the internet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import re
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from painterly.encoders import weights
from painterly.errors import WeightsError

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


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PAINTERLY_CACHE", str(root))
    return root


KERAS19_VALUES = {
    ("block1_conv1", "kernel"): {(0, 2, 1, 5): 7.0},
    ("block1_conv1", "bias"): {(5,): 0.5},
    ("block5_conv4", "kernel"): {(1, 0, 300, 511): -3.0},
    ("block5_conv4", "bias"): {(17,): 2.5},
}


@pytest.fixture(scope="module")
def keras19(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return write_keras_h5(path, "vgg19", values=KERAS19_VALUES)


@pytest.fixture(scope="module")
def keras16_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras16") / "k.h5"
    write_keras_h5(path, "vgg16", keras=2, values={("block1_conv1", "kernel"): {(0, 2, 1, 5): 7.0}})
    return path.read_bytes()


# --- architecture facts and registry ------------------------------------------------------


def test_layer_tables():
    assert weights.VGG_LAYERS["vgg19"] == tuple(n for n, _, _ in conv_layers("vgg19"))
    assert weights.VGG_LAYERS["vgg16"] == tuple(n for n, _, _ in conv_layers("vgg16"))
    assert len(weights.VGG_LAYERS["vgg19"]) == 16 and len(weights.VGG_LAYERS["vgg16"]) == 13
    assert weights.VGG_CHANNELS["block1_conv2"] == 64
    assert weights.VGG_CHANNELS["block3_conv4"] == 256
    assert weights.VGG_CHANNELS["block5_conv4"] == 512


@pytest.mark.real_registry
def test_registry_entries():
    vgg19 = weights.REGISTRY["vgg19"]
    assert vgg19.filename == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert vgg19.md5 == "253f8cb515780f3b799900260a226db6"
    assert vgg19.urls == (
        "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )
    assert (vgg19.arch, vgg19.layout, vgg19.preprocessing) == ("vgg19", "keras-h5", "caffe")
    vgg16 = weights.REGISTRY["vgg16"]
    assert vgg16.md5 == "6d6bbae143d832006294945121d1f1fc"
    assert all("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in u for u in vgg16.urls)
    tv = weights.REGISTRY["vgg19-torchvision"]
    assert tv.urls == ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",)
    # torchvision's convention: the hash prefix is the part of the filename after the dash
    assert tv.sha256_prefix == re.search(r"-([0-9a-f]+)\.", tv.filename).group(1)
    assert (tv.md5, tv.layout, tv.preprocessing) == (None, "torch-pth", "torch")
    for ws in weights.REGISTRY.values():
        assert "\n" not in ws.licence and "\n" not in ws.description
        assert ws.md5 or ws.sha256_prefix


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "p"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "p"
    monkeypatch.delenv("PAINTERLY_CACHE")
    assert weights.cache_dir() == tmp_path / "xdg" / "painterly"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "painterly"


def test_cached_path_and_describe(cache):
    ws = weights.REGISTRY["vgg19"]
    assert weights.cached_path(ws) is None
    rows = {row["name"]: row for row in weights.describe()}
    assert set(rows) == set(weights.REGISTRY)
    assert rows["vgg19"]["path"] is None and rows["vgg19"]["size_mb"] == ws.size_mb
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / ws.filename).write_bytes(b"x")
    assert weights.cached_path(ws) == cache / "weights" / ws.filename
    assert weights.describe()[0]["path"] == cache / "weights" / ws.filename


# --- readers: the known values land in the right place ------------------------------------


def test_keras1_notop_layout(keras19):
    arch, state = weights.load_state_dict(keras19)
    assert arch == "vgg19"
    assert set(state) == {
        f"{n}.{p}" for n in weights.VGG_LAYERS["vgg19"] for p in ("weight", "bias")
    }
    for name, in_ch, out_ch in conv_layers("vgg19"):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        assert w.shape == (out_ch, in_ch, 3, 3) and b.shape == (out_ch,)
        assert w.dtype == torch.float32 and w.is_contiguous()
    # keras kernel[ky, kx, in, out] -> ours[out, in, ky, kx], with no spatial flip
    w = state["block1_conv1.weight"]
    assert w[5, 1, 0, 2] == 7.0
    assert w[5, 1, 2, 0] == 0.0 and w.abs().sum() == 7.0
    assert state["block1_conv1.bias"][5] == 0.5
    assert state["block5_conv4.weight"][511, 300, 1, 0] == -3.0
    assert state["block5_conv4.weight"].abs().sum() == 3.0
    assert state["block5_conv4.bias"][17] == 2.5


def test_keras2_nested_layout_infers_vgg16(tmp_path):
    path = write_keras_h5(
        tmp_path / "w.h5",
        "vgg16",
        keras=2,
        values={("block5_conv3", "kernel"): {(2, 1, 7, 400): 4.0}},
    )
    with h5py.File(path) as f:  # the layout really is nested, as Keras 2 writes it
        assert "block5_conv3/block5_conv3/kernel:0" in f
    arch, state = weights.load_state_dict(path)
    assert arch == "vgg16" and len(state) == 26
    assert state["block5_conv3.weight"][400, 7, 2, 1] == 4.0


def test_keras_full_model_save(tmp_path):
    path = write_keras_h5(
        tmp_path / "model.h5",
        "vgg16",
        keras=2,
        full_model=True,
        values={("block2_conv1", "bias"): {(3,): 1.5}},
    )
    arch, state = weights.load_state_dict(path)
    assert arch == "vgg16" and state["block2_conv1.bias"][3] == 1.5


def test_torchvision_pth(tmp_path):
    path = write_torchvision_pth(
        tmp_path / "vgg19-dcbb9e9d.pth",
        values={
            "features.0.weight": {(5, 1, 0, 2): 7.0},
            "features.34.weight": {(511, 300, 1, 0): -3.0},
            "features.34.bias": {(17,): 2.5},
        },
    )
    arch, state = weights.load_state_dict(path)
    assert arch == "vgg19" and len(state) == 32  # classifier ignored
    assert state["block1_conv1.weight"][5, 1, 0, 2] == 7.0
    assert state["block1_conv1.weight"][5, 1, 2, 0] == 0.0
    assert state["block5_conv4.weight"][511, 300, 1, 0] == -3.0
    assert state["block5_conv4.bias"][17] == 2.5


def test_torchvision_pth_vgg16(tmp_path):
    path = write_torchvision_pth(
        tmp_path / "vgg16.pth", "vgg16", values={"features.28.bias": {(9,): 3.0}}
    )
    arch, state = weights.load_state_dict(path)
    assert arch == "vgg16" and state["block5_conv3.bias"][9] == 3.0
    assert state["block5_conv3.bias"].abs().sum() == 3.0


def test_pth_in_our_naming(tmp_path):
    path = tmp_path / "ours.pt"
    torch.save(our_state("vgg16", {"block4_conv2.weight": {(3, 2, 1, 0): 6.0}}), path)
    arch, state = weights.load_state_dict(path, "vgg16")
    assert arch == "vgg16" and state["block4_conv2.weight"][3, 2, 1, 0] == 6.0


@pytest.mark.parametrize("naming", ["ours", "torchvision"])
def test_safetensors(tmp_path, naming):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    if naming == "ours":
        state = our_state("vgg16", {"block5_conv3.weight": {(1, 2, 0, 1): 5.0}})
    else:
        state = torchvision_state("vgg16", {"features.28.weight": {(1, 2, 0, 1): 5.0}})
        state = {k: v.contiguous() for k, v in state.items() if k.startswith("features")}
    path = tmp_path / "w.safetensors"
    save_file(state, path)
    arch, loaded = weights.load_state_dict(path)
    assert arch == "vgg16" and loaded["block5_conv3.weight"][1, 2, 0, 1] == 5.0


# --- readers: what goes wrong is said in one line that names the file ---------------------


@pytest.mark.parametrize(
    ("filename", "content"),
    [("w.h5", b"<!DOCTYPE html><html>Not Found</html>"), ("w.pth", b"garbage" * 10), ("w", b"")],
)
def test_not_a_weight_file(tmp_path, filename, content):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "not a Keras HDF5, PyTorch or safetensors")


def test_hdf5_that_is_not_keras(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "no layer_names")


def test_missing_layer(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg19", skip=("block5_conv4",))
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing layer block5_conv4")


def test_wrong_kernel_shape(tmp_path):
    path = write_keras_h5(
        tmp_path / "w.h5", "vgg19", shapes={("block1_conv1", "kernel"): (3, 3, 4, 64)}
    )
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(
        excinfo, path, "block1_conv1 kernel has shape (3, 3, 4, 64), expected (3, 3, 3, 64)"
    )


def test_missing_bias(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16")
    with h5py.File(path, "a") as f:  # the layer lists only its kernel
        f["block2_conv2"].attrs["weight_names"] = np.array([b"block2_conv2_W_1:0"])
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing block2_conv2 bias")


def test_extra_weight_in_a_layer(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16")
    with h5py.File(path, "a") as f:  # a third weight would otherwise replace the bias
        g = f["block1_conv1"]
        g["extra:0"] = np.zeros(64, np.float32)
        g.attrs["weight_names"] = np.array([*g.attrs["weight_names"], b"extra:0"])
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "block1_conv1 has 3 weights")


def test_arch_that_does_not_fit(keras19):
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(keras19, "vgg16")
    assert_one_line_error(excinfo, keras19, "block3_conv4, which vgg16 does not have")
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(keras19, "vgg11")
    assert_one_line_error(excinfo, "unknown architecture 'vgg11'")


def test_theano_kernels_refused(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16", keras=2, backend="theano")
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "Theano")


def test_torchvision_missing_late_layer(tmp_path):
    path = write_torchvision_pth(
        tmp_path / "w.pth", drop=("features.34.weight", "features.34.bias")
    )
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing layer block5_conv4")


def test_torchvision_wrong_shape(tmp_path):
    state = torchvision_state("vgg16")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(
        excinfo,
        path,
        "features.2.weight (block1_conv2) has shape (64, 32, 3, 3), expected (64, 64, 3, 3)",
    )


def test_batchnorm_vgg_refused(tmp_path):
    state = torchvision_state("vgg16")
    state["features.1.running_mean"] = torch.zeros(64)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "batch-norm")


def test_pth_that_is_not_a_state_dict(tmp_path):
    tensor_file = tmp_path / "t.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(tensor_file)
    assert_one_line_error(excinfo, tensor_file, "not a state dict")

    truncated = tmp_path / "cut.pth"
    torch.save(our_state("vgg16"), truncated)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(truncated)
    assert_one_line_error(excinfo, truncated, "cannot read")


def test_non_finite_weights(tmp_path):
    path = tmp_path / "nan.pt"
    torch.save(our_state("vgg16", {"block3_conv1.bias": {(0,): float("nan")}}), path)
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(path)
    assert_one_line_error(excinfo, path, "block3_conv1 bias contains NaN")


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError) as excinfo:
        weights.load_state_dict(tmp_path / "nope.h5")
    assert_one_line_error(excinfo, "nope.h5", "does not exist")


# --- download against a loopback server ---------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(1.5)
            return
        body = self.files["/good"] if self.path == "/drop" else self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/drop":  # promise N bytes, send N/2, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(keras16_bytes):
    bad = bytearray(keras16_bytes)
    bad[len(bad) // 2] ^= 0xFF
    Handler.files = {"/good": keras16_bytes, "/badhash": bytes(bad)}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def fake_ws(server, keras16_bytes):
    return dataclasses.replace(
        weights.REGISTRY["vgg16"],
        name="fake",
        filename="fake_notop.h5",
        urls=(f"{server}/good",),
        md5=md5(keras16_bytes),
    )


def test_download_good_file(fake_ws, cache, keras16_bytes, capsys):
    path = weights.download(fake_ws, timeout=5)
    assert path == cache / "weights" / "fake_notop.h5"
    assert path.read_bytes() == keras16_bytes
    assert files_under(cache) == [path]
    assert weights.cached_path(fake_ws) == path
    weights.verify(path, fake_ws)
    assert "fake_notop.h5" in capsys.readouterr().err  # progress bar on stderr
    arch, state = weights.load_state_dict(path)
    assert arch == "vgg16" and state["block1_conv1.weight"][5, 1, 0, 2] == 7.0


def test_download_sha256_prefix(fake_ws, keras16_bytes, capsys):
    sha = hashlib.sha256(keras16_bytes).hexdigest()
    ws = dataclasses.replace(fake_ws, md5=None, sha256_prefix=sha[:8])
    assert weights.download(ws, progress=False, timeout=5).is_file()
    assert capsys.readouterr().err == ""
    wrong = dataclasses.replace(
        ws, sha256_prefix="00000000" if sha[:8] != "00000000" else "11111111"
    )
    with pytest.raises(WeightsError) as excinfo:
        weights.download(wrong, progress=False, timeout=5)
    assert_one_line_error(excinfo, f"sha256 starts {sha[:8]}")


@pytest.mark.parametrize(
    ("route", "why"),
    [
        ("/missing", "HTTP 404"),
        ("/badhash", "md5 is "),
        ("/drop", "connection dropped after"),
        ("/stall", "timed out"),
    ],
)
def test_download_failures_leave_nothing(fake_ws, cache, server, route, why):
    with pytest.raises(WeightsError) as excinfo:
        weights.download(fake_ws, progress=False, urls=[server + route], timeout=0.5)
    assert_one_line_error(excinfo, server + route, why, "painterly weights import PATH")
    assert files_under(cache) == []


def test_download_falls_back_to_next_url(fake_ws, cache, server, keras16_bytes):
    urls = [f"{server}/missing", f"{server}/drop", f"{server}/good"]
    path = weights.download(fake_ws, progress=False, urls=urls, timeout=5)
    assert path.read_bytes() == keras16_bytes
    assert files_under(cache) == [path]


def test_download_all_urls_fail(fake_ws, cache, server):
    urls = [f"{server}/missing", f"{server}/badhash"]
    ws = dataclasses.replace(fake_ws, urls=tuple(urls))
    with pytest.raises(WeightsError) as excinfo:
        weights.download(ws, progress=False, timeout=5)
    assert_one_line_error(excinfo, *urls, "HTTP 404", "md5 is")
    assert files_under(cache) == []


def test_download_interrupted_leaves_nothing(fake_ws, cache, monkeypatch):
    def interrupt(self, chunk):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights._Hashes, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        weights.download(fake_ws, progress=False, timeout=5)
    assert files_under(cache) == []


def test_download_replaces_a_corrupt_cached_file(fake_ws, cache, keras16_bytes):
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / fake_ws.filename).write_bytes(b"truncated")
    with pytest.raises(WeightsError) as excinfo:
        weights.verify(cache / "weights" / fake_ws.filename, fake_ws)
    assert_one_line_error(excinfo, f"md5 is {md5(b'truncated')}, expected {fake_ws.md5}")
    path = weights.download(fake_ws, progress=False, timeout=5)
    assert path.read_bytes() == keras16_bytes


# --- import -------------------------------------------------------------------------------


def test_import_file_detects_registry_entry_by_hash(
    fake_ws, cache, tmp_path, keras16_bytes, monkeypatch
):
    monkeypatch.setitem(weights.REGISTRY, "fake", fake_ws)
    src = tmp_path / "downloaded-by-hand.h5"
    src.write_bytes(keras16_bytes)
    path = weights.import_file(src)
    assert path == cache / "weights" / fake_ws.filename
    assert files_under(cache) == [path] and path.read_bytes() == keras16_bytes
    assert weights.import_file(src, name="fake") == path


def test_import_file_refuses_impostors(fake_ws, cache, tmp_path, monkeypatch):
    monkeypatch.setitem(weights.REGISTRY, "fake", fake_ws)
    other = write_keras_h5(tmp_path / "other.h5", "vgg16", keras=2)  # valid, different bytes
    with pytest.raises(WeightsError) as excinfo:
        weights.import_file(other, name="fake")
    assert_one_line_error(excinfo, other, "not the fake weights file", "md5 is")
    named_like = tmp_path / fake_ws.filename
    shutil.copy(other, named_like)
    with pytest.raises(WeightsError):
        weights.import_file(named_like)
    assert files_under(cache) == []


def test_import_file_unregistered_and_garbage(cache, tmp_path):
    mine = write_keras_h5(tmp_path / "my_vgg16.h5", "vgg16", keras=2)
    assert weights.import_file(mine) == cache / "weights" / "my_vgg16.h5"
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(WeightsError) as excinfo:
        weights.import_file(garbage)
    assert_one_line_error(excinfo, garbage)
    with pytest.raises(WeightsError) as excinfo:
        weights.import_file(mine, name="vgg99")
    assert_one_line_error(excinfo, "unknown weights 'vgg99'")
    with pytest.raises(WeightsError):
        weights.import_file(tmp_path / "absent.h5")
    assert files_under(cache) == [cache / "weights" / "my_vgg16.h5"]
