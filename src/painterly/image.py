"""Reading, sizing, converting and writing images.

Everything that touches an image file goes through here, so that every way a file can be
wrong (missing, unreadable, truncated, an exotic colour mode, far too big) ends up as one
:class:`~painterly.errors.ImageError` line instead of a Pillow traceback. Pillow does all
decoding and encoding; this module only decides what to accept and how to normalise it.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import warnings
from types import ModuleType
from typing import cast

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from painterly.errors import ImageError
from painterly.files import atomic_writer

ImageCms: ModuleType | None
try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: colours are converted without profiles
    ImageCms = None

MIN_SIDE: int = 32
"""Smallest side accepted on input: VGG halves the image five times."""

MAX_PIXELS: int = 100_000_000
"""Largest input accepted, checked from the header before any pixel is decoded."""

INPUT_FORMATS: dict[str, str] = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "WEBP": "WebP",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "GIF": "GIF",
}
"""Input formats painterly names (Pillow format name -> how to write it): the web page
takes these; a GIF's first frame is used."""

OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
"""Output file extension (lower case) -> Pillow format name."""

_DESCRIPTION_TAG = 0x010E  # EXIF/TIFF ImageDescription, where non-PNG metadata goes as JSON
_LOSSY_QUALITY = 95

# What Pillow's decoders raise on damaged data: mostly OSError, but some plugins let
# parsing errors through unchanged.
_DECODE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, IndexError)


def _reason(exc: BaseException) -> str:
    """Return an exception's message squeezed onto one line, without a repeated file name."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__


# --------------------------------------------------------------------------- reading


def _open(path: pathlib.Path) -> Image.Image:
    """Open ``path`` lazily (header only) or raise an ImageError saying why it cannot be."""
    if os.path.isdir(path):  # unlike Path.is_dir, never raises on a permission error
        raise ImageError(f"{path} is a directory, not an image file; give the path of an image")
    try:
        # We enforce our own MAX_PIXELS, which sits above Pillow's warning threshold, so
        # Pillow's DecompressionBombWarning would only be noise for images we accept.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError:
        raise ImageError(f"{path} does not exist; check the path") from None
    except PermissionError:
        raise ImageError(
            f"{path} cannot be read (permission denied); check its permissions"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image Pillow can read; use a PNG, JPEG, WebP, TIFF, BMP or GIF file"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{path} is too large to decode safely ({_reason(exc)}); downscale it first"
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the operating system refused (I/O error, bad name, ...)
            raise ImageError(f"{path} cannot be read ({_reason(exc)}); check the file") from None
        raise _corrupt(path, exc) from None  # a format plugin choked on the header


def _corrupt(path: pathlib.Path, exc: BaseException) -> ImageError:
    """Return the ImageError for a file whose contents cannot be decoded."""
    return ImageError(
        f"{path} is truncated or corrupt ({_reason(exc)}); re-export or re-download it"
    )


def _check_size(path: pathlib.Path, img: Image.Image) -> None:
    """Refuse images too small for VGG or too big to hold in memory, from the header alone."""
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{path} is {w}x{h} px ({w * h:,} pixels); painterly accepts at most "
            f"{MAX_PIXELS:,} pixels, downscale it first"
        )
    if min(w, h) < MIN_SIDE:
        raise ImageError(
            f"{path} is {w}x{h} px; painterly needs at least {MIN_SIDE} px on each side"
        )


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float grey images to mode L without clipping.

    Pillow's own ``convert("L")`` clips such data at 255, which turns most of a 16-bit
    photo white.
    """
    if img.mode.startswith("I;16"):
        scaled = np.asarray(img, dtype=np.float64) / 257.0  # 65535 / 257 == 255
    elif img.mode == "I":
        # Decoders put 16-bit files (PGM, some TIFFs) into mode I; anything outside the
        # 16-bit range has no known scale, so stretch it to full range.
        data = np.asarray(img, dtype=np.float64)
        scaled = data / 257.0 if data.min() >= 0 and data.max() <= 65535 else _stretch(data)
    elif img.mode == "F":
        data = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if data.min() >= 0 and data.max() <= 1:
            scaled = data * 255.0
        elif data.min() >= 0 and data.max() <= 255:
            scaled = data
        else:
            scaled = _stretch(data)
    else:
        return img
    out = Image.fromarray(np.rint(scaled).astype(np.uint8))
    # Keep the ICC profile for _to_srgb; a tRNS grey level would be in the old scale.
    if "icc_profile" in img.info:
        out.info["icc_profile"] = img.info["icc_profile"]
    return out


def _stretch(data: np.ndarray) -> np.ndarray:
    """Map the range of ``data`` linearly onto 0..255 (a flat image becomes black)."""
    low, high = float(data.min()), float(data.max())
    return (data - low) * (255.0 / (high - low)) if high > low else np.zeros_like(data)


def _flatten(img: Image.Image) -> Image.Image:
    """Composite transparent images onto white and expand palettes to RGB.

    White is white in every RGB profile, so flattening before the ICC conversion is safe.
    """
    if img.mode.endswith(("A", "a")) or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
    elif img.mode in ("P", "1"):
        flat = img.convert("RGB")
    else:
        return img
    flat.info = dict(img.info)
    return flat


def _to_srgb(img: Image.Image, path: pathlib.Path) -> Image.Image:
    """Convert to RGB, through the embedded ICC profile when there is a usable one."""
    icc = img.info.get("icc_profile")
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(img, source, srgb, outputMode="RGB")
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
            pass  # a broken or mismatched profile is common; plain conversion is still fine
    try:
        return img.convert("RGB")
    except ValueError:
        raise ImageError(
            f"{path} uses colour mode {img.mode}, which painterly cannot convert to RGB; "
            "save it as an RGB image"
        ) from None


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file as 8-bit sRGB, upright, with transparency on white.

    Raises ImageError for anything the user has to fix: a missing, unreadable, truncated
    or non-image file, or one smaller than MIN_SIDE or larger than MAX_PIXELS.
    """
    path = pathlib.Path(path)
    with _open(path) as img:
        _check_size(path, img)
        try:
            img.load()  # decode everything now, so damage shows up here and not mid-run
            upright = ImageOps.exif_transpose(img)
        except _DECODE_ERRORS as exc:
            raise _corrupt(path, exc) from None
    rgb = _to_srgb(_flatten(_to_8bit(upright)), path)
    # The pixels are now plain sRGB; the source's ICC profile, EXIF and the like would
    # mislabel them if a caller passed this image on to save().
    rgb.info = {}
    return rgb


# --------------------------------------------------------------------------- sizes


def _round_div(a: int, b: int) -> int:
    """Return a / b rounded half up, in exact integer arithmetic."""
    return (2 * a + b) // (2 * b)


def fit_size(
    width: int, height: int, long_side: int | None = None, *, height_px: int | None = None
) -> tuple[int, int]:
    """Return the (width, height) to resize to, keeping the aspect ratio.

    ``long_side`` sets the longer side; ``height_px`` sets the height (the Keras book's
    convention). With neither, the size is unchanged. Sides never drop below 1.
    Passing both, or a non-positive size, is a programming error (ValueError).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if long_side is not None and height_px is not None:
        raise ValueError("give long_side or height_px, not both")
    target = long_side if long_side is not None else height_px
    if target is None:
        return width, height
    if target < 1:
        raise ValueError(f"target size must be positive, got {target}")
    scale_from = max(width, height) if long_side is not None else height
    return (
        max(1, _round_div(width * target, scale_from)),
        max(1, _round_div(height * target, scale_from)),
    )


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` (w, h): LANCZOS when shrinking (least aliasing), BICUBIC when growing
    (LANCZOS rings more on upscales)."""
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {w}x{h}")
    shrinking = w <= img.width and h <= img.height
    method = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
    return img.resize((w, h), method)


# --------------------------------------------------------------------------- tensors


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Return ``img`` as a (1, 3, H, W) float32 tensor of RGB values in 0..1."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    data = torch.from_numpy(np.array(rgb, dtype=np.uint8))  # np.array: a writable copy
    return data.permute(2, 0, 1).unsqueeze(0).float().div(255.0).contiguous()


def to_image(t: torch.Tensor) -> Image.Image:
    """Return a (1, 3, H, W) or (3, H, W) RGB tensor in 0..1 as an 8-bit RGB image.

    Values are clamped and rounded to the nearest level; NaN becomes black so that a
    diverged run still writes a viewable file.
    """
    data = t.detach().to("cpu", torch.float32)
    if data.dim() == 4 and data.shape[0] == 1:
        data = data[0]
    if data.dim() != 3 or data.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got {tuple(t.shape)}")
    data = torch.nan_to_num(data, nan=0.0).clamp(0.0, 1.0)
    levels = data.mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(levels.numpy())


# --------------------------------------------------------------------------- writing


def check_output_path(path: str | os.PathLike) -> pathlib.Path:
    """Validate an output path before a long run: a known extension in a writable directory."""
    path = pathlib.Path(path)
    if os.path.isdir(path):
        raise ImageError(f"{path} is a directory; give an output file name such as out.png")
    ext = path.suffix.lower()
    if ext not in OUTPUT_FORMATS:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        found = f"extension {ext!r}" if ext else "no extension"
        raise ImageError(f"{path} has {found}; use one of {known}")
    Image.init()  # registers the plugins, so SAVE lists everything this Pillow can write
    if OUTPUT_FORMATS[ext] not in Image.SAVE:
        raise ImageError(f"this Pillow build cannot write {ext} files; use .png for {path}")
    parent = path.parent
    if not os.path.isdir(parent):
        raise ImageError(
            f"cannot write {path}: {parent} is not an existing directory; create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageError(
            f"cannot write {path}: directory {parent} is not writable; choose another location"
        )
    return path


def _save_options(fmt: str, metadata: dict[str, str]) -> dict[str, object]:
    """Return the Pillow save() keyword arguments that carry ``metadata`` in format ``fmt``."""
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = _LOSSY_QUALITY
    if not metadata:
        return options
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            info.add_text(key, value)  # Pillow picks iTXt when the value is not Latin-1
        options["pnginfo"] = info
    else:
        exif = Image.Exif()
        # ImageDescription is an ASCII tag, hence ensure_ascii.
        exif[_DESCRIPTION_TAG] = json.dumps(metadata, ensure_ascii=True, sort_keys=True)
        options["exif"] = exif
    return options


def save_image(
    img: Image.Image, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> pathlib.Path:
    """Save ``img`` as 8-bit RGB in the format named by the extension, atomically.

    ``metadata`` goes into PNG text chunks, or as JSON into the EXIF ImageDescription tag
    for JPEG, WebP and TIFF; :func:`read_metadata` reads either back. On failure an
    existing file at ``path`` is left untouched.
    """
    path = check_output_path(path)
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    options = _save_options(fmt, metadata or {})
    try:
        with atomic_writer(path) as f:
            rgb.save(f, format=fmt, **options)
    except (OSError, ValueError) as exc:
        # An errno means the system refused; otherwise the encoder did (e.g. WebP's size cap).
        advice = (
            "check free disk space and permissions"
            if getattr(exc, "errno", None) is not None
            else "try .png or a smaller size"
        )
        raise ImageError(f"could not write {path} ({_reason(exc)}); {advice}") from None
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Return the metadata that :func:`save_image` stored in ``path`` ({} if there is none).

    For PNG that is every text chunk; for other formats the JSON object in the EXIF
    ImageDescription tag, if it holds one.
    """
    path = pathlib.Path(path)
    with _open(path) as img:
        try:
            if img.format == "PNG":
                # Image.open hands a PNG file to the PNG plugin, whose images have .text.
                png = cast(PngImagePlugin.PngImageFile, img)
                return {str(k): str(v) for k, v in png.text.items()}
            description = img.getexif().get(_DESCRIPTION_TAG)
        except _DECODE_ERRORS as exc:
            raise _corrupt(path, exc) from None
    return _parse_description(description)


def _parse_description(description: object) -> dict[str, str]:
    """Return the dict JSON-encoded in an ImageDescription, or {} if it is something else."""
    if not isinstance(description, str):
        return {}
    try:
        data = json.loads(description)
    except ValueError:
        return {}  # a description written by some other program
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}
