"""Fast models on this CPU: seconds per painted photo and training iterations per second.

Inference: one forward pass of a loaded model (random weights: speed does not depend on
their values) at 512 and 1024 px (long side, 4:3), best of ``--repeats``, for the
standard width (32) and the small one (16). Training: iterations per second with the
offline encoder as the loss network, batches of ``--batch-size`` 256 px crops of the
bundled photos, after one warm-up iteration. Prints one line per measurement.

    python benchmarks/bench_fast.py --threads 2
    python benchmarks/bench_fast.py --device cuda       # milliseconds on a GPU
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from painterly import paintings
from painterly.api import resolve_run
from painterly.fast.apply import paint_tensor
from painterly.fast.config import DEFAULT_WIDTH, SMALL_WIDTH, TrainConfig
from painterly.fast.network import make_network
from painterly.fast.train import Photos, style_tensors, train

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {DEFAULT_WIDTH: 0.5, SMALL_WIDTH: 0.15}  # seconds at 512 px


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def inference(width: int, side: int, repeats: int, device: str = "cpu") -> float:
    net = make_network(width, 5, seed=0).eval().to(device)
    x = torch.rand(1, 3, side * 3 // 4, side, device=device)
    paint_tensor(net, x)  # warm-up: oneDNN or cuDNN picks its kernels
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        paint_tensor(net, x)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def training(width: int, iterations: int, batch: int, device: str = "cpu") -> float:
    opts, encoder, device, _ = resolve_run(
        None, {"weights": "offline", "device": device}, print, None
    )
    style = paintings.path("van_gogh_starry_night")
    config = TrainConfig(iterations=iterations + 1, batch_size=batch, crop=256, width=width)
    photos = Photos(ROOT / "examples" / "content", config.crop, config.jitter)
    styles = style_tensors([(str(style), 1.0)], opts, config.crop)
    result = train(photos, styles, [], config, opts, encoder, device)
    history = result.metrics["history"]
    return iterations / (history[-1]["seconds"] - history[0]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-iterations", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} threads")
    for width in (DEFAULT_WIDTH, SMALL_WIDTH):
        for side in (512, 1024):
            s = inference(width, side, args.repeats, args.device)
            target = f" (target <= {TARGETS[width]} s)" if side == 512 else ""
            print(f"inference width {width} {side}x{side * 3 // 4}: {s:.3f} s{target}")
    for width in (DEFAULT_WIDTH, SMALL_WIDTH):
        rate = training(width, args.train_iterations, args.batch_size, args.device)
        print(
            f"training width {width}, batch {args.batch_size} x 256 px, offline encoder: "
            f"{rate:.3f} it/s ({1 / rate:.2f} s/it)"
        )


if __name__ == "__main__":
    main()
