"""Where an optimisation step's time goes: the share of each phase and of each layer.

One photo and painting at the run's size, the preset's objective, then ``--steps``
evaluations (loss and gradient, as L-BFGS makes them) under ``torch.profiler``. Prints
one JSON line: the step's milliseconds; the share of self CPU time per operator group
(the convolutions' forward, their backward, the Gram products, the pooling and
activations, the rest); and the forward time of each convolution, by layer, from
module hooks (the backward of a layer costs about twice its forward).

    python benchmarks/profile_step.py                          # offline preset, 512x384
    python benchmarks/profile_step.py --weights random-vgg19   # the default preset's VGG19
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from painterly import paintings
from painterly.api import make_options, prepare_inputs
from painterly.encoders import load_encoder
from painterly.image import load_image, resize, to_tensor
from painterly.optimize import Objective
from painterly.pipeline import style_size

GROUPS = {  # the first group whose key is in the operator's name
    "conv backward": ("convolution_backward",),
    "conv forward": ("mkldnn_convolution", "aten::convolution", "aten::_convolution"),
    "gram and loss products": ("aten::mm", "aten::bmm", "aten::addmm", "aten::matmul"),
    "pooling and activations": ("pool", "relu", "threshold"),
    "other backward": ("Backward", "backward"),
}


def group_of(op: str) -> str:
    for group, keys in GROUPS.items():
        if any(k in op for k in keys):
            return group
    return "the rest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="offline")
    parser.add_argument("--photo", default="examples/content/tubingen_neckarfront.jpg")
    parser.add_argument("--size", type=int, nargs=2, default=[512, 384])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    opts = make_options(weights_resolved=args.weights, weights=args.weights)
    photo = resize(load_image(args.photo), tuple(args.size))
    style = load_image(paintings.path("van_gogh_starry_night"))
    content_img, style_imgs, _, _ = prepare_inputs(photo, style, opts)
    size = content_img.size
    content = to_tensor(content_img)
    styles = [(to_tensor(resize(img, style_size(img, size, opts))), w) for img, w in style_imgs]
    layers = (opts.content_layer, *opts.style_layers)
    encoder = load_encoder(args.weights, pooling=opts.pooling, seed=opts.seed)
    pre = encoder.preprocessing
    started = time.perf_counter()
    objective = Objective(encoder, content, styles, opts)
    targets_s = time.perf_counter() - started
    x = pre.to_input(content).clone().requires_grad_(True)  # the network's input

    forward_s: dict[str, float] = defaultdict(float)
    begun: dict[str, float] = {}
    names = {m: n for n, m in encoder.net.named_modules() if isinstance(m, torch.nn.Conv2d)}

    def pre_hook(module, _inputs):
        begun[names[module]] = time.perf_counter()

    def hook(module, _inputs, _output):
        forward_s[names[module]] += time.perf_counter() - begun[names[module]]

    handles = [m.register_forward_pre_hook(pre_hook) for m in names]
    handles += [m.register_forward_hook(hook) for m in names]

    def step() -> None:
        x.grad = None
        total, _ = objective(x)
        total.backward()

    step()  # warm-up: oneDNN picks its kernels
    forward_s.clear()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        step_ms = 1000 * (time.perf_counter() - started) / args.steps
    for h in handles:
        h.remove()
    shares: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        shares[group_of(event.key)] += event.self_cpu_time_total
    whole = sum(shares.values())
    per_layer = {n: round(1000 * s / args.steps, 2) for n, s in forward_s.items()}
    print(
        json.dumps(
            {
                "weights": args.weights,
                "size": args.size,
                "layers": list(layers),
                "threads": torch.get_num_threads(),
                "ms_per_step": round(step_ms, 1),
                "targets_s": round(targets_s, 2),
                "share": {k: round(v / whole, 3) for k, v in sorted(shares.items())},
                "conv_forward_ms": per_layer,
                "conv_forward_ms_total": round(sum(per_layer.values()), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
