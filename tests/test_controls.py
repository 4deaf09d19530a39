"""Artistic controls: colour, strength, layer weights, several styles, init,
masks and reproducibility, on tiny stand-in networks and synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import blob, stripes, tiny_encoder

import painterly
from painterly.cli import main
from painterly.color import match_colors, rgb_to_yiq, style_color_noise, yiq_to_rgb
from painterly.config import Options
from painterly.controls import style_factor
from painterly.errors import OptionsError
from painterly.image import resize, to_tensor
from painterly.pipeline import init_rgb as _init_rgb

FAST = dict(size=64, steps=30)
MOVES = dict(steps=20, style_weight=1.0)  # enough for the tiny encoder to change the image


def rainbow(width: int = 96, height: int = 64) -> Image.Image:
    """A photo with colour that varies smoothly in both directions."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 2.5, y * 3.5, 255 - x * 2.0], -1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def greens(width: int = 96, height: int = 64) -> Image.Image:
    """A second style, green/yellow checks, far from `stripes` in colour."""
    y, x = np.mgrid[0:height, 0:width]
    on = ((x // 6) + (y // 6)) % 2 == 0
    arr = np.zeros((height, width, 3), np.uint8)
    arr[on], arr[~on] = (40, 200, 40), (230, 230, 60)
    return Image.fromarray(arr)


def yiq(img: Image.Image, size=None) -> torch.Tensor:
    return rgb_to_yiq(to_tensor(resize(img, size) if size else img))[0]


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def stylize(content, style, **kw):
    return painterly.run(content, style, encoder=tiny_encoder(), **{**FAST, **kw})


# --- colour -------------------------------------------------------------------------


def test_yiq_round_trip_and_grey_has_no_chroma():
    rgb = torch.rand(1, 3, 5, 7, dtype=torch.float64)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(rgb_to_yiq(grey)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6)


def test_match_colors_moves_mean_and_covariance_onto_the_target():
    gen = torch.Generator().manual_seed(1)
    source = torch.rand(1, 3, 40, 40, generator=gen) * torch.tensor([0.3, 0.6, 0.2]).view(
        1, 3, 1, 1
    )
    target = to_tensor(rainbow(40, 40))
    out = match_colors(source, target)[0].reshape(3, -1).numpy().astype(np.float64)
    want = target[0].reshape(3, -1).numpy().astype(np.float64)
    assert np.allclose(out.mean(1), want.mean(1), atol=0.02)
    assert np.allclose(np.cov(out), np.cov(want), atol=0.01)


def test_luminance_preservation_keeps_the_photos_chroma_and_a_plain_run_does_not():
    photo = rainbow()
    kept = stylize(photo, stripes(), preserve_color="luminance").image
    plain = stylize(photo, stripes()).image
    ref = yiq(photo, kept.size)
    kept_c = [corr(yiq(kept)[i], ref[i]) for i in (1, 2)]
    plain_c = [corr(yiq(plain)[i], ref[i]) for i in (1, 2)]
    assert min(kept_c) > 0.9, kept_c
    assert min(plain_c) < 0.9, plain_c


def test_histogram_matching_brings_the_photos_palette_not_the_paintings():
    photo = rainbow()
    out = stylize(photo, stripes(), preserve_color="histogram").image
    mean = to_tensor(out).mean((0, 2, 3))
    photo_mean, style_mean = to_tensor(photo).mean((0, 2, 3)), to_tensor(stripes()).mean((0, 2, 3))
    assert (mean - photo_mean).norm() < 0.5 * (mean - style_mean).norm()


def test_color_only_keeps_the_photos_luminance_and_takes_other_colors():
    photo = rainbow()
    out = stylize(photo, stripes(), color_only=True).image
    ref = yiq(photo, out.size)
    assert corr(yiq(out)[0], ref[0]) > 0.98
    assert min(corr(yiq(out)[i], ref[i]) for i in (1, 2)) < 0.9


def test_color_options_are_checked():
    with pytest.raises(OptionsError, match="preserve_color"):
        Options(preserve_color="sepia")
    with pytest.raises(OptionsError, match="pick one"):
        Options(preserve_color="luminance", color_only=True)


# --- strength and layer weights -----------------------------------------------------


def test_strength_mapping_is_monotonic_with_the_preset_balance_in_the_middle():
    assert style_factor(0) == 0 and style_factor(0.5) == 1.0
    assert 100 < style_factor(1) < 102
    with pytest.raises(OptionsError, match="strength"):
        Options(strength=1.5)


def test_higher_strength_lowers_the_style_loss_and_raises_the_content_loss():
    # A style weight that suits the tiny encoder, so that neither loss is saturated.
    runs = [stylize(blob(), stripes(), style_weight=1.0, strength=s) for s in (0.25, 0.5, 0.75)]
    losses = [r.metrics["losses"] for r in runs]
    style = [x["style"] for x in losses]
    content = [x["content"] for x in losses]
    assert style[0] > style[1] > style[2], style
    assert content[0] < content[1] < content[2], content


def test_style_layer_weights_change_the_result_and_are_checked():
    even = stylize(blob(), stripes(), **MOVES).image
    first = stylize(blob(), stripes(), **MOVES, style_layer_weights=(1, 0, 0, 0, 0)).image
    assert even.tobytes() != first.tobytes()
    assert Options.make(style_layer_weights="1,0.5,0,0,0").style_layer_weights == (1, 0.5, 0, 0, 0)
    with pytest.raises(OptionsError, match="one per layer"):
        Options(style_layer_weights=(1, 2))
    with pytest.raises(OptionsError, match="comma-separated numbers"):
        Options.make(style_layer_weights="1,a,1,1,1")


# --- several styles -----------------------------------------------------------------


def test_blend_one_to_zero_equals_the_single_style_run():
    single = stylize(blob(), stripes(), **MOVES).image
    blended = stylize(blob(), [stripes(), greens()], **MOVES, style_blend=(1, 0)).image
    pairs = stylize(blob(), [(stripes(), 1.0), (greens(), 0.0)], **MOVES).image
    assert blended.tobytes() == single.tobytes() == pairs.tobytes()
    assert single.tobytes() != resize(blob(), single.size).tobytes()  # it did stylise


def test_a_folder_is_one_style_with_equal_weights(tmp_path):
    folder = tmp_path / "paintings"
    folder.mkdir()
    stripes().save(folder / "a.png")
    greens().save(folder / "b.jpg", quality=100)
    (folder / "notes.txt").write_text("not an image")
    b = Image.open(folder / "b.jpg").convert("RGB")
    from_folder = stylize(blob(), folder, **MOVES).image
    explicit = stylize(blob(), [stripes(), b], **MOVES).image
    assert from_folder.tobytes() == explicit.tobytes()
    assert from_folder.tobytes() != stylize(blob(), stripes(), **MOVES).image.tobytes()


def test_malformed_style_specs_exit_2_with_one_line(tmp_path, capsys, content_path, style_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out.png"
    fast = ["--weights", "offline", "--size", "48", "--steps", "1", "--quiet", "-o", str(out)]
    cases = {
        "is -1; use a number from 0 to 1e+12": [f"{style_path}:-1"],
        "comma-separated numbers": [str(style_path), "--style-blend", "1,x"],
        "one each": [str(style_path), "--style-blend", "1,1"],
        "has no images": [str(empty)],
    }
    for message, args in cases.items():
        code = main(["stylize", str(content_path), *args, *fast])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err and err.count("\n") == 1, err


# --- initialisation -----------------------------------------------------------------


def test_style_colors_init_has_the_styles_channel_statistics():
    gen = torch.Generator().manual_seed(2)
    mean, std = torch.tensor([0.3, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.05, 0.1, 0.08])
    style = (torch.rand(1, 3, 64, 64, generator=gen) - 0.5) * 12**0.5 * std.view(1, 3, 1, 1) + mean
    content = torch.zeros(1, 3, 128, 192)
    init = _init_rgb(Options(init="style-colors"), content, 0, [(style, 1.0)])
    assert init.shape == content.shape
    assert torch.allclose(init.mean((0, 2, 3)), style.mean((0, 2, 3)), atol=0.01)
    assert torch.allclose(init.std((0, 2, 3)), style.std((0, 2, 3)), rtol=0.05)
    again = style_color_noise(content.shape, [(style, 1.0)], 0)
    assert torch.equal(init, again)  # seeded
    stylize(blob(), stripes(), steps=3, init="style-colors")  # and it runs end to end


# --- masks --------------------------------------------------------------------------


def halves(width=96, height=64, left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2], arr[:, width // 2 :] = left, right
    return Image.fromarray(arr)


def test_each_mask_region_moves_toward_its_own_style(tmp_path):
    mask = tmp_path / "mask.png"
    halves().save(mask)
    # The random encoder: the tiny one's four 1x1 channels barely see colour in a region.
    out = painterly.run(
        blob(),
        [stripes(), greens()],
        weights="offline",
        size=48,
        steps=20,
        mask=str(mask),
        mask_styles="#ff0000=0,#0000ff=1",
    ).image
    assert_halves_took_their_styles(out)


def assert_halves_took_their_styles(out: Image.Image) -> None:
    """The left third of ``out`` nearer `stripes`' mean colour, the right third `greens`'
    (the regions of a `halves` mask mapped to styles 0 and 1)."""
    rgb = to_tensor(out)[0]
    w = rgb.shape[-1]
    left, right = rgb[:, :, : w // 3].mean((1, 2)), rgb[:, :, -w // 3 :].mean((1, 2))
    red_blue, green = to_tensor(stripes()).mean((0, 2, 3)), to_tensor(greens()).mean((0, 2, 3))
    assert (left - red_blue).norm() < (left - green).norm()
    assert (right - green).norm() < (right - red_blue).norm()


def test_protected_region_keeps_the_photo(tmp_path):
    protect = tmp_path / "protect.png"
    halves(left=(255, 255, 255), right=(0, 0, 0)).save(protect)
    photo = rainbow()
    out = stylize(photo, stripes(), protect=str(protect)).image
    got, want = to_tensor(out)[0], to_tensor(resize(photo, out.size))[0]
    w = got.shape[-1]
    assert torch.allclose(got[:, :, : w // 3], want[:, :, : w // 3], atol=2 / 255)
    assert not torch.allclose(got[:, :, -w // 3 :], want[:, :, -w // 3 :], atol=0.05)


def test_bad_masks_give_clear_errors(tmp_path):
    square, odd = tmp_path / "square.png", tmp_path / "odd.png"
    halves(64, 64).save(square)
    halves(right=(0, 255, 0)).save(odd)
    both = [stripes(), greens()]
    with pytest.raises(OptionsError, match="aspect ratio"):
        stylize(blob(), both, mask=str(square), mask_styles="#f00=0,#00f=1")
    with pytest.raises(OptionsError, match="does not map.*#00ff00"):
        stylize(blob(), both, mask=str(odd), mask_styles="#f00=0,#00f=1")
    with pytest.raises(OptionsError, match="there are 2 styles"):
        stylize(blob(), both, mask=str(odd), mask_styles="#f00=0,#0f0=2")
    with pytest.raises(OptionsError, match="should look like"):
        stylize(blob(), both, mask=str(odd), mask_styles="red=0")


# --- reproducibility ----------------------------------------------------------------


def test_same_seed_gives_identical_png_bytes_on_cpu(tmp_path, capsys, content_path, style_path):
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        argv = ["stylize", content_path, style_path, "-o", out, "--preset", "offline"]
        argv += ["--size", "48", "--steps", "4", "--seed", "3", "--init", "noise", "--quiet"]
        assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_cli_takes_the_controls_and_lists_the_new_presets(tmp_path, capsys, content_path):
    mask, out = tmp_path / "mask.png", tmp_path / "out.png"
    halves().save(mask)
    stripes().save(tmp_path / "a.png")
    greens().save(tmp_path / "b.png")
    argv = ["stylize", content_path, tmp_path / "a.png", tmp_path / "b.png", "-o", out]
    argv += ["--preset", "offline", "--size", "48", "--steps", "2", "--quiet"]
    argv += ["--mask", mask, "--mask-styles", "#f00=0,#00f=1", "--strength", "0.7"]
    argv += ["--style-layer-weights", "1,1,1,0.5,0.5", "--preserve-color", "histogram"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert Image.open(out).size == (48, 32)
    assert main(["presets"]) == 0
    listed = capsys.readouterr().out
    assert "keep-colors" in listed and "preserve_color=luminance" in listed
