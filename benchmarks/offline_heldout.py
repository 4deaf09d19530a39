"""Held-out check of the gallery: did the style transfer, or did the optimiser fit one net?

Every output of ``offline_gallery.py`` was optimised against one network (seed 0). Here
each output is measured with networks the optimisation never saw, drawn with other seeds
(1001, 1002, 1003), from both families, so that neither encoder is judged only by its
own kind:

* **style ratio**: the relative Gram loss (averaged over the judge's style layers) of the
  output against the painting, divided by the same loss of the *photo* against the
  painting. 1.0: no closer to the painting's style than the photo; 0.1: ten times closer.
  Geometric mean over the three judges of a family.
* **edges**: correlation of the Sobel edge magnitudes of the output and of the photo
  (1.0: every edge where it was; about 0 for an unrelated image): how much of the photo's
  structure survives.

It prints a markdown table (one row per pair and encoder, then the geometric means).

    python benchmarks/offline_gallery.py          # makes the outputs first
    python benchmarks/offline_heldout.py
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch.nn import functional as F

from painterly import losses
from painterly.config import BOOK_STYLE_LAYERS
from painterly.encoders import Encoder, load_encoder
from painterly.encoders.offline import STYLE_LAYERS
from painterly.image import fit_size, load_image, resize, to_tensor

try:  # run as a script from the repository root or from benchmarks/
    from offline_gallery import CONTENTS, ENCODERS, STYLES, output_path
except ImportError:  # pragma: no cover - imported as benchmarks.offline_heldout
    from benchmarks.offline_gallery import CONTENTS, ENCODERS, STYLES, output_path

JUDGE_SEEDS = (1001, 1002, 1003)


def judges(device: str) -> dict[str, list[tuple[Encoder, tuple[str, ...]]]]:
    """Family name -> independently seeded encoders with the style layers they are read at."""

    def vgg(seed: int) -> Encoder:
        return load_encoder(
            "random-vgg19", upto="block5_conv1", pooling="avg", seed=seed, device=device
        )

    return {
        "offline": [
            (load_encoder("offline", seed=s, device=device), STYLE_LAYERS) for s in JUDGE_SEEDS
        ],
        "random VGG19": [(vgg(s), BOOK_STYLE_LAYERS) for s in JUDGE_SEEDS],
    }


@torch.no_grad()
def style_distance(encoder: Encoder, layers, image: torch.Tensor, style: torch.Tensor) -> float:
    """Relative Gram loss of ``image`` against ``style``, averaged over ``layers``."""
    pre = encoder.preprocessing
    fi = encoder.features(pre.to_input(image), layers)
    fs = encoder.features(pre.to_input(style), layers)
    per_layer = [losses.style_loss_relative(fi[n], losses.gram_mean(fs[n])) for n in layers]
    return float(sum(per_layer) / len(per_layer))


def sobel_magnitude(rgb: torch.Tensor) -> torch.Tensor:
    """Edge strength of the luminance, without the 1 px border."""
    gray = rgb.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=rgb.device).view(1, 1, 3, 3)
    gx = F.conv2d(gray, kx)
    gy = F.conv2d(gray, kx.transpose(2, 3))
    return (gx**2 + gy**2).sqrt()


def edge_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the Sobel magnitudes of two same-sized RGB images."""
    ea, eb = sobel_magnitude(a).flatten(), sobel_magnitude(b).flatten()
    return float(torch.corrcoef(torch.stack([ea, eb]))[0, 1])


def _geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def measure(folder: Path, device: str) -> list[dict]:
    """One row per pair and encoder whose output exists in ``folder``."""
    panel = judges(device)
    rows = []
    for content in CONTENTS:
        for style in STYLES:
            for name in ENCODERS:
                path = output_path(folder, name, content, style)
                if not path.exists():
                    continue
                out_img = load_image(path)
                size = out_img.size
                out = to_tensor(out_img).to(device)
                photo = to_tensor(resize(load_image(content), size)).to(device)
                painting = load_image(style)
                paint = to_tensor(resize(painting, fit_size(*painting.size, max(size)))).to(device)
                row = {"photo": content.stem, "painting": style.stem, "encoder": name}
                for family, members in panel.items():
                    ratios = [
                        style_distance(e, layers, out, paint)
                        / style_distance(e, layers, photo, paint)
                        for e, layers in members
                    ]
                    row[family] = _geomean(ratios)
                row["edges"] = edge_correlation(out, photo)
                rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    families = [k for k in rows[0] if k not in ("photo", "painting", "encoder", "edges")]
    head = ["photo", "painting", "encoder", *(f"style ratio, {f} judges" for f in families)]
    lines = ["| " + " | ".join([*head, "edges"]) + " |", "|" + "---|" * (len(head) + 1)]
    for r in rows:
        cells = [r["photo"], r["painting"], r["encoder"], *(f"{r[f]:.4f}" for f in families)]
        lines.append("| " + " | ".join([*cells, f"{r['edges']:.2f}"]) + " |")
    for name in dict.fromkeys(r["encoder"] for r in rows):
        mine = [r for r in rows if r["encoder"] == name]
        cells = [f"**all {len(mine)}**", "(geometric mean)", f"**{name}**"]
        cells += [f"**{_geomean(r[f] for r in mine):.4f}**" for f in families]
        edges = sum(r["edges"] for r in mine) / len(mine)
        lines.append("| " + " | ".join([*cells, f"**{edges:.2f}** (mean)"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outputs",
        type=Path,
        default=Path("/tmp/painterly-offline-gallery/256px_200steps_seed0"),
        help="folder offline_gallery.py wrote the single outputs to",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rows = measure(args.outputs, args.device)
    if not rows:
        raise SystemExit(f"no outputs in {args.outputs}; run benchmarks/offline_gallery.py first")
    print(table(rows))


if __name__ == "__main__":
    main()
