"""Images per second of batched runs (``painterly.run_batch``) at several batch sizes.

Every configuration stylises ``batch`` different square images of ``--size`` px, each
with its own painting, in one ``run_batch`` call on one scale, with the encoder loaded
once for the whole process (so its loading is not timed). ``seconds`` is the wall time
of the call (targets, optimisation, images out), ``ms_per_step`` the optimiser's time
per step of the whole batch, ``ratio`` the images per second relative to the first
batch size given (1 by default). Peak memory is the CUDA allocator's peak per
configuration on GPUs and the process's peak RSS so far on CPUs (so give the batch
sizes in increasing order). One JSON line per configuration.

    python benchmarks/bench_batch.py --size 128 --steps 20          # CPU, offline encoder
    python benchmarks/bench_batch.py --device cuda --size 512 --batches 1 4 16 \\
        --weights random-vgg19
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

import painterly
from painterly.api import resolve_run
from painterly.events import ignore
from painterly.image import to_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import _peak_mb, _sync  # noqa: E402


def smooth_images(count: int, size: int, seed: int) -> list:
    """``count`` different smooth random RGB images, size x size."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, max(size // 16, 2), max(size // 16, 2), generator=gen)
    fine = F.interpolate(coarse, size=(size, size), mode="bicubic").clamp(0, 1)
    return [to_image(img) for img in fine]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per batch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default="offline", choices=("offline", "random-vgg19"))
    parser.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    options = dict(
        weights=args.weights,
        device=args.device,
        precision=args.precision,
        optimizer=args.optimizer,
        size=args.size,
        scales=1,
    )
    _, encoder, device, _ = resolve_run(None, options, ignore, None)
    contents = smooth_images(max(args.batches), args.size, seed=1)
    styles = smooth_images(max(args.batches), args.size, seed=2)
    first = None
    for batch in args.batches:
        items = list(zip(contents[:batch], styles[:batch], strict=True))
        run = dict(encoder=encoder, max_batch=batch, progress_every=10**9, **options)
        painterly.run_batch(items, steps=args.warmup, **run)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        start = time.perf_counter()
        results = painterly.run_batch(items, steps=args.steps, **run)
        _sync(device)
        seconds = time.perf_counter() - start
        per_s = batch / seconds
        first = first or per_s
        print(
            json.dumps(
                {
                    "batch": batch,
                    "batched": max(r.metrics["batch"] for r in results),  # what memory allowed
                    "size": args.size,
                    "steps": args.steps,
                    "seconds": round(seconds, 3),
                    "images_per_s": round(per_s, 4),
                    "ms_per_step": results[0].metrics["ms_per_step"],
                    "ratio": round(per_s / first, 2),
                    "peak_mb": round(_peak_mb(device)),
                    "device": str(device),
                    "encoder": encoder.name,
                    "optimizer": args.optimizer,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
