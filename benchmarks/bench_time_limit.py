"""What a time budget buys: the same stylisation under several ``--time-limit`` values.

Runs one pair at one size with each limit (0 = the preset's full step budget) in one
process, the encoder loaded once, and prints one JSON line per run: wall seconds, steps
done, and the final losses at the output size (comparable across the runs, since every
run ends at the same scale). Saves each output so the results can be looked at.

    python benchmarks/bench_time_limit.py --weights random-vgg19 --limits 60 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import painterly
from painterly import paintings
from painterly.api import resolve_run
from painterly.events import ignore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=float, nargs="+", default=[60, 0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights", default="random-vgg19")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--content", default=str(EXAMPLES / "content" / "tubingen_neckarfront.jpg"))
    parser.add_argument("--style", default=str(paintings.path("van_gogh_starry_night")))
    parser.add_argument("--output-dir", default="out/time_limit")
    parser.add_argument("--min-size", type=int, default=0, help="0: the preset's")
    parser.add_argument("--steps", type=int, default=0, help="0: the preset's")
    args = parser.parse_args()
    asked = {"preset": args.preset, "weights": args.weights, "device": args.device}
    opts, encoder, _, _ = resolve_run(None, asked, ignore, None, progress=False)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    m_size, steps = args.min_size or opts.min_size, args.steps or opts.steps
    for limit in args.limits:
        start = time.perf_counter()
        result = painterly.run(
            args.content,
            args.style,
            preset=args.preset,
            encoder=encoder,
            size=args.size,
            time_limit=limit,
            device=args.device,
            min_size=m_size,
            steps=steps,
        )
        seconds = time.perf_counter() - start
        result.image.save(out / f"limit_{limit:g}_min{m_size}_steps{steps}.png")
        m = result.metrics
        print(
            json.dumps(
                {
                    "time_limit": limit,
                    "seconds": round(seconds, 1),
                    "steps": m["steps"],
                    "scales": len(m["scales"]),
                    "min_size": m_size,
                    "planned_steps": steps,
                    "steps_per_scale": m["steps_per_scale"],
                    "size": m["size"],
                    "encoder": m["encoder"],
                    "device": m["device"],
                    **{k: round(v, 4) for k, v in m["losses"].items()},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
