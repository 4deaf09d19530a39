"""A fast model against optimisation, on photos held out of its training.

For each held-out photo: the model's output (one pass, timed) and the optimisation result
with the same encoder's preset (timed), side by side in a gallery image, and for each:

* **style ratio**: the relative Gram loss of the output against the painting over the
  photo's (1.0: no closer to the style than the photo; lower is more stylised), under the
  training encoder (the offline encoder, seed 0) and, as geometric means, under held-out
  judges (offline encoders of seeds 1001-1003; VGG19s with random weights of the same
  seeds), as benchmarks/offline_heldout.py measures them;
* **edges**: correlation of the Sobel edge magnitudes of the output and of the photo.

    python benchmarks/fast_quality.py MODEL PAINTING PHOTO... --gallery docs/fast_gallery.jpg
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from PIL import Image, ImageDraw

import painterly
from painterly.encoders import load_encoder
from painterly.encoders.offline import STYLE_LAYERS
from painterly.fast.apply import paint
from painterly.fast.model_file import load_model
from painterly.image import fit_size, load_image, resize, to_tensor

try:  # run as a script from the repository root or from benchmarks/
    from offline_heldout import JUDGE_SEEDS, edge_correlation, judges, style_distance
except ImportError:  # pragma: no cover - imported as benchmarks.fast_quality
    from benchmarks.offline_heldout import JUDGE_SEEDS, edge_correlation, judges, style_distance


def ratios(out, photo, painting, trained, panel) -> dict[str, float]:
    def ratio(encoder, layers):
        return style_distance(encoder, layers, out, painting) / style_distance(
            encoder, layers, photo, painting
        )

    row = {"training encoder": ratio(trained, STYLE_LAYERS)}
    for family, members in panel.items():
        values = [ratio(e, layers) for e, layers in members]
        row[f"{family} judges"] = math.exp(sum(map(math.log, values)) / len(values))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("painting")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--gallery", default="out/fast_gallery.jpg")
    args = parser.parse_args()
    net, info = load_model(args.model)
    trained = load_encoder("offline", seed=0)
    panel = judges("cpu")
    painting_img = load_image(args.painting)
    tiles = []
    for photo_path in args.photos:
        photo_img = load_image(photo_path)
        photo_img = resize(photo_img, fit_size(*photo_img.size, args.size))
        paint(net, photo_img)  # warm-up
        start = time.perf_counter()
        fast_img = paint(net, photo_img)
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        slow_img = painterly.run(photo_img, painting_img, size=args.size, steps=args.steps).image
        slow_s = time.perf_counter() - start
        photo = to_tensor(photo_img)
        paint_t = to_tensor(resize(painting_img, fit_size(*painting_img.size, args.size)))
        for name, img, seconds in (
            ("fast model", fast_img, fast_s),
            ("optimised", slow_img, slow_s),
        ):
            out = to_tensor(img)
            row = {"photo": Path(photo_path).stem, "method": name, "seconds": round(seconds, 3)}
            row.update(
                {k: round(v, 3) for k, v in ratios(out, photo, paint_t, trained, panel).items()}
            )
            row["edges"] = round(edge_correlation(out, photo), 3)
            print(json.dumps(row), flush=True)
        tiles.append((photo_img, fast_img, fast_s, slow_img, slow_s))
    w, h = tiles[0][0].size
    gallery = Image.new("RGB", (3 * w, sum(t[0].height for t in tiles) + 24 * len(tiles)), "white")
    draw, y = ImageDraw.Draw(gallery), 0
    for photo_img, fast_img, fast_s, slow_img, slow_s in tiles:
        labels = ("held-out photo", f"fast model: {fast_s:.2f} s", f"optimised: {slow_s:.0f} s")
        for i, (img, label) in enumerate(zip((photo_img, fast_img, slow_img), labels, strict=True)):
            gallery.paste(img, (i * w, y + 24))
            draw.text((i * w + 6, y + 6), label, fill="black")
        y += photo_img.height + 24
    Path(args.gallery).parent.mkdir(parents=True, exist_ok=True)
    gallery.save(args.gallery, quality=88)
    print(
        json.dumps({"gallery": args.gallery, "judge_seeds": JUDGE_SEEDS, "model": info.iterations})
    )


if __name__ == "__main__":
    main()
