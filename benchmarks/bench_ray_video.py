"""Flicker where the chunks of ``painterly video --ray`` meet, by the warping error of
benchmarks/bench_video.py, for several chunk overlaps against one unbroken run.

The clip is bench_video's (a pan over a photo, a disc crossing it). Each configuration
stylises it as ``video --ray`` does, chunk by chunk through the worker's own function
(:func:`painterly.cluster.worker.stylize_chunk`, here in this process: Ray only places
the chunks) and joins the chunks with :func:`painterly.cluster.chunks.compose`;
``sequential`` is one chunk of the whole clip, what ``painterly video`` makes. For each
it prints the warping error of consecutive frames (mean squared difference of frame t
and frame t+1 warped back by the input's flow, reliable pixels only, 0..1 RGB): the
mean over the pairs inside chunks, and the mean and worst over the pairs at the joins
(those touching a cross-fade, or the cut without one), and the same pairs' error in
the sequential run; ``frames_made`` counts the frames stylised, overlaps included.

    python benchmarks/bench_ray_video.py --frames 24 --chunk 8 --overlaps 0 2 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import EXAMPLES, arrays, make_clip  # noqa: E402

from painterly import paintings
from painterly.cluster import worker  # noqa: E402
from painterly.cluster.chunks import compose, join_pairs, plan  # noqa: E402
from painterly.cluster.ray_batch import style_specs  # noqa: E402
from painterly.video.flow import flow, reliable  # noqa: E402
from painterly.video.temporal import warping_error  # noqa: E402


def stylize(frames: list[bytes], chunks, spec: dict, style: bytes) -> list[np.ndarray]:
    made = {}
    for chunk in chunks:
        result = worker.stylize_chunk(
            {**spec, "key": chunk.index}, frames[chunk.start : chunk.stop], style
        )
        if "error" in result:
            raise SystemExit(result["error"])
        made[chunk.index] = dict(zip(range(chunk.start, chunk.stop), result["frames"], strict=True))

    def image(chunk, number):
        import io

        from PIL import Image

        return Image.open(io.BytesIO(made[chunk.index][number])).convert("RGB")

    out = [compose(n, chunks, image) for n in range(len(frames))]
    return [np.asarray(img, np.float32) / 255 for img in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--first-steps", type=int, default=50)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--temporal-weight", type=float, default=5000.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photo", default=str(EXAMPLES / "content" / "tubingen_neckarfront.jpg"))
    parser.add_argument("--style", default=str(paintings.path("van_gogh_starry_night")))
    args = parser.parse_args()
    size = (args.size, round(args.size * 3 / 4))
    spec = {
        "options": {"weights": "offline", "size": args.size, "device": "cpu", "seed": 0},
        "fps": 24.0,
        "first_steps": args.first_steps,
        "temporal_weight": args.temporal_weight,
        "long_term": [],
        "threads": args.threads,
        "styles": style_specs([(args.style, 1.0)]),
    }
    spec["options"]["steps"] = args.steps
    style = Path(args.style).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_clip(Path(tmp) / "in", args.frames, size, Path(args.photo))
        paths = sorted(folder.iterdir())
        frames = [p.read_bytes() for p in paths]
        inputs = arrays(paths)
    pairs = []
    for a, b in zip(inputs, inputs[1:], strict=False):
        a8, b8 = (a * 255).astype(np.uint8), (b * 255).astype(np.uint8)
        f_ab, f_ba = flow(a8, b8), flow(b8, a8)
        pairs.append((f_ab, reliable(f_ab, f_ba)))

    def errors(out: list[np.ndarray]) -> list[float]:
        return [
            warping_error(a, b, f, m) for a, b, (f, m) in zip(out, out[1:], pairs, strict=False)
        ]

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    whole = plan(args.frames, args.frames, 0)
    sequential = errors(stylize(frames, whole, spec, style))
    print(
        json.dumps(
            {
                "run": "sequential",
                "frames": args.frames,
                "size": list(size),
                "warp_error": round(float(np.mean(sequential)), 6),
                "input_warp_error": round(float(np.mean(errors(inputs))), 6),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )
    for overlap in args.overlaps:
        started = time.perf_counter()
        chunks = plan(args.frames, args.chunk, overlap)
        got = errors(stylize(frames, chunks, spec, style))
        joins = join_pairs(chunks)
        inside = [e for t, e in enumerate(got) if t not in joins]
        row = {
            "run": f"chunk{args.chunk}_overlap{overlap}",
            "frames_made": sum(c.count for c in chunks),
            "inside_mean": round(float(np.mean(inside)), 6),
            "join_mean": round(float(np.mean([got[t] for t in joins])), 6),
            "join_worst": round(max(got[t] for t in joins), 6),
            "sequential_same_pairs": round(float(np.mean([sequential[t] for t in joins])), 6),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
