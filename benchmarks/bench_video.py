"""Flicker of painterly video against per-frame stylisation, by Lai et al.'s warping error.

Makes a clip (a camera panning over a photo, an object crossing it faster than the
camera), stylises it twice with the same settings, independently frame by frame
(``temporal_weight`` 0) and as painterly video, and prints one JSON line per clip:

* ``warp_error``: for consecutive frames, the mean squared difference between frame t
  and frame t+1 warped back by the flow (of the input frames, as Lai et al. do), over
  the reliable pixels only, in 0..1 RGB, averaged over the pairs;
* ``style``: each frame's style loss (relative form), and its worst ratio to the
  per-frame result's; ``seconds``: wall time of the run.

    python benchmarks/bench_video.py --frames 12 --size 160 --strip docs/video_strip.jpg

With ``--model MODEL`` the runs are a fast model's instead (painterly video --model): each
frame on its own (``--blend 0``) and steadied by the flow, with frames per second and each
frame's style ratio (its relative Gram loss against the painting under the offline
encoder, over the photo's) next to the per-frame output's:

    python benchmarks/bench_video.py --frames 48 --size 320 --model starry.safetensors
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly import paintings
from painterly.video import BLEND, TEMPORAL_WEIGHT, io
from painterly.video.fast_model import paint_clip
from painterly.video.flow import flow, reliable
from painterly.video.run import FrameStore, stylize_clip
from painterly.video.temporal import warping_error

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_clip(folder: Path, frames: int, size: tuple[int, int], photo: Path) -> Path:
    """PNG frames: the camera pans right 2 px a frame (at 160 px wide), a dark disc
    crosses 5 px a frame; sizes scale with ``size``."""
    w, h = size
    k = w / 160
    pan, step = 2 * k, 5 * k
    wide = Image.open(photo).convert("RGB").resize((int(w + pan * frames + 16), h + 16))
    arr = np.asarray(wide)
    yy, xx = np.mgrid[0:h, 0:w]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        x0 = int(8 + pan * i)
        frame = arr[8 : 8 + h, x0 : x0 + w].copy()
        disc = (xx - (10 * k + step * i)) ** 2 + (yy - h / 2) ** 2 < (12 * k) ** 2
        frame[disc] = (40, 30, 120)
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    return folder


def arrays(paths) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in paths]


def input_flows(inputs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(flow, reliability) of each consecutive pair of input frames, on the first's grid."""
    pairs = []
    for a, b in zip(inputs, inputs[1:], strict=False):
        f_ab = flow((a * 255).astype(np.uint8), (b * 255).astype(np.uint8))
        f_ba = flow((b * 255).astype(np.uint8), (a * 255).astype(np.uint8))
        pairs.append((f_ab, reliable(f_ab, f_ba)))
    return pairs


def flicker(frames: list[np.ndarray], pairs) -> float:
    errors = [
        warping_error(a, b, f, m) for a, b, (f, m) in zip(frames, frames[1:], pairs, strict=False)
    ]
    return float(np.mean(errors))


def strip(rows: list[list[np.ndarray]], path: Path, columns: int) -> None:
    """Rows of consecutive frames side by side (input, per-frame, painterly video)."""
    h, w = rows[0][0].shape[:2]
    sheet = np.ones((len(rows) * (h + 4), columns * (w + 4), 3), np.float32)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row[:columns]):
            sheet[r * (h + 4) : r * (h + 4) + h, c * (w + 4) : c * (w + 4) + w] = frame
    Image.fromarray((sheet * 255).round().astype(np.uint8)).save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--first-steps", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--temporal-weight", type=float, nargs="+", default=[TEMPORAL_WEIGHT])
    parser.add_argument("--weights", default="offline")
    parser.add_argument("--photo", default=str(EXAMPLES / "content" / "tubingen_neckarfront.jpg"))
    parser.add_argument("--style", default=str(paintings.path("van_gogh_starry_night")))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strip", help="save consecutive frames of each run here (.jpg)")
    parser.add_argument("--strip-frames", type=int, default=5)
    parser.add_argument("--model", help="measure painterly video --model with this model")
    parser.add_argument("--blend", type=float, nargs="+", default=[BLEND])
    parser.add_argument("--device", default="cpu", help="with --model: where it paints")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        return model_runs(args)
    size = (args.size, round(args.size * 3 / 4))
    base = {"weights": args.weights, "size": args.size, "device": "cpu", "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        clip = io.open_clip(make_clip(Path(tmp) / "in", args.frames, size, Path(args.photo)))
        inputs = arrays(clip.frames)
        pairs = input_flows(inputs)
        runs = {"input": {"warp_error": flicker(inputs, pairs)}}
        outputs = {"input": inputs}
        for name, weight in [("per_frame", 0.0)] + [
            (f"video_tw{w:g}", w) for w in args.temporal_weight
        ]:
            store = FrameStore(Path(tmp) / name)
            start = time.perf_counter()
            result = stylize_clip(
                clip,
                [(args.style, 1.0)],
                store,
                overrides={**base, "steps": args.steps},
                first_steps=args.first_steps,
                temporal_weight=weight,
            )
            seconds = time.perf_counter() - start
            frames = arrays(result.frames)
            outputs[name] = frames
            runs[name] = {
                "warp_error": flicker(frames, pairs),
                "seconds": round(seconds, 1),
                "steps": [r["steps"] for r in result.records],
                "style": [round(r["losses"]["style"], 5) for r in result.records],
            }
    per_frame = runs["per_frame"]
    summary = {
        "frames": args.frames,
        "size": list(clip.size if clip.size != size else size),
        "first_steps": args.first_steps,
        "steps": args.steps,
        "weights": args.weights,
        "cpu": f"{platform.processor() or platform.machine()}, {args.threads} threads",
        "input_warp_error": round(runs["input"]["warp_error"], 6),
        "per_frame_warp_error": round(per_frame["warp_error"], 6),
        "per_frame_seconds": per_frame["seconds"],
    }
    for name, run in runs.items():
        if name.startswith("video"):
            ratios = [v / p for v, p in zip(run["style"], per_frame["style"], strict=True)]
            summary[name] = {
                "warp_error": round(run["warp_error"], 6),
                "vs_per_frame": round(per_frame["warp_error"] / run["warp_error"], 2),
                "vs_input": round(run["warp_error"] / runs["input"]["warp_error"], 2),
                "worst_style_ratio": round(max(ratios), 2),
                "seconds": run["seconds"],
            }
    print(json.dumps(summary))
    print(
        json.dumps(
            {
                "style_per_frame": per_frame["style"],
                **{k: v["style"] for k, v in runs.items() if k.startswith("video")},
            }
        )
    )
    if args.strip:
        strip(list(outputs.values()), Path(args.strip), args.strip_frames)


def style_distances(frames, painting: Path) -> list[float]:
    """Each frame's relative Gram loss against the painting under the offline encoder at
    its style layers (lower: more like the painting)."""
    from painterly.encoders import load_encoder
    from painterly.encoders.offline import STYLE_LAYERS
    from painterly.image import fit_size, load_image, resize, to_tensor

    try:
        from offline_heldout import style_distance
    except ImportError:  # pragma: no cover - imported as benchmarks.bench_video
        from benchmarks.offline_heldout import style_distance

    encoder = load_encoder("offline", device="cpu")
    art = load_image(painting)
    style = to_tensor(resize(art, fit_size(*art.size, max(frames[0].shape[:2]))))

    def distance(array):
        return style_distance(
            encoder, STYLE_LAYERS, torch.from_numpy(array).permute(2, 0, 1)[None], style
        )

    return [distance(f) for f in frames]


def model_runs(args) -> None:
    size = (args.size, round(args.size * 3 / 4))
    model = Path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        clip = io.open_clip(make_clip(Path(tmp) / "in", args.frames, size, Path(args.photo)))
        inputs = arrays(clip.frames)
        pairs = input_flows(inputs)
        summary = {
            "frames": args.frames,
            "size": list(clip.size),
            "model": model.name,
            "cpu": f"{platform.processor() or platform.machine()}, {args.threads} threads",
            "device": args.device,
            "input_warp_error": round(flicker(inputs, pairs), 6),
        }
        painting = Path(args.style)
        photo = style_distances(inputs, painting)
        outputs, ratios = {"input": inputs}, {}
        for blend in [0.0, *args.blend]:
            name = "per_frame" if blend == 0 else f"blend{blend:g}"
            start = time.perf_counter()
            store = FrameStore(Path(tmp) / name)
            result = paint_clip(clip, model, store, blend=blend, device=args.device)
            seconds = time.perf_counter() - start
            outputs[name] = frames = arrays(result.frames)
            ratios[name] = [  # the frame's distance over its input frame's
                d / p for d, p in zip(style_distances(frames, painting), photo, strict=True)
            ]
            summary[name] = {
                "warp_error": round(flicker(frames, pairs), 6),
                "frames_per_s": round(args.frames / seconds, 2),
                "mean_style_ratio": round(float(np.mean(ratios[name])), 4),
            }
        for name in summary:
            if name.startswith("blend"):
                run, per_frame = summary[name], summary["per_frame"]
                run["vs_per_frame"] = round(per_frame["warp_error"] / run["warp_error"], 2)
                run["vs_input"] = round(run["warp_error"] / summary["input_warp_error"], 2)
                worst = max(b / p for b, p in zip(ratios[name], ratios["per_frame"], strict=True))
                run["worst_style_vs_per_frame"] = round(worst, 3)
        print(json.dumps(summary))
        if args.strip:
            strip(list(outputs.values()), Path(args.strip), args.strip_frames)


if __name__ == "__main__":
    main()
