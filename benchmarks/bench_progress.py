"""How good is the time left that a job reports? A batch of three photos and a clip of
24 frames (a slow pan across a bundled photo), each run once through the library with
the events recorded; from the end of the first image (frame) on, every estimate is set
against the time the job then really still took. Prints one JSON line per job with the
worst ratios (estimate / actual; the target is 1/1.5 .. 1.5) and a few samples:

    python benchmarks/bench_progress.py --size 256 --frames 24 --frame-size 160

The offline encoder runs (no weights needed); figures depend on the machine, the
ratios much less so. Run it on a quiet host: another heavy job changes the pace mid-run,
which no estimate foresees.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import painterly
from painterly import paintings
from painterly.batch import run_batch
from painterly.events import Progress, Started

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PHOTOS = sorted((EXAMPLES / "content").iterdir())
PAINTING = paintings.path("van_gogh_starry_night")


class Recorder:
    """Every Progress's time and estimate, and when each part (image, frame) began."""

    def __init__(self):
        self.samples: list[tuple[float, float | None]] = []
        self.parts: list[tuple[float, str]] = []

    def __call__(self, event) -> None:
        now = time.perf_counter()
        if isinstance(event, Progress):
            self.samples.append((now, event.run_left))
        elif isinstance(event, Started) and (not self.parts or self.parts[-1][1] != event.part):
            self.parts.append((now, event.part))

    def judge(self, end: float) -> dict:
        """Ratios estimate / actual from the start of the second part on."""
        second = self.parts[1][0] if len(self.parts) > 1 else self.samples[0][0]
        ratios = [
            left / (end - t)
            for t, left in self.samples
            if t >= second and left is not None and end - t > 0.05 * (end - second)
        ]
        picks = ratios[:: max(1, len(ratios) // 8)]
        return {
            "seconds": round(end - self.samples[0][0], 1),
            "judged_from_s": round(second - self.samples[0][0], 1),
            "estimates": len(ratios),
            "worst_low": round(min(ratios), 3),
            "worst_high": round(max(ratios), 3),
            "within_1.5x": all(1 / 1.5 <= r <= 1.5 for r in ratios),
            "samples": [round(r, 3) for r in picks],
        }


def bench_batch(size: int) -> dict:
    recorder = Recorder()
    items = [(str(p), [(str(PAINTING), 1.0)]) for p in PHOTOS[:3]]
    run_batch(items, weights="offline", size=size, device="cpu", callback=recorder)
    return {"job": f"batch of 3 at {size} px", **recorder.judge(time.perf_counter())}


def bench_clip(frames: int, side: int) -> dict:
    from painterly.video import io
    from painterly.video.run import FrameStore, stylize_clip

    recorder = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clip"
        folder.mkdir()
        photo = Image.open(PHOTOS[-1]).convert("RGB")
        w, h = photo.size
        crop_w, crop_h = int(w * 0.8), int(h * 0.8)
        for k in range(frames):  # a slow pan: the flow has something to follow
            x = round((w - crop_w) * k / max(1, frames - 1))
            frame = photo.crop((x, 0, x + crop_w, crop_h)).resize((side, side * crop_h // crop_w))
            frame.save(folder / f"frame_{k:03d}.png")
        clip = io.open_clip(folder, fps=24)
        store = FrameStore(Path(tmp) / "out.frames")
        stylize_clip(
            clip,
            [(str(PAINTING), 1.0)],
            store,
            overrides={"weights": "offline", "device": "cpu"},
            callback=recorder,
        )
    return {"job": f"clip of {frames} frames at {side} px", **recorder.judge(time.perf_counter())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="the batch's long side")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--frame-size", type=int, default=160)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = f"{platform.processor() or platform.machine()}, {args.threads} threads"
    print(json.dumps({"painterly": painterly.__version__, "cpu": cpu}), flush=True)
    print(json.dumps(bench_batch(args.size)), flush=True)
    print(json.dumps(bench_clip(args.frames, args.frame_size)), flush=True)


if __name__ == "__main__":
    main()
