"""VGG naming, aliases, truncation and a forward pass of a random VGG19."""

from __future__ import annotations

import pytest
import torch

from painterly.encoders import deepest, load_encoder
from painterly.encoders.offline import random_vgg
from painterly.encoders.vgg import VGG, layer_names, resolve_layer
from painterly.errors import OptionsError


def test_layer_names_follow_keras():
    names = layer_names("vgg19")
    assert len(names) == 16 and names[0] == "block1_conv1" and names[-1] == "block5_conv4"
    assert len(layer_names("vgg16")) == 13 and "block3_conv4" not in layer_names("vgg16")


@pytest.mark.parametrize("alias", ["conv4_2", "relu4_2", "block4_conv2"])
def test_aliases_resolve(alias):
    assert resolve_layer(alias) == "block4_conv2"


def test_unknown_layer_suggests_the_closest():
    with pytest.raises(OptionsError, match="did you mean block5_conv2"):
        resolve_layer("block5_conv22")
    with pytest.raises(OptionsError, match="unknown layer"):
        resolve_layer("block3_conv4", "vgg16")


def test_truncated_after_the_deepest_layer_asked_for():
    net = VGG("vgg19", upto="relu3_1")
    assert net.names[-1] == "block3_conv1"
    assert not hasattr(net, "block3_conv2")
    assert set(net.state_dict()) == {f"{n}.{p}" for n in net.names for p in ("weight", "bias")}
    assert deepest(["block1_conv1", "conv4_2", "block2_conv1"]) == "block4_conv2"


def test_forward_returns_requested_post_relu_layers():
    net = random_vgg(seed=0, upto="block5_conv2")
    x = torch.randn(1, 3, 64, 48) * 50
    out = net(x, ["block1_conv1", "conv3_1", "block5_conv2"])
    assert set(out) == {"block1_conv1", "block3_conv1", "block5_conv2"}
    assert out["block1_conv1"].shape == (1, 64, 64, 48)
    assert out["block3_conv1"].shape == (1, 256, 16, 12)
    assert out["block5_conv2"].shape == (1, 512, 4, 3)
    assert all((t >= 0).all() for t in out.values())  # after ReLU, as in Keras
    assert not any(p.requires_grad for p in net.parameters())


def test_pooling_choice_changes_deep_features():
    x = torch.randn(1, 3, 32, 32)
    a = random_vgg(0, "block2_conv1", "max")(x, ["block2_conv1"])["block2_conv1"]
    b = random_vgg(0, "block2_conv1", "avg")(x, ["block2_conv1"])["block2_conv1"]
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_asking_deeper_than_built_is_an_error():
    net = VGG("vgg19", upto="block2_conv1")
    with pytest.raises(OptionsError, match="deeper"):
        net(torch.zeros(1, 3, 32, 32), ["block3_conv1"])


def test_random_encoder_is_deterministic(device):
    a = load_encoder("random-vgg19", upto="block3_conv1", seed=3, device=device)
    b = load_encoder("random-vgg19", upto="block3_conv1", seed=3, device=device)
    for (ka, va), (kb, vb) in zip(
        a.net.state_dict().items(), b.net.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb)
