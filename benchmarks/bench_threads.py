"""Milliseconds per step with 1 or 2 threads and OpenMP's two wait policies, on a quiet
machine and beside CPU-burning processes: what ``--threads`` and the CLI's default
(``OMP_WAIT_POLICY=PASSIVE``) are chosen from.

Each configuration runs in its own process (OpenMP reads its wait policy once, when it
loads), one after another, so the ratios compare runs of the same minute. "Busy" starts
``--burners`` processes that spin on the CPU for the whole of the run, as a second job
on a shared machine would. Prints one JSON line per configuration:

    python benchmarks/bench_threads.py                       # VGG19 (random weights), 512x384
    python benchmarks/bench_threads.py --weights offline --steps 20
    python benchmarks/bench_threads.py --policies PASSIVE --threads 2 3 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import contextmanager

CHILD = """
import json, sys
import painterly
from painterly import paintings
from painterly.image import load_image
photo = load_image(sys.argv[1]).resize((512, 384))
style = load_image(paintings.path("hokusai_great_wave"))
threads, steps, weights = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = painterly.run(photo, style, weights=weights, size=512, scales=1, steps=steps,
                  precision="fp32", threads=threads, seed=0)
print(json.dumps({"ms_per_step": r.metrics["ms_per_step"], "threads": threads}))
"""


@contextmanager
def burning(count: int):
    """``count`` processes spinning on the CPU until the block ends."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def measure(photo: str, threads: int, policy: str, steps: int, weights: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, photo, str(threads), str(steps), weights],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["ms_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default="examples/content/tubingen_neckarfront.jpg")
    parser.add_argument("--weights", default="random-vgg19")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policies", nargs="+", default=["ACTIVE", "PASSIVE"])
    args = parser.parse_args()
    for load in ("quiet", "busy"):
        for policy in args.policies:
            for threads in args.threads:
                with burning(args.burners if load == "busy" else 0):
                    ms = measure(args.photo, threads, policy, args.steps, args.weights)
                line = {
                    "load": load,
                    "burners": args.burners if load == "busy" else 0,
                    "omp_wait_policy": policy,
                    "threads": threads,
                    "weights": args.weights,
                    "size": [512, 384],
                    "ms_per_step": ms,
                    "cores": os.cpu_count(),
                }
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
