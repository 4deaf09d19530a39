"""What each scale's steps buy: the final loss of step plans on held-out pairs, VGG19.

Every photo is cropped to 4:3 and painted at 512x384 with the default preset and the
encoder loaded once; each plan is a list of steps per scale, coarse to fine (three numbers:
256, 362 and 512 px; two: 362 and 512; four: from 181), or ``default`` for the preset's own
plan. Prints one JSON line per pair and plan: steps and seconds per scale, and the final
loss at 512x384 in fp32 with its ratio to the pair's first plan (the reference). The step
counts, not the host's load, decide the losses; the seconds say what a plan costs.

    python benchmarks/bench_schedule.py --plans 133,96,71 60,35,30 40,30,35
    python benchmarks/bench_schedule.py --weights offline --preset offline --plans default
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image

import painterly
from painterly.api import resolve_run
from painterly.events import ignore
from painterly.image import load_image

HERE = Path(__file__).resolve().parent
HELD = HERE / "heldout"
PAIRS = [
    (HELD / "content/coffee.png", HELD / "style/munch_the_scream.jpg"),
    (
        HELD / "content/nasa_astronaut_eileen_collins.png",
        HELD / "style/turner_shipwreck_of_the_minotaur.jpg",
    ),
    (
        HERE.parent / "examples/content/tubingen_neckarfront.jpg",
        HELD / "style/monet_san_giorgio_maggiore_at_dusk.jpg",
    ),
    (HELD / "content/coffee.png", HELD / "style/picabia_udnie.jpg"),
]


def four_by_three(path: Path) -> Image.Image:
    """The photo's largest centred 4:3 crop at 512x384."""
    img = load_image(path)
    w, h = img.size
    cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch)).resize((512, 384), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", nargs="+", default=["default"])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--weights", default="random-vgg19")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", default="out/schedule")
    args = parser.parse_args()
    asked = {"preset": args.preset, "weights": args.weights}
    _, encoder, _, _ = resolve_run(None, asked, ignore, None, progress=False)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for photo_path, painting in PAIRS[: args.pairs]:
        photo = four_by_three(photo_path)
        reference = None
        for plan in args.plans:
            steps = () if plan == "default" else tuple(int(n) for n in plan.split(","))
            start = time.perf_counter()
            result = painterly.run(
                photo,
                painting,
                preset=args.preset,
                weights=args.weights,
                encoder=encoder,
                size=512,
                precision="fp32",
                scale_steps=steps,
            )
            seconds = time.perf_counter() - start
            m = result.metrics
            loss = m["losses"]["total"]
            reference = reference or loss
            name = f"{photo_path.stem}_{Path(painting).stem.split('_')[0]}"
            result.image.save(out / f"{name}_{plan.replace(',', '-')}.png")
            last = len(m["steps_per_scale"]) - 1
            fine = [h["total"] for h in m["history"] if h["scale"] == last]
            row = {
                "pair": name,
                "plan": plan,
                "steps_per_scale": m["steps_per_scale"],
                "seconds_per_scale": m["seconds_per_scale"],
                "seconds": round(seconds, 1),
                "loss": round(loss, 4),
                "vs_first": round(loss / reference, 3),
                # The finest scale's loss after 1, 10, 20, ... of its steps.
                "finest_at": {n: round(fine[n - 1], 4) for n in (1, *range(10, len(fine) + 1, 10))},
                "weights": args.weights,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
