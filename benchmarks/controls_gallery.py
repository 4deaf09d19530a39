"""Build docs/controls.png: one before/after panel per artistic control.

Synthetic inputs and the offline (random-weight) encoder, so it runs anywhere without
downloads: ``python benchmarks/controls_gallery.py [--size 192] [--steps 60]``. The
pictures show what each control does, not the quality pretrained weights give.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import painterly

ROOT = Path(__file__).resolve().parent.parent


def scene(w: int = 192, h: int = 128) -> Image.Image:
    """A photo stand-in: sky, sun, hill, a red house."""
    y, x = np.mgrid[0:h, 0:w] / h
    img = np.zeros((h, w, 3))
    img[:] = np.stack([0.45 + 0.4 * y, 0.65 + 0.3 * y, 0.95 + 0 * y], -1)
    img[np.hypot(x - 1.15, y - 0.25) < 0.13] = (1.0, 0.85, 0.2)
    hill = y > 0.62 + 0.08 * np.sin(4 * x)
    img[hill] = np.stack([0.2 + 0.2 * y, 0.55 - 0.1 * y, 0.15 + 0 * y], -1)[hill]
    house = (x > 0.35) & (x < 0.7) & (y > 0.45) & (y < 0.8)
    img[house] = (0.8, 0.15, 0.1)
    img[(x > 0.47) & (x < 0.57) & (y > 0.6) & (y < 0.8)] = (0.3, 0.2, 0.1)
    return Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))


def swirls(w: int = 192, h: int = 128) -> Image.Image:
    """A painting stand-in: warm and cool bands that curl."""
    y, x = np.mgrid[0:h, 0:w] / 16
    t = np.sin(x + 2 * np.sin(y / 2)) + np.cos(y + np.sin(x))
    r = 0.55 + 0.45 * np.sin(2 * t)
    g = 0.35 + 0.3 * np.sin(2 * t + 2)
    b = 0.5 + 0.5 * np.sin(2 * t + 4)
    return Image.fromarray((np.stack([r, g, b], -1).clip(0, 1) * 255).astype(np.uint8))


def checks(w: int = 192, h: int = 128) -> Image.Image:
    """A second painting: green and yellow blocks."""
    y, x = np.mgrid[0:h, 0:w]
    on = ((x // 10) + (y // 10)) % 2 == 0
    arr = np.zeros((h, w, 3), np.uint8)
    arr[on], arr[~on] = (40, 170, 60), (235, 220, 70)
    return Image.fromarray(arr)


def halves(w: int, h: int, left, right) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2], arr[:, w // 2 :] = left, right
    return Image.fromarray(arr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "docs" / "controls.png"))
    args = parser.parse_args()
    photo, style, style2 = scene(), swirls(), checks()
    tmp = Path(tempfile.mkdtemp())
    mask, protect = tmp / "mask.png", tmp / "protect.png"
    halves(*photo.size, (255, 0, 0), (0, 0, 255)).save(mask)
    arr = np.zeros((photo.height, photo.width, 3), np.uint8)
    h = photo.height
    arr[int(0.42 * h) : int(0.82 * h), int(0.33 * h) : int(0.72 * h)] = 255  # the house
    Image.fromarray(arr).save(protect)

    base = dict(weights="offline", size=args.size, steps=args.steps, scales=1)
    runs = {
        "plain": dict(),
        "--preserve-color luminance": dict(preserve_color="luminance"),
        "--preserve-color histogram": dict(preserve_color="histogram"),
        "--color-only": dict(color_only=True),
        "--strength 0.25": dict(strength=0.25),
        "--strength 0.75": dict(strength=0.75),
        "--init style-colors": dict(init="style-colors"),
        "--protect (the house)": dict(protect=str(protect)),
        "two styles, --style-blend 1,1": dict(style=[style, style2], style_blend=(1, 1)),
        "--mask: left swirls, right checks": dict(
            style=[style, style2], mask=str(mask), mask_styles="#f00=0,#00f=1"
        ),
    }
    panels = [("photo", photo), ("style", style), ("style 2", style2)]
    for label, kw in runs.items():
        start = time.perf_counter()
        styles = kw.pop("style", style)
        panels.append((label, painterly.run(photo, styles, **base, **kw).image))
        print(f"{label}: {time.perf_counter() - start:.0f} s", flush=True)

    w, h = panels[3][1].size
    cols, pad, text = 4, 6, 14
    rows = -(-len(panels) // cols)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + text + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(panels):
        x, y = pad + (i % cols) * (w + pad), pad + (i // cols) * (h + text + pad)
        draw.text((x, y), label, fill="black")
        sheet.paste(img.resize((w, h)), (x, y + text))
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
