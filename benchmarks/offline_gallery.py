"""Gallery: every bundled photo in every bundled painting's style, two offline encoders.

For each content x style pair it runs two stylisations that need no download:

* ``random VGG19``: VGG19 with Kaiming-normal weights (``--weights random-vgg19``,
  :func:`painterly.encoders.offline.random_vgg`), with the default preset's layers and
  weights;
* ``offline``: the offline encoder (:class:`painterly.encoders.offline.OfflineNet`) with
  the ``offline`` preset, as ``painterly stylize`` uses it when the pretrained weights are
  not available.

Both get the same size and step budget. Every output is saved under ``--outputs`` (which
``offline_heldout.py`` then measures), with the run times in ``runs.json``, and the grid
goes to ``--grid``.

    python benchmarks/offline_gallery.py                      # 256 px, 200 steps, CPU
    python benchmarks/offline_gallery.py --size 512 --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image, ImageDraw

from painterly import paintings
from painterly.api import run
from painterly.config import PRESETS, Options
from painterly.encoders import Encoder, load_encoder
from painterly.image import load_image, resize

ROOT = Path(__file__).resolve().parent.parent
CONTENTS = sorted((ROOT / "examples" / "content").glob("*.*"))
STYLES = sorted(p.path for p in paintings.PAINTINGS)
ENCODERS = ("random-vgg19", "offline")
LABELS = {"random-vgg19": "random VGG19 (before)", "offline": "offline encoder (now)"}


def encoders(seed: int, device: str) -> dict[str, tuple[Encoder, Options]]:
    """name -> (encoder, options) for the two contenders."""
    default = PRESETS["default"]
    vgg = load_encoder(
        "random-vgg19", upto="block5_conv1", pooling=default.pooling, seed=seed, device=device
    )
    return {
        "random-vgg19": (vgg, default.replace(weights="random-vgg19")),
        "offline": (load_encoder("offline", seed=seed, device=device), PRESETS["offline"]),
    }


def output_path(folder: Path, encoder: str, content: Path, style: Path) -> Path:
    return folder / f"{encoder}__{content.stem}__{style.stem}.png"


def stylize_all(size: int, steps: int, seed: int, device: str, folder: Path) -> list[dict]:
    """Run every pair with both encoders (skipping outputs that exist); the run log."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "runs.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    contenders = encoders(seed, device)
    for content in CONTENTS:
        for style in STYLES:
            for name, (encoder, base) in contenders.items():
                path = output_path(folder, name, content, style)
                if path.exists():
                    continue
                opts = base.replace(size=size, steps=steps, seed=seed, device=device)
                start = time.perf_counter()
                result = run(content, style, opts, encoder=encoder)
                result.image.save(path)
                row = {
                    "encoder": name,
                    "content": content.name,
                    "style": style.name,
                    "size": result.metrics["size"],
                    "steps": result.metrics["steps"],
                    "seconds": round(time.perf_counter() - start, 1),
                }
                log.append(row)
                log_path.write_text(json.dumps(log, indent=1))
                print(json.dumps(row), flush=True)
    return log


def grid(folder: Path, box: int, path: Path) -> None:
    """Top row: the paintings; then one row per photo, and per painting two columns:
    the random VGG19, then the offline encoder. Cells are ``box`` wide, 3/4 as high."""
    pad, head = 6, 16
    high = box * 3 // 4
    cols = 1 + 2 * len(STYLES)
    width = cols * (box + pad) + pad
    height = (len(CONTENTS) + 1) * (high + pad) + head + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)

    def cell(col: int, row: int, img: Image.Image, span: int = 1) -> None:
        wide = span * box + (span - 1) * pad
        scale = min(wide / img.width, high / img.height)
        t = resize(img, (round(img.width * scale), round(img.height * scale)))
        x = pad + col * (box + pad) + (wide - t.width) // 2
        y = pad + row * (high + pad) + (head if row else 0) + (high - t.height) // 2
        sheet.paste(t, (x, y))

    for j, style in enumerate(STYLES):
        cell(1 + 2 * j, 0, load_image(style), span=2)
        for k, name in enumerate(ENCODERS):
            x = pad + (1 + 2 * j + k) * (box + pad)
            draw.text((x + 2, pad + high + 2), LABELS[name], fill="black")
    for i, content in enumerate(CONTENTS):
        cell(0, i + 1, load_image(content))
        for j, style in enumerate(STYLES):
            for k, name in enumerate(ENCODERS):
                out = output_path(folder, name, content, style)
                if out.exists():
                    cell(1 + 2 * j + k, i + 1, Image.open(out).convert("RGB"))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="long side of each output")
    parser.add_argument("--steps", type=int, default=200, help="steps per run, both encoders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--outputs",
        type=Path,
        default=Path("/tmp/painterly-offline-gallery"),
        help="folder for the single outputs (reused: existing ones are not redone)",
    )
    parser.add_argument("--grid", type=Path, default=ROOT / "docs" / "offline_gallery.jpg")
    parser.add_argument("--box", type=int, default=256, help="cell size of the grid in px")
    args = parser.parse_args()
    folder = args.outputs / f"{args.size}px_{args.steps}steps_seed{args.seed}"
    stylize_all(args.size, args.steps, args.seed, args.device, folder)
    grid(folder, args.box, args.grid)
    print(f"grid: {args.grid}\noutputs: {folder}")


if __name__ == "__main__":
    main()
