"""The offline encoder: deterministic from its seed, well scaled, and it does stylise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic import blob, stripes

from painterly import losses
from painterly.api import run
from painterly.cli import main
from painterly.config import PRESETS
from painterly.encoders import (
    arch_of,
    canonical_layer,
    deepest,
    layer_order,
    load_encoder,
    resolve_weights,
)
from painterly.encoders.offline import (
    LAYER_NAMES,
    LUMA_LAYERS,
    PREPROCESSING,
    STYLE_LAYERS,
    OfflineNet,
    pink_noise,
)
from painterly.errors import OptionsError
from painterly.image import read_metadata, to_tensor


@pytest.fixture(scope="module")
def net0():
    return OfflineNet(seed=0)


def photo_like(h: int, w: int, seed: int = 5) -> torch.Tensor:
    """(1, 3, h, w) RGB in 0..1 with a natural image's 1/f spectrum, not the probe's seed."""
    noise = pink_noise(1, max(h, w), seed)[..., :h, :w].float()
    mix = torch.tensor([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    return (0.45 + 0.3 * torch.einsum("oc,nchw->nohw", mix, noise)).clamp(0, 1)


def test_same_seed_gives_bit_identical_weights_and_features(net0, device):
    again = load_encoder("offline", seed=0, device=device)
    for (ka, va), (kb, vb) in zip(
        net0.state_dict().items(), again.net.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb.cpu())
    x = PREPROCESSING.to_input(photo_like(48, 64)).to(device)
    # Built again from the seed and laid out as load_encoder lays it out (channels-last):
    # bit-identical needs the same convolution kernels, so the same layout.
    a = OfflineNet(seed=0).to(device, memory_format=torch.channels_last)(x, LAYER_NAMES)
    b = again.net(x, LAYER_NAMES)
    assert all(torch.equal(a[n], b[n]) for n in LAYER_NAMES)
    other = OfflineNet(seed=1).to(device)(x, LAYER_NAMES)
    assert not any(torch.allclose(a[n], other[n], atol=1e-3) for n in LAYER_NAMES)


def test_truncated_net_has_the_full_nets_layers(net0):
    small = OfflineNet(seed=0, upto="level2")
    assert small.names == ("level1", "level2") and len(small.levels) == 2
    x = PREPROCESSING.to_input(photo_like(40, 56))
    full, part = net0(x, ["luma2", "level2"]), small(x, ["luma2", "level2"])
    assert torch.equal(full["level2"], part["level2"]) and torch.equal(full["luma2"], part["luma2"])
    with pytest.raises(OptionsError, match="deeper"):
        small(x, ["level3"])


@pytest.mark.parametrize("hw", [(48, 64), (120, 160), (240, 320)])
def test_every_layer_stays_well_scaled_at_any_size(net0, hw):
    feats = net0(PREPROCESSING.to_input(photo_like(*hw)), LAYER_NAMES)
    rms = {n: float(f.pow(2).mean().sqrt()) for n, f in feats.items()}
    active = {n: float((f > 0).float().mean()) for n, f in feats.items()}
    for n in LAYER_NAMES:
        assert 0.1 < rms[n] < 10, (n, rms[n])  # neither collapsed to 0 nor exploded
        assert 0.1 < active[n] < 0.9, (n, active[n])  # ReLUs neither all off nor all on
    assert max(rms.values()) / min(rms.values()) < 10  # no layer drowns the others


def test_content_branch_is_blind_to_color_brightness_and_contrast(net0):
    rgb = photo_like(64, 96)
    base = net0(PREPROCESSING.to_input(rgb), LUMA_LAYERS)
    swapped = rgb[:, [1, 0, 2]]  # red <-> green: another colour, the same luminance
    dimmer = 0.6 * rgb + 0.1  # darker and flatter
    for changed in (swapped, dimmer):
        feats = net0(PREPROCESSING.to_input(changed), LUMA_LAYERS)
        for n in LUMA_LAYERS:  # equal up to the spread floor of the standardisation
            assert (feats[n] - base[n]).norm() < 0.03 * base[n].norm(), n
    style = net0(PREPROCESSING.to_input(swapped), ["level1"])["level1"]
    assert not torch.allclose(style, net0(PREPROCESSING.to_input(rgb), ["level1"])["level1"])


def test_layer_names_are_its_own(net0):
    assert layer_order("offline") == LAYER_NAMES
    assert deepest(["luma2", "level3", "level1"], "offline") == "level3"
    assert canonical_layer("level4", "offline") == "level4"
    with pytest.raises(OptionsError, match="did you mean level4"):
        canonical_layer("levle4", "offline")
    # VGG names mean the level at the same scale, so options written for VGG19 still run.
    assert canonical_layer("block4_conv2", "offline") == canonical_layer("relu4_1", "offline")
    assert load_encoder("offline", upto="block3_conv1").net.names[-1] == "level3"
    with pytest.raises(OptionsError, match="offline encoder"):
        canonical_layer("block6_conv1", "offline")
    enc = load_encoder("offline", upto="luma2")
    assert enc.arch == "offline" and enc.net.names == ()
    offline = PRESETS["offline"]
    assert offline.content_layer in LUMA_LAYERS and set(offline.style_layers) <= set(STYLE_LAYERS)


def _gram_distance(encoder, image: torch.Tensor, style: torch.Tensor) -> float:
    pre = encoder.preprocessing
    fi = encoder.features(pre.to_input(image), STYLE_LAYERS)
    fs = encoder.features(pre.to_input(style), STYLE_LAYERS)
    return float(
        np.mean([float(losses.style_loss_relative(fi[n], losses.gram_mean(fs[n]))) for n in fi])
    )


def test_short_run_moves_the_gram_statistics_most_of_the_way_to_the_style(device):
    content, style = blob(96, 64), stripes(96, 64)
    encoder = load_encoder("offline", seed=0, device=device)
    opts = PRESETS["offline"].replace(size=96, steps=60, device=device)
    out = to_tensor(run(content, style, opts, encoder=encoder).image)
    c, s = to_tensor(content), to_tensor(style)
    encoder.to("cpu")
    assert _gram_distance(encoder, out, s) < 0.3 * _gram_distance(encoder, c, s)
    # Judged by networks the optimisation never saw, so that this is style, not a fit.
    judges = [load_encoder("offline", seed=k) for k in (7, 8)]
    before = np.mean([_gram_distance(j, c, s) for j in judges])
    after = np.mean([_gram_distance(j, out, s) for j in judges])
    assert after < 0.5 * before, (before, after)


def test_random_is_an_alias_of_offline(net0, tmp_path):
    assert resolve_weights("random") == ("offline", None)
    assert arch_of("random") == arch_of("offline") == "offline"
    enc = load_encoder("random", seed=0)
    assert enc.name == "offline" and enc.arch == "offline"
    assert all(
        torch.equal(a, b) for a, b in zip(enc.net.parameters(), net0.parameters(), strict=True)
    )
    # the plain random VGG19 keeps its own name
    vgg = load_encoder("random-vgg19", upto="block1_conv2")
    assert vgg.name == "random-vgg19" and vgg.arch == "vgg19"
    # chosen by its old name, a run says the name it goes by, and takes the offline preset
    out = tmp_path / "o.png"
    argv = ["stylize", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out)]
    blob().save(argv[1])
    stripes().save(argv[2])
    assert main([*argv, "--weights", "random", "--size", "48", "--steps", "1", "--quiet"]) == 0
    meta = read_metadata(out)
    assert meta["painterly:weights"] == "offline"
    assert json.loads(meta["painterly:settings"])["content_layer"] == "luma1"
