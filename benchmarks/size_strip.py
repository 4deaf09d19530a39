"""The same settings at several output sizes: does the balance of the losses hold?

Stylises one pair at each size with identical options (no retuning), then saves a strip:
the top row shows every output scaled to the same width, the bottom row the same part of
the picture (the middle third of the width) from each, also at one width. If the losses
are normalised correctly, the rows look alike: the same amount of painting over the same
amount of photo. Prints one JSON line per size with the final relative losses, which
should also agree.

    python benchmarks/size_strip.py --sizes 512 1024 2048 --output docs/size_strip.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image, ImageDraw

import painterly
from painterly import paintings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PANEL = 400  # width of each panel in the strip
LABEL = 20  # height of the caption band


def strip(outputs: list[tuple[int, Image.Image]]) -> Image.Image:
    """Whole outputs above, the middle third of each below, all PANEL px wide."""
    rows = []
    for crop in (False, True):
        panels = []
        for _size, img in outputs:
            if crop:
                w, h = img.size
                img = img.crop((w // 3, h // 3, 2 * w // 3, 2 * h // 3))
            scale = PANEL / img.width
            panels.append(img.resize((PANEL, round(img.height * scale)), Image.LANCZOS))
        rows.append(panels)
    height = sum(max(p.height for p in row) for row in rows) + LABEL
    sheet = Image.new("RGB", (PANEL * len(outputs) + 4 * (len(outputs) - 1), height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (size, _img) in enumerate(outputs):
        x = i * (PANEL + 4)
        draw.text((x + 4, 4), f"{size} px (top: whole; below: middle ninth)", fill="black")
        y = LABEL
        for row in rows:
            sheet.paste(row[i], (x, y))
            y += max(p.height for p in row)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--content", default=str(EXAMPLES / "content" / "tubingen_neckarfront.jpg"))
    parser.add_argument("--style", default=str(paintings.path("van_gogh_starry_night")))
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--steps", type=int, default=0, help="0: the preset's")
    parser.add_argument("--output", default="out/size_strip.png")
    args = parser.parse_args()
    extra = {"steps": args.steps} if args.steps else {}
    outputs = []
    for size in args.sizes:
        start = time.perf_counter()
        result = painterly.run(args.content, args.style, size=size, weights=args.weights, **extra)
        m = result.metrics
        print(
            json.dumps(
                {
                    "size": m["size"],
                    "scales": len(m["scales"]),
                    "steps": m["steps"],
                    "seconds": round(time.perf_counter() - start, 1),
                    "encoder": m["encoder"],
                    **{k: round(v, 4) for k, v in m["losses"].items()},
                }
            ),
            flush=True,
        )
        outputs.append((size, result.image))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    strip(outputs).save(args.output)


if __name__ == "__main__":
    main()
