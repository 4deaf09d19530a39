"""Fingerprints of a fixed set of small runs, to show a refactoring changed no result.

Prints one line per output: its name and the SHA-256 of the image's pixels. The library
runs call ``painterly.run`` and ``run_batch``; the command runs (a video of a few frames,
a fast model applied in tiles, a ``--ray`` batch on a local Ray instance) call the CLI,
so that they fingerprint whatever code the command reaches. Run it
on two commits on the same machine and compare (fp32, so the figures do not depend on
whether the CPU has bf16 instructions):

    git worktree add /tmp/base <commit>
    PYTHONPATH=/tmp/base/src python benchmarks/same_bytes.py > /tmp/before.txt
    PYTHONPATH=src python benchmarks/same_bytes.py > /tmp/after.txt
    diff /tmp/before.txt /tmp/after.txt && echo identical
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
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


FLAGS = ["--precision", "fp32", "--weights", "random", "--seed", "3", "--quiet"]


def painterly_cli(*args) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "painterly", *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")


def command_runs(work: Path):
    """(name, image) of each output of the command runs, made in ``work``."""
    from painterly import __version__
    from painterly.fast.model_file import ModelInfo, save_model
    from painterly.fast.network import make_network

    frames = work / "clip"
    frames.mkdir()
    for i in range(3):  # the cat panning right, 4 px a frame
        PHOTO.crop((4 * i, 0, 4 * i + 200, 150)).save(frames / f"{i:03d}.png")
    painterly_cli(
        "video", frames, paintings.path("hokusai_great_wave"), "-o", work / "painted",
        "--size", 64, "--first-steps", 12, "--steps", 6, *FLAGS,
    )  # fmt: skip
    for frame in sorted((work / "painted").iterdir()):
        yield f"video-{frame.stem}", load_image(frame)

    info = ModelInfo(
        width=8, blocks=2, styles=[{"name": "w", "sha256": "0" * 64, "weight": 1.0}],
        encoder="offline", options={"crop": 64}, iterations=1, version=__version__,
    )  # fmt: skip
    model = save_model(work / "net.safetensors", make_network(8, 2, 0), info)
    ROCKET.resize((320, 240)).save(work / "rocket.png")
    painterly_cli("apply", model, work / "rocket.png", "-o", work / "applied.png", "--tile", 128)
    yield "apply-tiled", load_image(work / "applied.png")

    cat, rocket = work / "cat.png", work / "rocket.png"
    PHOTO.save(cat)
    painterly_cli(
        "batch", cat, rocket, "--style", paintings.path("van_gogh_starry_night"),
        "-o", work / "batch", "--ray", "--size", 64, "--steps", 8, *FLAGS,
    )  # fmt: skip
    for out in sorted((work / "batch").glob("*.png")):
        yield f"ray-{out.stem}", load_image(out)


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
    # Short: Ray's socket paths under RAY_TMPDIR must fit 107 bytes.
    with tempfile.TemporaryDirectory(prefix="sb-") as work:
        os.environ["RAY_TMPDIR"] = work
        for name, image in command_runs(Path(work)):
            print(name, digest(image), flush=True)


if __name__ == "__main__":
    main()
