"""How many steps ``stylize --init model:MODEL`` saves: the default run against runs that
start from the fast model's output, on photos the model was not trained on.

For each photo: the default run (``--steps`` STEPS, coarse to fine, from the photo) and
its final loss; then runs started from the model's output with fewer steps each, and the
fewest steps whose final loss is at least as low. Losses are the core's own (relative
form, the last scale's final evaluation), so the figures do not depend on the machine's
speed; the seconds are printed too. One JSON line per photo:

    python benchmarks/bench_init_model.py MODEL PAINTING PHOTO... --size 384 --steps 300
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

import painterly


def final_loss(photo: str, painting: str, **options) -> tuple[float, float]:
    """(total loss at the end, seconds) of one run."""
    start = time.perf_counter()
    result = painterly.run(photo, [(painting, 1.0)], **options)
    return result.metrics["losses"]["total"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("painting")
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 150, 200])
    parser.add_argument("--weights", default="offline")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = {"weights": args.weights, "size": args.size, "device": "cpu", "seed": 0}
    print(
        json.dumps(
            {
                "model": args.model,
                "painting": args.painting,
                "size": args.size,
                "default_steps": args.steps,
                "cpu": f"{platform.processor() or platform.machine()}, {args.threads} threads",
            }
        )
    )
    for photo in args.photos:
        target, seconds = final_loss(photo, args.painting, steps=args.steps, **base)
        row = {"photo": photo, "default_loss": round(target, 4), "default_s": round(seconds, 1)}
        runs = {}
        for budget in sorted(args.budgets):
            loss, secs = final_loss(
                photo, args.painting, steps=budget, init=f"model:{args.model}", **base
            )
            runs[budget] = {"loss": round(loss, 4), "s": round(secs, 1)}
            if loss <= target:
                break
        reached = [b for b, r in runs.items() if r["loss"] <= target]
        row["from_model"] = runs
        row["steps_to_match"] = reached[0] if reached else None
        row["steps_saved"] = args.steps - reached[0] if reached else 0
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
