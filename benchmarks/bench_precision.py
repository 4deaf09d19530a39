"""fp32 against bf16: final loss, wall time and step time on the three bundled pairs.

For each encoder (the offline encoder with its preset; VGG19 with the default preset,
random weights standing in for the pretrained ones' cost) and each bundled
(photo, painting) pair, runs the same stylisation in fp32 and in bf16 and prints one JSON
line per run: the final loss **evaluated in fp32** on the saved 8-bit image (so both
precisions are judged by the same yardstick), its ratio to the fp32 run's, the wall time
and the mean step time. The images go to ``--out`` to be looked at side by side.

    python benchmarks/bench_precision.py                      # what docs/performance.md shows
    python benchmarks/bench_precision.py --size 256 --steps 60 --encoders offline   # quicker

`--precision auto` may pick bf16 on a device only where every pair's ratio is within
1.02 and the images look the same.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import painterly
from painterly import paintings
from painterly.api import make_options, resolve_run
from painterly.events import ignore
from painterly.image import load_image, resize, save_image, to_tensor
from painterly.optimize import Objective
from painterly.pipeline import output_size, style_size
from painterly.precision import cpu_has_bf16, numerics

ROOT = Path(__file__).resolve().parent.parent / "examples"
PAIRS = [
    ("tubingen_neckarfront.jpg", "van_gogh_starry_night.jpg"),
    ("chelsea_cat.png", "hokusai_great_wave.jpg"),
    ("spacex_falcon9_dscovr_launch.jpg", "kandinsky_composition_vii.jpg"),
]
ENCODERS = {"offline": dict(preset="offline"), "vgg19": dict(weights="random-vgg19")}


def fp32_loss(result_img, photo, painting, run_opts) -> float:
    """The run's objective, in fp32, at the output size, for the saved 8-bit image."""
    opts, encoder, device, _ = resolve_run(None, run_opts, ignore, None)
    size = output_size(photo.size, opts)
    content = to_tensor(resize(photo, size)).to(device)
    style = to_tensor(resize(painting, style_size(painting, size, opts)))
    objective = Objective(encoder, content, [(style.to(device), 1.0)], opts)
    x = encoder.preprocessing.to_input(to_tensor(result_img).to(device))
    with torch.no_grad(), numerics("fp32", device):
        total, _ = objective(x)
    return float(total)


def best_step_ms(enc_name: str, size: int, precision: str, repeats: int = 5) -> float:
    """Best of ``repeats`` loss-and-gradient steps at ``size`` x 3/4 (after a warm-up)."""
    run_opts, encoder, device, _ = resolve_run(None, dict(ENCODERS[enc_name]), ignore, None)
    gen = torch.Generator().manual_seed(0)
    content, style = (torch.rand(1, 3, size * 3 // 4, size, generator=gen) for _ in range(2))
    with numerics(precision, device):
        objective = Objective(encoder, content.to(device), [(style.to(device), 1.0)], run_opts)
    x = encoder.preprocessing.to_input(content.to(device)).clone().requires_grad_(True)
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        with numerics(precision, device):
            total, _ = objective(x)
        x.grad = None
        total.backward()
        if i:
            best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--encoders", default="offline,vgg19")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="out/precision")
    parser.add_argument(
        "--steps-only", action="store_true", help="only the best step times at 512x384"
    )
    parser.add_argument(
        "--precisions", default="fp32,bf16", help="comma-separated; the first is the base"
    )
    parser.add_argument("--pairs", default="0,1,2", help="which bundled pairs, by index")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "machine": platform.processor() or platform.machine(),
        "cpu_bf16": cpu_has_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": args.device,
        "size": args.size,
        "steps": args.steps,
    }
    print(json.dumps(header), flush=True)
    for enc in args.encoders.split(","):
        times = {p: best_step_ms(enc, 512, p) for p in ("fp32", "bf16")}
        print(json.dumps({"encoder": enc, "step_512x384_ms": times}), flush=True)
    if args.steps_only:
        return
    for enc in args.encoders.split(","):
        for photo_name, painting_name in [PAIRS[int(i)] for i in args.pairs.split(",")]:
            photo = load_image(ROOT / "content" / photo_name)
            painting = load_image(paintings.FOLDER / painting_name)
            base = None
            precisions = args.precisions.split(",")
            for precision in precisions:
                run_opts = dict(
                    ENCODERS[enc],
                    size=args.size,
                    steps=args.steps,
                    device=args.device,
                    precision=precision,
                )
                make_options(**run_opts)  # refuse a bad option before the clock starts
                start = time.perf_counter()
                result = painterly.run(photo, painting, **run_opts)
                wall = time.perf_counter() - start
                loss = fp32_loss(result.image, photo, painting, run_opts)
                base = loss if precision == precisions[0] else base
                name = f"{enc}_{Path(photo_name).stem}_{precision}.png"
                save_image(result.image, out / name)
                row = {
                    "encoder": enc,
                    "pair": f"{Path(photo_name).stem}/{Path(painting_name).stem}",
                    "precision": precision,
                    "final_loss_fp32": round(loss, 5),
                    "ratio_to_fp32": round(loss / base, 4),
                    "wall_s": round(wall, 2),
                    "ms_per_step": result.metrics["ms_per_step"],
                    "steps": result.metrics["steps"],
                    "image": str(out / name),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
