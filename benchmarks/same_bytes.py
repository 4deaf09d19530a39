"""Fingerprints of a fixed set of small runs, to show a refactoring changed no result.

Prints one line per run: its name and the SHA-256 of the output image's pixels. Run it
on two commits on the same machine and compare (fp32, so the figures do not depend on
whether the CPU has bf16 instructions):

    git worktree add /tmp/base <commit>
    PYTHONPATH=/tmp/base/src python benchmarks/same_bytes.py > /tmp/before.txt
    PYTHONPATH=src python benchmarks/same_bytes.py > /tmp/after.txt
    diff /tmp/before.txt /tmp/after.txt && echo identical
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import painterly
from painterly import paintings
from painterly.batch import run_batch
from painterly.image import load_image

ROOT = Path(__file__).resolve().parent.parent / "examples"
PHOTO = load_image(ROOT / "content" / "chelsea_cat.png")
ROCKET = load_image(ROOT / "content" / "spacex_falcon9_dscovr_launch.jpg")
WAVE = load_image(paintings.path("hokusai_great_wave"))
STARRY = load_image(paintings.path("van_gogh_starry_night"))
COMMON = dict(precision="fp32", weights="random", seed=3)

RUNS = {
    "offline-3-scales": lambda: painterly.run(
        PHOTO, WAVE, size=160, min_size=80, steps=24, **COMMON
    ),
    "offline-tiled": lambda: painterly.run(PHOTO, WAVE, size=192, tile=96, steps=12, **COMMON),
    "blend-adam-noise": lambda: painterly.run(
        ROCKET,
        [(WAVE, 0.7), (STARRY, 0.3)],
        size=96,
        steps=10,
        optimizer="adam",
        init="noise",
        **COMMON,
    ),
    "vgg19-chollet": lambda: painterly.run(
        PHOTO, WAVE, preset="chollet", height=48, steps=20, **{**COMMON, "weights": "random-vgg19"}
    ),
}


def digest(img) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()[:16]


def main() -> None:
    for name, make in RUNS.items():
        print(name, digest(make().image), flush=True)
    batch = run_batch(
        [(PHOTO, WAVE), (PHOTO.rotate(180), STARRY), (ROCKET, WAVE)],
        size=96,
        steps=12,
        min_size=64,
        **COMMON,
    )
    for i, result in enumerate(batch):
        print(f"batch-{i}", digest(result.image), flush=True)


if __name__ == "__main__":
    main()
