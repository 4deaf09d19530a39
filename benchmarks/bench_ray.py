"""Images per minute of ``painterly batch --ray`` with 1 and 2 workers on this machine,
and what each Ray task costs on top of the same image made locally.

The same ``--count`` photos (one style, offline encoder) are stylised three ways, each
through the CLI in this process: ``painterly batch --batch-size 1`` locally with one
thread (the reference; its ``seconds`` include loading the encoder once); then on a
fresh local Ray cluster (``ray.cluster_utils.Cluster``: a head with no CPUs and W
one-CPU worker nodes) for each W. A Ray run's wall time includes joining the cluster
and starting the worker processes, as a user's run does. ``overhead_s`` is what each
task costs beyond a local image: W * wall / count - local seconds per image.

    RAY_USAGE_STATS_ENABLED=0 python benchmarks/bench_ray.py --count 12 --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import blob, stripes  # noqa: E402

from painterly.cli import main as cli  # noqa: E402


def run(args: list[str]) -> float:
    started = time.perf_counter()
    code = cli([*args, "--quiet"])
    if code != 0:
        raise SystemExit(f"painterly {' '.join(args)} exited with {code}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12, help="photos (outputs)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = []
        for i in range(args.count):
            path = folder / f"photo{i:03d}.png"
            blob(96, 64).rotate(7 * i, resample=Image.Resampling.BICUBIC).save(path)
            photos.append(str(path))
        stripes().save(folder / "style.png")
        common = [*photos, "--style", str(folder / "style.png"), "--weights", "offline"]
        common += ["--size", str(args.size), "--steps", str(args.steps)]

        (folder / "local").mkdir()
        torch.set_num_threads(1)
        local = run(["batch", *common, "-o", str(folder / "local"), "--batch-size", "1"])
        per_image = local / args.count
        print(
            json.dumps(
                {
                    "run": "local",
                    "count": args.count,
                    "seconds": round(local, 2),
                    "images_per_min": round(60 / per_image, 1),
                }
            )
        )
        for workers in args.workers:
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
            try:
                for _ in range(workers):
                    cluster.add_node(num_cpus=1)
                out = folder / f"ray{workers}"
                out.mkdir()
                wall = run(["batch", *common, "-o", str(out), "--ray", cluster.address])
            finally:
                cluster.shutdown()
            row = {
                "run": "ray",
                "workers": workers,
                "count": args.count,
                "seconds": round(wall, 2),
                "images_per_min": round(60 * args.count / wall, 1),
                "overhead_s": round(workers * wall / args.count - per_image, 3),
            }
            print(json.dumps(row))
        print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, size {args.size}")


if __name__ == "__main__":
    main()
