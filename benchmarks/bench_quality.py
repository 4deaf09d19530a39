"""Does a fast path reach the same result? Final loss at equal steps, measured in fp32.

Runs the default preset on a real photo and painting with each configuration for the
same number of steps, then evaluates every result under the fp32 objective and prints
its loss relative to the fp32 run (target: within 2 %), plus the wall time of the whole
stylisation with the encoder already loaded. One JSON line per configuration.

    python benchmarks/bench_quality.py --device cuda --size 512 --steps 300
    python benchmarks/bench_quality.py --size 64 --steps 5          # a CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import painterly
from painterly import paintings
from painterly.api import make_options
from painterly.encoders import load_encoder
from painterly.image import load_image, resize, to_tensor
from painterly.optimize import Objective

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import random_vgg19  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIGS = {
    "fp32": {"precision": "fp32", "cuda_graph": False},
    "tf32": {"precision": "tf32"},
    "bf16": {"precision": "bf16"},
    "bf16-adam": {"precision": "bf16", "optimizer": "adam"},
    "fp32-adam": {"precision": "fp32", "optimizer": "adam"},
}


def fp32_loss(encoder, content, style, image, opts) -> float:
    """Total loss of ``image`` under the fp32 objective of ``opts``."""
    opts = opts.replace(precision="fp32")
    size = image.size
    c = to_tensor(resize(content, size)).to(content_device(encoder))
    s = to_tensor(resize(style, size)).to(c.device)
    x = encoder.preprocessing.to_input(to_tensor(image).to(c.device))
    with torch.no_grad():
        total, _ = Objective(encoder, c, [(s, 1.0)], opts)(x)
    return float(total)


def content_device(encoder) -> torch.device:
    return next(encoder.net.parameters()).device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--weights",
        default="vgg19-random",
        help="vgg19-random (VGG19's cost, random weights) or any --weights value",
    )
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    args = parser.parse_args()
    configs = args.configs or (list(CONFIGS) if args.device == "cuda" else ["fp32", "fp32-adam"])
    content = load_image(EXAMPLES / "content" / "tubingen_neckarfront.jpg")
    style = load_image(paintings.path("van_gogh_starry_night"))
    base = make_options(
        preset="default",
        weights=args.weights,
        size=args.size,
        steps=args.steps,
        device=args.device,
        style_stretch=True,
    )
    upto = max([base.content_layer, *base.style_layers])
    if args.weights == "vgg19-random":
        encoder = random_vgg19(args.device, upto, base.pooling)
    else:
        encoder = load_encoder(args.weights, upto=upto, pooling=base.pooling, device=args.device)
    reference = None
    for name in configs:
        opts = base.replace(**CONFIGS[name])
        painterly.run(content, style, opts, encoder=encoder, steps=3)  # warm up
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = painterly.run(content, style, opts, encoder=encoder, progress_every=10**9)
        wall = time.perf_counter() - start
        loss = fp32_loss(encoder, content, style, result.image, opts)
        reference = reference or loss
        print(
            json.dumps(
                {
                    "config": name,
                    "device": args.device,
                    "size": result.metrics["size"],
                    "steps": result.metrics["steps"],
                    "wall_s": round(wall, 3),
                    "ms_per_step": result.metrics["ms_per_step"],
                    "fp32_loss": round(loss, 6),
                    "loss_vs_fp32": round(loss / reference, 4),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
