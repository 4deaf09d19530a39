"""Which style objective paints? ``--style-loss gram`` against ``nearest`` on held-out pairs.

The pairs are photos and paintings that no default was tuned on (``benchmarks/heldout/``,
with their sources), plus two bundled photos in held-out paintings. Each pair is
stylised with the offline preset and each ``--style-loss``, then scored by judges that
share nothing with either objective:

* **Gram judge**: the relative Gram loss of the output against the painting in random
  VGG19s drawn with seeds the run never saw (1001-1003), divided by the photo's own
  (1.0: no closer to the painting's style than the photo). A Gram statistic, so it
  leans toward the Gram objective if anything.
* **SWD judge**: the sliced Wasserstein distance between the output's and the painting's
  feature distributions in the same VGG19s (all of each distribution's shape, not only
  its second moments), divided by the photo's.
* **patch judge**: how far the output's 9x9 pixel patches are from their nearest patch
  of the painting (mean L2 in 0..1 RGB, both at 128 px), divided by the photo's: does
  the image consist of the painting's local structures? Pixels, no network at all.
* **structure**: correlation of the Sobel edge magnitudes of the output and the photo
  (1.0: every edge where it was).
* **specks**: the share of the photo's flat pixels (local contrast low) that the output
  paints as a dark speck: at least 0.15 darker than the median of the 15 px around it.
  Pixels, no network: the small dark squares Gram matching leaves on a flat sky.

Prints one row per pair and objective, then the geometric means, and writes a strip per
pair (photo, painting, each objective) to ``--outputs``.

    python benchmarks/style_loss_heldout.py                 # 384 px, the preset's 200 steps
    python benchmarks/style_loss_heldout.py --size 512 --pairs 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.nn import functional as F

from painterly import losses
from painterly.api import run
from painterly.config import BOOK_STYLE_LAYERS, PRESETS, STYLE_LOSSES
from painterly.encoders import load_encoder
from painterly.image import fit_size, load_image, resize, to_image, to_tensor

try:  # run as a script from the repository root or from benchmarks/
    from offline_heldout import edge_correlation
except ImportError:  # pragma: no cover - imported as benchmarks.style_loss_heldout
    from benchmarks.offline_heldout import edge_correlation

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELD = HERE / "heldout"
PHOTOS = {
    "coffee": HELD / "content/coffee.png",
    "astronaut": HELD / "content/nasa_astronaut_eileen_collins.png",
    "tubingen": ROOT / "examples/content/tubingen_neckarfront.jpg",
    "rocket": ROOT / "examples/content/spacex_falcon9_dscovr_launch.jpg",
}
PAINTINGS = {
    "munch": HELD / "style/munch_the_scream.jpg",
    "turner": HELD / "style/turner_shipwreck_of_the_minotaur.jpg",
    "monet": HELD / "style/monet_san_giorgio_maggiore_at_dusk.jpg",
    "picabia": HELD / "style/picabia_udnie.jpg",
}
PAIRS = [
    (PHOTOS[photo], PAINTINGS[painting])
    for photo, painting in (
        ("coffee", "munch"),
        ("astronaut", "turner"),
        ("tubingen", "monet"),
        ("coffee", "picabia"),
        ("rocket", "munch"),
        ("astronaut", "monet"),
    )
]
# The three pairs scripts/demo.sh paints: for the README's before-and-after gallery.
DEMO = [
    (ROOT / "examples/content" / photo, ROOT / "src/painterly/paintings" / painting)
    for photo, painting in (
        ("tubingen_neckarfront.jpg", "van_gogh_starry_night.jpg"),
        ("chelsea_cat.png", "hokusai_great_wave.jpg"),
        ("spacex_falcon9_dscovr_launch.jpg", "kandinsky_composition_vii.jpg"),
    )
]
JUDGE_SEEDS = (1001, 1002, 1003)
PROJECTIONS = 64


def vgg_judges(device: str):
    return [
        load_encoder("random-vgg19", upto="block5_conv1", pooling="avg", seed=s, device=device)
        for s in JUDGE_SEEDS
    ]


@torch.no_grad()
def feature_scores(judge, image: torch.Tensor, painting: torch.Tensor) -> tuple[float, float]:
    """(mean relative Gram loss, mean sliced Wasserstein distance) over the book's layers."""
    pre = judge.preprocessing
    fi = judge.features(pre.to_input(image), BOOK_STYLE_LAYERS)
    fp = judge.features(pre.to_input(painting), BOOK_STYLE_LAYERS)
    gram, swd = [], []
    gen = torch.Generator().manual_seed(7)
    for n in BOOK_STYLE_LAYERS:
        gram.append(float(losses.style_loss_relative(fi[n], losses.gram_mean(fp[n]))))
        a = fi[n][0].flatten(1)  # (C, P)
        b = fp[n][0].flatten(1)
        proj = F.normalize(torch.randn(PROJECTIONS, a.shape[0], generator=gen), dim=1)
        pa, pb = (proj @ a).sort(1).values, (proj @ b).sort(1).values
        q = torch.linspace(0, 1, 256)  # compare the quantiles: the sizes differ
        qa = torch.quantile(pa, q, dim=1)
        qb = torch.quantile(pb, q, dim=1)
        scale = pb.std(1).clamp_min(1e-8)  # each projection in the painting's own units
        swd.append(float(((qa - qb).abs() / scale).mean()))
    return sum(gram) / len(gram), sum(swd) / len(swd)


@torch.no_grad()
def patch_distance(image: torch.Tensor, painting: torch.Tensor, side: int = 128) -> float:
    """Mean L2 distance of each 9x9 patch of ``image`` to its nearest patch of ``painting``."""

    def patches(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape[-2:]
        scale = side / max(h, w)
        small = F.interpolate(t, size=(round(h * scale), round(w * scale)), mode="area")
        return F.unfold(small, 9, stride=2)[0].t()  # (P, 243)

    a, b = patches(image), patches(painting)
    d = torch.cdist(a, b).min(1).values
    return float(d.mean())


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(max(v, 1e-12)) for v in values) / len(values))


def specks(out: torch.Tensor, photo: torch.Tensor) -> float:
    """Share of the photo's flat pixels painted as a dark speck (see the docstring)."""
    from PIL import ImageFilter

    def luma(t: torch.Tensor) -> Image.Image:
        return to_image(t).convert("L")

    def values(img: Image.Image, *filters) -> torch.Tensor:
        for f in filters:
            img = img.filter(f)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255)

    lo, ref = luma(out), luma(photo)
    y, around = values(lo), values(lo, ImageFilter.MedianFilter(15))
    spread = values(ref, ImageFilter.MaxFilter(9)) - values(ref, ImageFilter.MinFilter(9))
    flat = spread < 0.08
    if not flat.any():
        return 0.0
    return float(((around - y > 0.15) & flat).sum() / flat.sum())


def score(out: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor, judges) -> dict:
    grams, swds = [], []
    for j in judges:
        g_out, s_out = feature_scores(j, out, painting)
        g_ph, s_ph = feature_scores(j, photo, painting)
        grams.append(g_out / g_ph)
        swds.append(s_out / s_ph)
    return {
        "gram": geomean(grams),
        "swd": geomean(swds),
        "patch": patch_distance(out, painting) / patch_distance(photo, painting),
        "edges": edge_correlation(out, photo),
        "specks": specks(out, photo),
    }


def grid_sheet(strips: list[Image.Image], labels: list[str], widths: list[int]) -> Image.Image:
    """The strips stacked under a row of column labels, scaled to 1536 px wide."""
    head = 28
    width = max(s.width for s in strips)
    sheet = Image.new("RGB", (width, head + sum(s.height for s in strips)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, w in zip(labels, widths, strict=True):
        draw.text((x + 8, 7), label, fill="black", font_size=16)
        x += w
    y = head
    for s in strips:
        sheet.paste(s, (0, y))
        y += s.height
    scale = 1536 / width
    return sheet.resize((1536, round(sheet.height * scale)), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=PRESETS["offline"].steps)
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help="use the first N pairs")
    parser.add_argument(
        "--set", choices=("heldout", "demo"), default="heldout", help="which pairs to paint"
    )
    parser.add_argument("--grid", type=Path, help="also write every strip, stacked, here")
    parser.add_argument(
        "--configs",
        default=",".join(f"{k}@0.5" for k in STYLE_LOSSES),
        help="comma-separated STYLE_LOSS@STRENGTH[@CONTENT_LAYER][@OPTION=A/B/C] to "
        "compare (an option's list items separated by /)",
    )
    parser.add_argument("--labels", help="comma-separated column labels of --grid, one per config")
    parser.add_argument("--outputs", type=Path, default=Path("/tmp/painterly-style-loss"))
    parser.add_argument("--json", type=Path, help="append the rows to this JSON-lines file")
    args = parser.parse_args()
    args.outputs.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(True)
    encoder = load_encoder("offline", seed=0)
    judges = vgg_judges("cpu")
    kinds = args.configs.split(",")
    rows = []
    strips = []
    for photo_path, paint_path in (PAIRS if args.set == "heldout" else DEMO)[: args.pairs]:
        opts = PRESETS["offline"].replace(size=args.size, steps=args.steps)
        strip = []
        for kind in kinds:
            style_loss, strength, *more = kind.split("@")
            mine = opts.replace(style_loss=style_loss, strength=float(strength))
            for part in more:
                name, is_option, value = part.partition("=")
                if is_option:
                    mine = mine.replace(**{name: value.replace("/", ",")})
                else:
                    mine = mine.replace(content_layer=part)
            start = time.perf_counter()
            result = run(photo_path, paint_path, mine, encoder=encoder)
            seconds = time.perf_counter() - start
            out = to_tensor(result.image)
            size = result.image.size
            photo = to_tensor(resize(load_image(photo_path), size))
            painting_img = load_image(paint_path)
            painting = to_tensor(resize(painting_img, fit_size(*painting_img.size, max(size))))
            row = {
                "photo": photo_path.stem,
                "painting": paint_path.stem,
                "config": kind,
                "size": list(size),
                "seconds": round(seconds, 1),
                **{k: round(v, 4) for k, v in score(out, photo, painting, judges).items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            if not strip:
                strip += [resize(load_image(photo_path), size), resize(painting_img, size)]
            strip.append(result.image)
        sheet = Image.new("RGB", (sum(i.width for i in strip), strip[0].height), "white")
        x = 0
        for img in strip:
            sheet.paste(img, (x, 0))
            x += img.width
        sheet.save(args.outputs / f"{photo_path.stem}__{paint_path.stem}.png")
        strips.append(sheet)
        strip_widths = [img.width for img in strip]
    if args.grid:
        labels = ["photo", "painting"]
        if args.labels:
            labels += args.labels.split(",")
        else:
            labels += [f"--style-loss {k.replace('@', ', strength ')}" for k in kinds]
        grid_sheet(strips, labels, strip_widths).save(args.grid, quality=88)
    print(
        "\n| style loss @ strength | Gram judge | SWD judge | patch judge | structure | seconds |"
    )
    print("|---|---|---|---|---|---|")
    for kind in kinds:
        mine = [r for r in rows if r["config"] == kind]
        cells = [geomean(r[k] for r in mine) for k in ("gram", "swd", "patch")]
        edges = sum(r["edges"] for r in mine) / len(mine)
        secs = sum(r["seconds"] for r in mine) / len(mine)
        print(
            f"| {kind} | "
            + " | ".join(f"{c:.3f}" for c in cells)
            + f" | {edges:.3f} | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
