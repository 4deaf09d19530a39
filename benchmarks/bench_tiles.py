"""Seams and memory of tiled high-resolution runs.

Runs a stylisation whose finer scales are optimised in tiles, then measures the seam:
the mean gradient energy of pixel pairs that straddle a tile edge, divided by the mean
over all pixel pairs (1.0: the edges are invisible to this measure), and the same
divided by lines on the same 16 px grid near each edge (seam_ratio_local, the fairer
one: see its docstring); both also for the photo resized to the output, at the same
lines, since a tile edge that falls on a façade edge of the photo reads as a seam.
Also saves a 100 % crop across a tile corner and reports peak memory. One JSON line.

    python benchmarks/bench_tiles.py --size 768 --tile 256 --crop docs/tile_seam_crop.png
    python benchmarks/bench_tiles.py --size 4096 --max-memory 6G      # tiles chosen by memory
    python benchmarks/bench_tiles.py --size 512 --tile 256 --steps 60 --compare  # vs untiled
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

import painterly
from painterly import paintings
from painterly.events import Notice
from painterly.tiling import overlap_of, tile_grid

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONTENT = EXAMPLES / "content" / "tubingen_neckarfront.jpg"
STYLE = paintings.path("van_gogh_starry_night")


def total_loss(image, weights: str) -> float:
    """The untiled objective of the output's own size (the run's last scale)."""
    from painterly.api import resolve_run
    from painterly.image import load_image, resize, to_tensor
    from painterly.optimize import Objective
    from painterly.pipeline import style_size

    opts, encoder, _device, _ = resolve_run(None, {"weights": weights}, lambda e: None, None)
    style = load_image(STYLE)
    content = to_tensor(resize(load_image(CONTENT), image.size))
    style_t = to_tensor(resize(style, style_size(style, image.size, opts)))
    objective = Objective(encoder, content, [(style_t, 1.0)], opts)
    with torch.no_grad():
        return float(objective(encoder.preprocessing.to_input(to_tensor(image)))[0].sum())


def _line_energies(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean gradient energy of the pixel pairs across each vertical line (x-1, x),
    stored at x-1, and each horizontal line; and the mean over all pairs."""
    g = rgb.astype(np.float64) / 255
    dx = ((g[:, 1:] - g[:, :-1]) ** 2).sum(-1)
    dy = ((g[1:] - g[:-1]) ** 2).sum(-1)
    return dx.mean(0), dy.mean(1), float(np.concatenate([dx.ravel(), dy.ravel()]).mean())


def _edges(h: int, w: int, tile: int) -> tuple[list[int], list[int]]:
    tiles = tile_grid(h, w, tile, overlap_of(tile))
    xs = sorted({t.x0 for t in tiles if t.x0 > 0} | {t.x1 for t in tiles if t.x1 < w})
    ys = sorted({t.y0 for t in tiles if t.y0 > 0} | {t.y1 for t in tiles if t.y1 < h})
    return xs, ys


def seam_ratio(rgb: np.ndarray, tile: int) -> float:
    """Gradient energy across tile edges / everywhere, for the grid painterly used."""
    cols, rows, everywhere = _line_energies(rgb)
    xs, ys = _edges(*rgb.shape[:2], tile)
    edge = [cols[x - 1] for x in xs] + [rows[y - 1] for y in ys]
    return float(np.mean(edge) / everywhere) if edge else 1.0


def seam_ratio_local(rgb: np.ndarray, tile: int) -> float:
    """Gradient energy across tile edges / across the lines 16 and 32 px to either side.

    The encoders downsample by 2 four times, so an optimised image has a faint 16 px
    grid: lines on it carry more gradient energy than lines between (1.2x in an untiled
    1024 px run with few steps at the finest scale), and tile edges lie on it. Lines on
    the same grid near each edge are the fair comparison; they also share its content.
    """
    cols, rows, _ = _line_energies(rgb)
    h, w = rgb.shape[:2]
    xs, ys = _edges(h, w, tile)
    edge, near = [], []
    for lines, energies, length in ((xs, cols, w), (ys, rows, h)):
        for line in lines:
            edge.append(energies[line - 1])
            near += [
                energies[line + d - 1]
                for d in (-32, -16, 16, 32)
                if 0 < line + d < length and line + d not in lines
            ]
    return float(np.mean(edge) / np.mean(near)) if edge and near else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--tile", type=int, default=0, help="0: chosen from --max-memory")
    parser.add_argument("--max-memory", default="auto")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--weights", default="offline")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="out/tiled.png")
    parser.add_argument("--min-size", type=int, default=256)
    parser.add_argument("--crop", help="save a 100 %% crop across a tile corner here")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run untiled: its seam ratio at the same lines, and both total losses",
    )
    args = parser.parse_args()
    tiles_used = []

    def on_event(event):
        if isinstance(event, Notice) and "tiles of" in event.message:
            tiles_used.append(int(event.message.rsplit("tiles of ", 1)[1].split()[0]))

    common = dict(
        size=args.size,
        steps=args.steps,
        min_size=args.min_size,
        weights=args.weights,
        device=args.device,
    )
    start = time.perf_counter()
    result = painterly.run(
        CONTENT, STYLE, tile=args.tile, max_memory=args.max_memory, callback=on_event, **common
    )
    seconds = time.perf_counter() - start
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.output)
    rgb = np.asarray(result.image)
    photo = np.asarray(painterly.image.load_image(CONTENT).resize(result.image.size, 3))
    tile = tiles_used[-1] if tiles_used else 0
    if args.crop and tile:
        t = [t for t in tile_grid(*rgb.shape[:2], tile, overlap_of(tile)) if t.x0 and t.y0][0]
        y, x = max(0, t.y0 - 128), max(0, t.x0 - 128)
        painterly.image.save_image(
            painterly.image.Image.fromarray(rgb[y : y + 256, x : x + 256]), args.crop
        )
    figures = {
        "size": result.metrics["size"],
        "tile": tile,
        "scales": len(result.metrics["scales"]),
        "steps": result.metrics["steps"],
        "seconds": round(seconds, 1),
        "seam_ratio": round(seam_ratio(rgb, tile), 3) if tile else None,
        "seam_ratio_local": round(seam_ratio_local(rgb, tile), 3) if tile else None,
        # The photo itself, resized to the output, at the same lines: what the content
        # alone puts there (a façade edge along a tile edge reads as a "seam").
        "photo_seam_ratio_same_lines": round(seam_ratio(photo, tile), 3) if tile else None,
        "photo_seam_ratio_local_same_lines": round(seam_ratio_local(photo, tile), 3)
        if tile
        else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "encoder": result.metrics["encoder"],
        "device": result.metrics["device"],
    }
    if torch.cuda.is_available() and result.metrics["device"].startswith("cuda"):
        figures["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    if args.compare and tile:
        whole = painterly.run(CONTENT, STYLE, **common)
        untiled = np.asarray(whole.image)
        figures["untiled_seam_ratio_same_lines"] = round(seam_ratio(untiled, tile), 3)
        figures["untiled_seam_ratio_local_same_lines"] = round(seam_ratio_local(untiled, tile), 3)
        figures["total_loss_tiled"] = round(total_loss(result.image, args.weights), 4)
        figures["total_loss_untiled"] = round(total_loss(whole.image, args.weights), 4)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
