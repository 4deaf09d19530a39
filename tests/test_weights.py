"""Weight registry and file readers, on fake files in the real layouts (fake_weights.py)."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch
from fake_weights import (
    assert_one_line_error,
    conv_layers,
    our_state,
    torchvision_state,
    write_keras_h5,
    write_torchvision_pth,
)

from painterly.cli import main
from painterly.encoders.formats import VGG_CHANNELS, VGG_LAYERS, load_state_dict
from painterly.encoders.registry import REGISTRY
from painterly.errors import WeightsError

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


# --- architecture facts and registry ------------------------------------------------------


def test_layer_tables():
    assert VGG_LAYERS["vgg19"] == tuple(n for n, _, _ in conv_layers("vgg19"))
    assert VGG_LAYERS["vgg16"] == tuple(n for n, _, _ in conv_layers("vgg16"))
    assert len(VGG_LAYERS["vgg19"]) == 16 and len(VGG_LAYERS["vgg16"]) == 13
    assert VGG_CHANNELS["block1_conv2"] == 64
    assert VGG_CHANNELS["block3_conv4"] == 256
    assert VGG_CHANNELS["block5_conv4"] == 512


@pytest.mark.real_registry
def test_registry_entries():
    vgg19 = REGISTRY["vgg19"]
    assert vgg19.filename == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert vgg19.md5 == "253f8cb515780f3b799900260a226db6"
    assert vgg19.urls == (
        "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )
    assert (vgg19.arch, vgg19.layout, vgg19.preprocessing) == ("vgg19", "keras-h5", "caffe")
    vgg16 = REGISTRY["vgg16"]
    assert vgg16.md5 == "6d6bbae143d832006294945121d1f1fc"
    assert all("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in u for u in vgg16.urls)
    tv = REGISTRY["vgg19-torchvision"]
    assert tv.urls == ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",)
    # torchvision's convention: the hash prefix is the part of the filename after the dash
    assert tv.sha256_prefix == re.search(r"-([0-9a-f]+)\.", tv.filename).group(1)
    assert (tv.md5, tv.layout, tv.preprocessing) == (None, "torch-pth", "torch")
    for ws in REGISTRY.values():
        assert "\n" not in ws.licence and "\n" not in ws.description
        assert ws.md5 or ws.sha256_prefix


# --- readers: the known values land in the right place ------------------------------------


def test_keras1_notop_layout(keras19):
    arch, state = load_state_dict(keras19)
    assert arch == "vgg19"
    assert set(state) == {f"{n}.{p}" for n in VGG_LAYERS["vgg19"] for p in ("weight", "bias")}
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
    arch, state = load_state_dict(path)
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
    arch, state = load_state_dict(path)
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
    arch, state = load_state_dict(path)
    assert arch == "vgg19" and len(state) == 32  # classifier ignored
    assert state["block1_conv1.weight"][5, 1, 0, 2] == 7.0
    assert state["block1_conv1.weight"][5, 1, 2, 0] == 0.0
    assert state["block5_conv4.weight"][511, 300, 1, 0] == -3.0
    assert state["block5_conv4.bias"][17] == 2.5


def test_torchvision_pth_vgg16(tmp_path):
    path = write_torchvision_pth(
        tmp_path / "vgg16.pth", "vgg16", values={"features.28.bias": {(9,): 3.0}}
    )
    arch, state = load_state_dict(path)
    assert arch == "vgg16" and state["block5_conv3.bias"][9] == 3.0
    assert state["block5_conv3.bias"].abs().sum() == 3.0


def test_pth_in_our_naming(tmp_path):
    path = tmp_path / "ours.pt"
    torch.save(our_state("vgg16", {"block4_conv2.weight": {(3, 2, 1, 0): 6.0}}), path)
    arch, state = load_state_dict(path, "vgg16")
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
    arch, loaded = load_state_dict(path)
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
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "not a Keras HDF5, PyTorch or safetensors")


def test_hdf5_that_is_not_keras(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "no layer_names")


def test_missing_layer(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg19", skip=("block5_conv4",))
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing layer block5_conv4")


def test_wrong_kernel_shape(tmp_path):
    path = write_keras_h5(
        tmp_path / "w.h5", "vgg19", shapes={("block1_conv1", "kernel"): (3, 3, 4, 64)}
    )
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(
        excinfo, path, "block1_conv1 kernel has shape (3, 3, 4, 64), expected (3, 3, 3, 64)"
    )


def test_missing_bias(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16")
    with h5py.File(path, "a") as f:  # the layer lists only its kernel
        f["block2_conv2"].attrs["weight_names"] = np.array([b"block2_conv2_W_1:0"])
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing block2_conv2 bias")


def test_extra_weight_in_a_layer(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16")
    with h5py.File(path, "a") as f:  # a third weight would otherwise replace the bias
        g = f["block1_conv1"]
        g["extra:0"] = np.zeros(64, np.float32)
        g.attrs["weight_names"] = np.array([*g.attrs["weight_names"], b"extra:0"])
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "block1_conv1 has 3 weights")


def test_arch_that_does_not_fit(keras19):
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(keras19, "vgg16")
    assert_one_line_error(excinfo, keras19, "block3_conv4, which vgg16 does not have")
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(keras19, "vgg11")
    assert_one_line_error(excinfo, "unknown architecture 'vgg11'")


def test_theano_kernels_refused(tmp_path):
    path = write_keras_h5(tmp_path / "w.h5", "vgg16", keras=2, backend="theano")
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "Theano")


def test_torchvision_missing_late_layer(tmp_path):
    path = write_torchvision_pth(
        tmp_path / "w.pth", drop=("features.34.weight", "features.34.bias")
    )
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "missing layer block5_conv4")


def test_torchvision_wrong_shape(tmp_path):
    state = torchvision_state("vgg16")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
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
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "batch-norm")


def test_pth_that_is_not_a_state_dict(tmp_path):
    tensor_file = tmp_path / "t.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(tensor_file)
    assert_one_line_error(excinfo, tensor_file, "not a state dict")

    truncated = tmp_path / "cut.pth"
    torch.save(our_state("vgg16"), truncated)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(truncated)
    assert_one_line_error(excinfo, truncated, "cannot read")


def test_non_finite_weights(tmp_path):
    path = tmp_path / "nan.pt"
    torch.save(our_state("vgg16", {"block3_conv1.bias": {(0,): float("nan")}}), path)
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, "block3_conv1 bias contains NaN")


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(tmp_path / "nope.h5")
    assert_one_line_error(excinfo, "nope.h5", "does not exist")


# --- damaged and malformed Keras files ----------------------------------------------------


def damaged(data: bytes, at: int) -> bytes:
    """``data`` with the 64 bytes from ``at`` overwritten, as a bad disk or copy leaves it."""
    return data[:at] + b"\xa5" * 64 + data[at + 64 :]


# Structures the reader walks: the root's B-tree, heap and symbol table node, the
# layer_names attribute, a layer's name and a dataset's name (first occurrence of each).
LANDMARKS = [b"TREE", b"HEAP", b"SNOD", b"layer_names", b"block5_conv4", b"block3_conv2_W_1:0"]


@pytest.mark.parametrize("landmark", LANDMARKS, ids=[m.decode() for m in LANDMARKS])
def test_damaged_keras_file(keras19, tmp_path, landmark):
    data = keras19.read_bytes()
    path = tmp_path / "damaged.h5"
    path.write_bytes(damaged(data, data.index(landmark)))
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path)


def scalar_layer_names(path):
    write_keras_h5(path, "vgg16")
    with h5py.File(path, "a") as f:  # one name, not a list of names
        f.attrs["layer_names"] = b"block1_conv1"
    return path


def text_datasets(path):
    write_keras_h5(path, "vgg16")
    with h5py.File(path, "a") as f:  # the bias replaced by strings of the same shape
        del f["block1_conv1/block1_conv1_b_1:0"]
        f["block1_conv1"].create_dataset("block1_conv1_b_1:0", data=[b"0.5"] * 64)
    return path


def huge_dataset(path):
    write_keras_h5(path, "vgg16")
    with h5py.File(path, "a") as f:  # claims 9 GB; chunked, so nothing is stored
        g = f["block1_conv1"]
        del g["block1_conv1_W_1:0"]
        g.create_dataset("block1_conv1_W_1:0", (3, 3, 3, 80_000_000), "float32", chunks=True)
    return path


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (scalar_layer_names, "the layer_names attribute is not a list of names"),
        (text_datasets, "block1_conv1 weight block1_conv1_b_1:0 holds text, not floats"),
        (huge_dataset, "too large for a VGG layer"),
    ],
)
def test_malformed_keras_file(tmp_path, make, said):
    path = make(tmp_path / "w.h5")
    with pytest.raises(WeightsError) as excinfo:
        load_state_dict(path)
    assert_one_line_error(excinfo, path, said)


@pytest.mark.parametrize("kind", ["damaged", "scalar layer_names", "text datasets"])
def test_cli_refuses_bad_keras_files_in_one_line(
    keras19, tmp_path, capsys, content_path, style_path, kind
):
    path = tmp_path / "w.h5"
    if kind == "damaged":
        data = keras19.read_bytes()
        path.write_bytes(damaged(data, data.index(b"layer_names")))
    else:
        {"scalar layer_names": scalar_layer_names, "text datasets": text_datasets}[kind](path)
    out = tmp_path / "out.png"
    for argv in (
        ["weights", "import", path],
        ["stylize", content_path, style_path, "-o", out, "--weights", path, "--quiet"],
    ):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.startswith("painterly: error:") and err.count("\n") == 1, err
        assert str(path) in err and "Traceback" not in err
    assert not out.exists()
