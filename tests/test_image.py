"""Tests for painterly.image: every input mode, every failure, atomic saving, tensors."""

from __future__ import annotations

import io
import os
import struct
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from painterly import image as pim
from painterly.errors import ImageError

W, H = 64, 48


def _gradient16() -> np.ndarray:
    """A 16-bit horizontal ramp from 0 to 65535, the same on every row."""
    row = np.linspace(0, 65535, W).round().astype(np.uint16)
    return np.tile(row, (H, 1))


def _save(img: Image.Image, path, expect_mode: str | None = None, **kwargs):
    """Save ``img`` and check the file really reopens in the mode the test is about."""
    img.save(path, **kwargs)
    if expect_mode is not None:
        with Image.open(path) as reopened:
            assert reopened.mode == expect_mode
    return path


def _pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


# --------------------------------------------------------------------------- input modes


def test_rgb_png_is_exact(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    path = _save(Image.fromarray(data), tmp_path / "rgb.png", "RGB")
    img = pim.load_image(path)
    assert img.size == (W, H)
    assert np.array_equal(np.asarray(img), data)


def test_grayscale_l(tmp_path):
    path = _save(Image.new("L", (W, H), 100), tmp_path / "l.png", "L")
    assert (_pixels(pim.load_image(path)) == 100).all()


def test_one_bit(tmp_path):
    img = Image.new("1", (W, H), 0)
    img.paste(1, (0, 0, W // 2, H))
    path = _save(img, tmp_path / "bw.png", "1")
    px = _pixels(pim.load_image(path))
    assert (px[:, : W // 2] == 255).all() and (px[:, W // 2 :] == 0).all()


def test_palette(tmp_path):
    img = Image.new("P", (W, H), 0)
    img.putpalette([200, 10, 20, 5, 150, 250] + [0] * 762)
    img.paste(1, (0, 0, W // 2, H))
    path = _save(img, tmp_path / "p.png", "P")
    px = _pixels(pim.load_image(path))
    assert (px[0, 0] == [5, 150, 250]).all() and (px[0, -1] == [200, 10, 20]).all()


def test_palette_transparency_becomes_white(tmp_path):
    img = Image.new("P", (W, H), 0)
    img.putpalette([0, 0, 0, 30, 60, 90] + [0] * 762)
    img.paste(1, (0, 0, W // 2, H))
    path = _save(img, tmp_path / "pt.png", "P", transparency=0)
    px = _pixels(pim.load_image(path))
    assert (px[0, 0] == [30, 60, 90]).all() and (px[0, -1] == 255).all()


def test_rgba_composited_on_white(tmp_path):
    data = np.zeros((H, W, 4), dtype=np.uint8)
    data[:, :, :3] = (0, 0, 200)
    data[:, : W // 3, 3] = 255  # opaque blue
    data[:, W // 3 : 2 * W // 3, 3] = 0  # fully transparent
    data[:, 2 * W // 3 :, 3] = 128  # half transparent
    path = _save(Image.fromarray(data), tmp_path / "rgba.png", "RGBA")
    px = _pixels(pim.load_image(path))
    assert (px[0, 0] == [0, 0, 200]).all()
    assert (px[0, W // 2] == 255).all()
    assert np.abs(px[0, -1] - [127, 127, 227]).max() <= 1


def test_la_composited_on_white(tmp_path):
    img = Image.new("LA", (W, H), (40, 0))
    img.paste((40, 255), (0, 0, W // 2, H))
    path = _save(img, tmp_path / "la.png", "LA")
    px = _pixels(pim.load_image(path))
    assert (px[0, 0] == 40).all() and (px[0, -1] == 255).all()


def test_cmyk_cyan_is_cyan(tmp_path):
    path = _save(Image.new("CMYK", (W, H), (255, 0, 0, 0)), tmp_path / "cmyk.tif", "CMYK")
    r, g, b = _pixels(pim.load_image(path))[0, 0]
    assert r < 30 and g > 225 and b > 225


def _assert_scaled_ramp(img: Image.Image) -> None:
    """A 0..65535 ramp must come out as a full 0..255 ramp, not clipped to white."""
    row = _pixels(img)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row) >= 0).all()
    assert abs(row[W // 2] - 255 * (W // 2) / (W - 1)) <= 1


def test_16bit_png_scaled_not_clipped(tmp_path):
    path = _save(Image.fromarray(_gradient16()), tmp_path / "g16.png", "I;16")
    _assert_scaled_ramp(pim.load_image(path))


def test_16bit_big_endian_tiff(tmp_path):
    img = Image.frombytes("I;16B", (W, H), _gradient16().astype(">u2").tobytes())
    path = _save(img, tmp_path / "g16b.tif", "I;16B")
    _assert_scaled_ramp(pim.load_image(path))


def test_mode_i_from_16bit_pgm(tmp_path):
    path = _save(Image.fromarray(_gradient16()), tmp_path / "g16.pgm", "I")
    _assert_scaled_ramp(pim.load_image(path))


def test_mode_i_outside_16bit_range_is_stretched(tmp_path):
    data = np.tile(np.linspace(-1000, 200_000, W).astype(np.int32), (H, 1))
    path = _save(Image.fromarray(data), tmp_path / "i32.tif", "I")
    row = _pixels(pim.load_image(path))[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()


@pytest.mark.parametrize("top", [1.0, 255.0])
def test_float_f(tmp_path, top):
    data = np.tile(np.linspace(0, top, W, dtype=np.float32), (H, 1))
    path = _save(Image.fromarray(data), tmp_path / "f.tif", "F")
    row = _pixels(pim.load_image(path))[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()


def test_exif_orientation_6_rotates(tmp_path):
    img = Image.new("RGB", (W, H), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 8, 8))  # marker in the stored top-left corner
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(img, tmp_path / "rot.png", exif=exif)
    out = pim.load_image(path)
    assert out.size == (H, W)
    assert out.getpixel((H - 1, 0)) == (255, 0, 0)  # the marker is now top-right
    assert out.getpixel((0, 0)) == (0, 0, 255)


# --------------------------------------------------------------------------- ICC profiles


def _srgb_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _swapped_primaries_profile() -> bytes:
    """An sRGB profile whose red and blue colorant tags trade places.

    Renaming the two tag-table entries yields a valid RGB profile in which "red" means
    sRGB blue and vice versa: a non-sRGB profile whose correct effect is easy to predict.
    """
    raw = bytearray(_srgb_bytes())
    (count,) = struct.unpack_from(">I", raw, 128)
    swap = {b"rXYZ": b"bXYZ", b"bXYZ": b"rXYZ"}
    for i in range(count):
        at = 132 + 12 * i
        sig = bytes(raw[at : at + 4])
        if sig in swap:
            raw[at : at + 4] = swap[sig]
    return bytes(raw)


def test_srgb_profile_keeps_colors(tmp_path):
    img = Image.new("RGB", (W, H), (10, 200, 30))
    path = _save(img, tmp_path / "srgb.png", icc_profile=_srgb_bytes())
    assert np.abs(_pixels(pim.load_image(path))[0, 0] - [10, 200, 30]).max() <= 1


def test_non_srgb_profile_is_applied(tmp_path):
    img = Image.new("RGB", (W, H), (255, 0, 0))
    path = _save(img, tmp_path / "swapped.png", icc_profile=_swapped_primaries_profile())
    out = pim.load_image(path)
    r, g, b = _pixels(out)[0, 0]
    assert r < 10 and g < 10 and b > 245
    assert "icc_profile" not in out.info  # the pixels are sRGB now; the old tag would lie


def test_broken_profile_falls_back_quietly(tmp_path, recwarn):
    img = Image.new("RGB", (W, H), (10, 200, 30))
    path = _save(img, tmp_path / "bad_icc.png", icc_profile=b"not a profile" * 10)
    assert _pixels(pim.load_image(path))[0, 0].tolist() == [10, 200, 30]
    assert len(recwarn) == 0


# --------------------------------------------------------------------------- bad inputs


def _noise_bytes(fmt: str) -> bytes:
    """Noise compresses badly, so cutting the file in half cuts into the pixel data."""
    data = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(data).save(buffer, fmt)
    return buffer.getvalue()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageError, match="nope.png does not exist"):
        pim.load_image(path)


def test_directory(tmp_path):
    with pytest.raises(ImageError, match=f"{tmp_path.name} is a directory"):
        pim.load_image(tmp_path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match="notes.jpg is not an image"):
        pim.load_image(path)


@pytest.mark.parametrize("fmt, ext", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated(tmp_path, fmt, ext):
    data = _noise_bytes(fmt)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"cut{ext} is truncated or corrupt"):
        pim.load_image(path)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root and Windows ignore mode bits"
)
def test_unreadable(tmp_path):
    path = _save(Image.new("RGB", (W, H)), tmp_path / "locked.png")
    path.chmod(0)
    with pytest.raises(ImageError, match="locked.png cannot be read"):
        pim.load_image(path)


def test_too_small(tmp_path):
    path = _save(Image.new("RGB", (20, 15)), tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="tiny.png is 20x15 px; painterly needs at least 32"):
        pim.load_image(path)


def test_too_many_pixels_checked_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(pim, "MAX_PIXELS", W * H - 1)
    data = _noise_bytes("PNG")
    path = tmp_path / "huge.png"
    path.write_bytes(data[: len(data) // 2])  # decoding would fail; the header check wins
    with pytest.raises(ImageError, match=f"huge.png is {W}x{H} px .* at most"):
        pim.load_image(path)


def test_pillow_decompression_bomb(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _save(Image.new("RGB", (W, H)), tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="bomb.png is too large"):
        pim.load_image(path)


# --------------------------------------------------------------------------- sizes


def test_fit_size_long_side():
    assert pim.fit_size(640, 480, 320) == (320, 240)
    assert pim.fit_size(480, 640, 320) == (240, 320)
    assert pim.fit_size(100, 50, 400) == (400, 200)  # upscaling is allowed
    assert pim.fit_size(3, 2, 2) == (2, 1)  # 1.33 rounds down
    assert pim.fit_size(2, 3, 4) == (3, 4)  # 2.67 rounds up
    assert pim.fit_size(1000, 1, 10) == (10, 1)  # never below 1


def test_fit_size_height():
    assert pim.fit_size(1000, 750, height_px=400) == (533, 400)
    assert pim.fit_size(750, 1000, height_px=400) == (300, 400)


def test_fit_size_unchanged_and_misuse():
    assert pim.fit_size(123, 45) == (123, 45)
    with pytest.raises(ValueError):
        pim.fit_size(10, 10, 5, height_px=5)
    with pytest.raises(ValueError):
        pim.fit_size(10, 10, 0)
    with pytest.raises(ValueError):
        pim.fit_size(0, 10, 5)


def test_resize_both_directions():
    img = Image.new("RGB", (W, H), (1, 2, 3))
    assert pim.resize(img, (32, 24)).size == (32, 24)
    big = pim.resize(img, (128, 96))
    assert big.size == (128, 96) and big.getpixel((5, 5)) == (1, 2, 3)


# --------------------------------------------------------------------------- tensors


def test_tensor_round_trip_is_exact():
    data = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    t = pim.to_tensor(Image.fromarray(data))
    assert t.shape == (1, 3, H, W) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert np.array_equal(np.asarray(pim.to_image(t)), data)
    assert np.array_equal(np.asarray(pim.to_image(t[0])), data)


def test_to_image_clamps_rounds_and_detaches():
    t = torch.zeros(1, 3, 2, 2, requires_grad=True)
    values = torch.tensor([-0.5, 100.6 / 255, 1.7, float("nan")]).reshape(2, 2)
    out = pim.to_image(t + values)  # a non-leaf tensor that requires grad
    assert np.asarray(out)[..., 0].tolist() == [[0, 101], [255, 0]]


def test_to_image_rejects_wrong_shape():
    with pytest.raises(ValueError):
        pim.to_image(torch.zeros(1, 4, 8, 8))


# --------------------------------------------------------------------------- saving


def _smooth() -> Image.Image:
    y, x = np.mgrid[0:H, 0:W]
    data = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    return Image.fromarray(data)


@pytest.mark.parametrize(
    "ext, tolerance", [(".png", 0), (".tif", 0), (".tiff", 0), (".jpg", 4), (".webp", 4)]
)
def test_save_round_trip(tmp_path, ext, tolerance):
    meta = {"style": "Starry Night — Van Gogh", "steps": "500"}
    path = pim.save_image(_smooth(), tmp_path / f"out{ext}", meta)
    assert path == tmp_path / f"out{ext}"
    diff = np.abs(_pixels(pim.load_image(path)) - _pixels(_smooth()))
    assert diff.mean() <= tolerance
    assert pim.read_metadata(path) == meta
    assert os.listdir(tmp_path) == [f"out{ext}"]


def test_save_without_metadata_and_non_rgb(tmp_path):
    path = pim.save_image(Image.new("RGBA", (W, H), (9, 8, 7, 255)), tmp_path / "a.jpeg")
    assert pim.read_metadata(path) == {}


def test_foreign_description_is_not_metadata(tmp_path):
    img = Image.new("RGB", (W, H))
    exif = img.getexif()
    exif[0x010E] = "holiday snap"
    path = _save(img, tmp_path / "cam.jpg", exif=exif)
    assert pim.read_metadata(path) == {}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_saved_file_gets_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = pim.save_image(_smooth(), tmp_path / "perm.png")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_check_output_path(tmp_path):
    assert pim.check_output_path(tmp_path / "x.PNG") == tmp_path / "x.PNG"
    with pytest.raises(ImageError, match=r"x.gif has extension '.gif'; use one of .jpeg, .jpg"):
        pim.check_output_path(tmp_path / "x.gif")
    with pytest.raises(ImageError, match="has no extension"):
        pim.check_output_path(tmp_path / "x")
    with pytest.raises(ImageError, match="missing is not an existing directory"):
        pim.check_output_path(tmp_path / "missing" / "x.png")
    (tmp_path / "file").write_text("")
    with pytest.raises(ImageError, match="file is not an existing directory"):
        pim.check_output_path(tmp_path / "file" / "x.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError, match="d.png is a directory"):
        pim.check_output_path(tmp_path / "d.png")


def test_save_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(ImageError, match="out.bmp"):
        pim.save_image(_smooth(), tmp_path / "out.bmp")
    assert os.listdir(tmp_path) == []


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"the previous result")
    img = _smooth()

    def half_write(fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(img, "save", half_write)
    with pytest.raises(ImageError, match="could not write .*out.png .*No space left"):
        pim.save_image(img, target, {"k": "v"})
    assert target.read_bytes() == b"the previous result"
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_replaces_existing_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    pim.save_image(_smooth(), target)
    assert np.array_equal(_pixels(pim.load_image(target)), _pixels(_smooth()))
    assert os.listdir(tmp_path) == ["out.png"]


def test_encoder_refusal_is_explained(tmp_path):
    with pytest.raises(ImageError, match="wide.webp .*16383.*; try .png"):
        pim.save_image(Image.new("RGB", (16384, 1)), tmp_path / "wide.webp")
    assert os.listdir(tmp_path) == []


def test_read_metadata_missing_file(tmp_path):
    with pytest.raises(ImageError, match="gone.png does not exist"):
        pim.read_metadata(tmp_path / "gone.png")
