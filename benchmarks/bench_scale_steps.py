"""Time one loss-and-gradient step at each scale of a default 512 px run, for an encoder.

Prints one JSON line: ms per step at 256x192, 362x272 and 512x384 (the three scales of a
512x384 run), each the best of ``--repeats`` after a warm-up, so that a busy shared host
adds as little as possible. Made for A/B comparisons across commits on the same machine:

    git worktree add "$OLD" <commit>     # $OLD: any folder outside this checkout
    PYTHONPATH="$OLD/src" python benchmarks/bench_scale_steps.py   # then without, alternating

``--weights offline`` (default) is the offline encoder with its preset; ``random-vgg19``
costs what the pretrained VGG19 costs, with the default preset.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from painterly.api import make_options
from painterly.encoders import deepest, load_encoder
from painterly.optimize import Objective

SCALES = [(256, 192), (362, 272), (512, 384)]


def best_step_ms(objective: Objective, x: torch.Tensor, repeats: int) -> float:
    best = float("inf")
    for i in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        total, _ = objective(x)
        x.grad = None
        total.backward()
        if i:
            best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="offline", choices=["offline", "random-vgg19"])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    opts = make_options(preset="offline" if args.weights == "offline" else "default")
    upto = None if args.weights == "offline" else deepest((opts.content_layer, *opts.style_layers))
    encoder = load_encoder(args.weights, upto=upto, pooling=opts.pooling)
    # Older commits set the layout inside optimize(); this makes them comparable.
    encoder.net.to(memory_format=torch.channels_last)
    row = {"weights": args.weights, "threads": torch.get_num_threads()}
    for w, h in SCALES:
        gen = torch.Generator().manual_seed(0)
        content = torch.rand(1, 3, h, w, generator=gen)
        style = torch.rand(1, 3, h, w, generator=gen)
        objective = Objective(encoder, content, [(style, 1.0)], opts)
        x = encoder.preprocessing.to_input(content).clone().requires_grad_(True)
        row[f"ms_{w}x{h}"] = round(best_step_ms(objective, x, args.repeats), 1)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
