"""Training a fast model: a feed-forward network learns to do what the optimiser does.

The loss is painterly's own :class:`painterly.optimize.Objective` (relative content,
style and TV losses on the encoder's layers), with the network's output in place of the
optimised image: each batch of photo crops is its own content target and every image
is scored against the same blended style Grams, computed once. The encoder is any that
``stylize`` can use, the offline encoder included, so a model can be trained with
nothing downloaded.

Reproducibility: the network's starting weights come from ``seed``; the crops of
iteration ``i`` from a generator seeded with ``(seed, i)`` alone. So the randomness of
a run is a function of the seed and the iteration count, and a checkpoint needs only the
weights, Adam's state and the iteration to continue exactly where it stopped: a resumed
run ends with the same weights, bit for bit on the CPU, as one that never stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from painterly import __version__, files, nearest
from painterly.clock import RunClock
from painterly.config import Options, identity
from painterly.controls import expand_styles
from painterly.errors import ImageError, OptionsError, PainterlyError
from painterly.events import Callback, Notice, Preview, Progress, Started, Stop, ignore
from painterly.fast import model_file
from painterly.fast.config import TrainConfig
from painterly.fast.network import TransformerNet, make_network
from painterly.fast.photos import PHOTO_SETS, resolve_images
from painterly.image import (
    MIN_SIDE,
    fit_size,
    load_image,
    resize,
    save_image,
    to_image,
    to_tensor,
)
from painterly.optimize import Objective, style_targets
from painterly.runstate import changed_setting, style_files
from painterly.threads import cpu_threads

Tensor = torch.Tensor
LOSSES = ("total", "content", "style", "tv")
# A finished model's training loss fell by at least MIN_DROP from its first tenth of
# iterations to its last, judged once there are JUDGE_AFTER iterations to judge by.
MIN_DROP = 0.2
JUDGE_AFTER = 100
HOLD_OUT = 10  # one photo in ten is held out of training, where there are 20 or more
HELD_OUT_CROPS = 4
CACHE_PHOTOS = 4096  # decoded photos kept in memory (each at most 2 crops on its short side)


@dataclass
class TrainResult:
    net: TransformerNet
    info: model_file.ModelInfo
    metrics: dict
    interrupted: bool = False
    skipped: list[str] = field(default_factory=list)  # photos that could not be read
    skipped_before: int = 0  # of them, those found before training began


# --- the photos ---------------------------------------------------------------------


class Photos:
    """Every readable image under a folder (recursive, sorted), cropped on demand.

    Files are found by extension and their headers read up front; one that cannot be
    decoded when first used is skipped from then on, its neighbour used instead, and
    counted. Decoded photos are kept, shrunk to twice the crop on their short side
    (the largest that a crop's scale jitter asks for)."""

    def __init__(self, folder: str | os.PathLike, crop: int, jitter: float):
        folder = Path(folder)
        if not folder.is_dir():
            raise OptionsError(
                f"--images {folder} is neither a folder nor a photo set's name "
                f"({', '.join(PHOTO_SETS)})"
            )
        self.crop, self.jitter = crop, jitter
        self.skipped: list[str] = []
        self.paths: list[Path] = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix.lower() not in files.IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            try:
                with Image.open(path) as img:
                    img.size  # noqa: B018 (the header is read)
                self.paths.append(path)
            except (OSError, UnidentifiedImageError, ValueError):
                self.skipped.append(str(path))
        if not self.paths:
            raise OptionsError(
                f"--images {folder} has no readable photos (.jpg .png .webp .tif ...)"
            )
        # With enough photos, every HOLD_OUT-th is kept out of training to score it on.
        self.held: list[Path] = []
        if len(self.paths) >= 2 * HOLD_OUT:
            self.held = self.paths[HOLD_OUT - 1 :: HOLD_OUT]
            del self.paths[HOLD_OUT - 1 :: HOLD_OUT]
        self._cache: dict[int, Image.Image | None] = {}
        self.folder = folder

    def signature(self) -> str:
        """SHA-256 over the photos' names (within the folder) and sizes, in order: the
        crops of an iteration come from this list, so a resumed run must find the same
        one. Names and sizes, not contents: reading a large photo set whole at every
        start would cost minutes."""
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(f"{path.relative_to(self.folder)}\0{path.stat().st_size}\n".encode())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.paths)

    def held_out(self, seed: int, count: int = HELD_OUT_CROPS) -> Tensor:
        """(count, 3, crop, crop): the crops training is scored on, the same at every
        checkpoint. From the photos kept out of training where there are enough (see
        :attr:`held`), else from the training photos: then the score says how far the
        network has got on fixed crops, not how it does on photos it never saw."""
        rng = np.random.default_rng([seed, 2**32])  # a generator no iteration uses
        if not self.held:
            return self.batch(rng, count)
        crops = []
        for i in range(count):
            img = load_image(self.held[i % len(self.held)])
            img = resize(img, fit_size(*img.size, round(self.crop * max(img.size) / min(img.size))))
            w, h = img.size
            x, y = int(rng.integers(w - self.crop + 1)), int(rng.integers(h - self.crop + 1))
            crops.append(to_tensor(img.crop((x, y, x + self.crop, y + self.crop))))
        return torch.cat(crops)

    def photo(self, index: int) -> Image.Image:
        """Photo ``index``, or the next readable one after it."""
        for step in range(len(self.paths)):
            i = (index + step) % len(self.paths)
            if i not in self._cache:
                self._cache[i] = self._load(self.paths[i])
                if len(self._cache) > CACHE_PHOTOS:
                    self._cache.pop(next(k for k, v in self._cache.items() if v is not None))
            cached = self._cache[i]
            if cached is not None:
                return cached
        raise OptionsError("none of the photos under --images can be decoded")

    def _load(self, path: Path) -> Image.Image | None:
        try:
            img = load_image(path)
        except ImageError:
            self.skipped.append(str(path))
            return None
        if min(img.size) <= 2 * self.crop:
            return img
        longest = 2 * self.crop * max(img.size) / min(img.size)
        return resize(img, fit_size(*img.size, round(longest)))

    def batch(self, rng: np.random.Generator, size: int) -> Tensor:
        """(size, 3, crop, crop) random crops in 0..1: a random photo, scaled so that its
        short side is 1..jitter crops, cut at a random place, flipped half the time."""
        crops = []
        for _ in range(size):
            img = self.photo(int(rng.integers(len(self.paths))))
            short = self.crop * rng.uniform(1.0, self.jitter)
            scale = short / min(img.size)
            w, h = (max(self.crop, round(side * scale)) for side in img.size)
            img = resize(img, (w, h))
            x, y = int(rng.integers(w - self.crop + 1)), int(rng.integers(h - self.crop + 1))
            t = to_tensor(img.crop((x, y, x + self.crop, y + self.crop)))
            crops.append(t.flip(-1) if rng.random() < 0.5 else t)
        return torch.cat(crops)


def iteration_rng(seed: int, iteration: int) -> np.random.Generator:
    """The generator of one iteration's crops: a function of (seed, iteration) only."""
    return np.random.default_rng([seed, iteration])


# --- the styles ---------------------------------------------------------------------


def style_records(specs: Sequence[tuple[str, float]]) -> list[dict]:
    """Name, SHA-256 and weight of each style file (a folder: each of its images)."""
    out = []
    for name, weight in specs:
        for item in style_files(name):
            out.append({"name": item.stem, "sha256": files.sha256_of(item), "weight": weight})
    return out


def style_tensors(
    specs: Sequence[tuple[str, float]], opts: Options, crop: int
) -> list[tuple[Tensor, float]]:
    """The paintings as (1, 3, H, W) tensors, their long side ``2 crop x style_scale``:
    the size of the photos the crops come from, as ``stylize`` sizes a style to its output."""
    images, _ = expand_styles(list(specs), opts.style_blend)
    side = round(2 * crop * opts.style_scale)
    out = []
    for img, weight in images:
        # never below MIN_SIDE on its short side, which the encoder's deepest level needs
        long_side = max(side, math.ceil(MIN_SIDE * max(img.size) / min(img.size)))
        out.append((to_tensor(resize(img, fit_size(*img.size, long_side))), weight))
    return out


# --- the loop -----------------------------------------------------------------------


def settings_of(
    config: TrainConfig, opts: Options, styles: list[dict], encoder: str, photos: str
) -> dict:
    """What a resumed run must share with the run it continues (not the iteration
    budget, the time limit or how often it saves: those may change). ``photos``: the
    photo set's :meth:`Photos.signature`."""
    same = asdict(config)
    for key in ("iterations", "time_limit", "save_every"):
        same.pop(key)
    settings = {
        "train": same,
        "options": identity(asdict(opts)),
        "styles": styles,
        "encoder": encoder,
        "photos": photos,
    }
    return json.loads(json.dumps(settings))  # as a checkpoint gives it back (tuples: lists)


def train(
    photos: Photos,
    styles: list[tuple[Tensor, float]],
    style_info: list[dict],
    config: TrainConfig,
    opts: Options,
    encoder,
    device: torch.device,
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    preview: Image.Image | None = None,
    callback: Callback = ignore,
) -> TrainResult:
    """Train a network for ``config.iterations`` (or until ``time_limit``, a Stop from
    the callback or Ctrl-C) and return it.

    ``checkpoint``: where to keep the training state, written every ``save_every``
    iterations, at the end and when stopped; with ``resume`` the run continues from it.
    Events: Started (``total_steps`` is the whole run's iterations), then a Progress after
    every iteration (``step`` counts from the start of the whole run, resumed or not),
    and a Preview of ``preview`` painted every ``save_every`` iterations.
    """
    config = config.for_device(device.type)  # widths and batches left at 0
    settings = settings_of(config, opts, style_info, encoder.name, photos.signature())
    net = make_network(config.width, config.blocks, config.seed).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    history: list[dict] = []
    start_iteration = 0
    if resume:
        assert checkpoint is not None, "resume=True needs the checkpoint to resume from"
        state = model_file.load_checkpoint(checkpoint)
        _check_same(state.settings, settings, checkpoint)
        net.load_state_dict(state.net_state)
        optimizer.load_state_dict(state.optimizer_state)
        start_iteration, history = state.iteration, state.history
    pre = encoder.preprocessing
    with torch.no_grad():
        on_device = [(s.to(device), w) for s, w in styles]
        grams = style_targets(encoder, on_device, opts.style_layers, False, opts.style_loss)
        pools = None  # the nearest-neighbour style's painting features: one blend for all
        if opts.style_loss == "nearest":
            pools = [nearest.painting_pools(encoder, on_device, opts.style_layers, opts.seed)]
    seconds_before = history[-1]["seconds"] if history else 0.0
    start = time.perf_counter()
    crop = (config.crop, config.crop)
    callback(Started(config.iterations, crop, encoder.name, str(device), part="training"))
    clock = RunClock([(config.iterations, config.crop**2 * config.batch_size)], start)
    clock.begin()
    clock.advance(start_iteration)  # a resumed run: the iterations done before count

    saved = [start_iteration] if resume else []  # iterations whose checkpoint is on disk

    def save(done: int) -> None:
        if checkpoint is None:
            return
        try:
            model_file.save_checkpoint(checkpoint, net, optimizer, done, settings, history)
        except OSError as err:  # a full disk, say: the last checkpoint stays whole
            kept = (
                f"the checkpoint of iteration {saved[-1]} is kept; make room, then run "
                "again with --resume"
                if saved
                else "make room, then run again"
            )
            raise PainterlyError(
                f"cannot write the checkpoint {checkpoint} at iteration {done} "
                f"({err.strerror or type(err).__name__}); {kept}"
            ) from None
        saved.append(done)

    held = photos.held_out(config.seed).to(device)

    def score() -> float:
        """The loss on the held-out crops, noted in the history (and the checkpoint)."""
        with torch.no_grad():
            objective = Objective(encoder, held, [], opts, grams=grams, pools=pools)
            objective.refresh(0)  # the same image positions every time
            value = float(objective(pre.to_input(net(held)))[1]["total"].mean())
        if history:
            history[-1]["heldout"] = round(value, 6)
        return value

    latest = next((h["heldout"] for h in reversed(history) if "heldout" in h), None)
    done, stepping, interrupted = start_iteration, False, False
    try:
        for iteration in range(start_iteration, config.iterations):
            if _out_of_time(config.time_limit, start, done - start_iteration):
                break
            content = photos.batch(iteration_rng(config.seed, iteration), config.batch_size)
            content = content.to(device)
            objective = Objective(encoder, content, [], opts, grams=grams, pools=pools)
            objective.refresh(iteration)  # new image positions every iteration
            total, parts = objective(pre.to_input(net(content)))
            loss = total / config.batch_size  # a mean: the learning rate holds at any batch size
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stepping = True  # a half-applied Adam step must not be saved
            optimizer.step()
            stepping = False
            done = iteration + 1
            losses = {k: float(parts[k].detach().mean()) for k in LOSSES}
            elapsed = seconds_before + time.perf_counter() - start
            history.append({"iteration": done, **losses, "seconds": round(elapsed, 3)})
            if config.save_every and done % config.save_every == 0 and done < config.iterations:
                latest = score()
                save(done)
                if preview is not None:
                    callback(Preview(done, paint(net, preview, device)))
            if latest is not None:
                losses["heldout"] = latest
            clock.advance(done)
            left = clock.left
            if config.time_limit and left is not None:
                left = min(left, max(0.0, config.time_limit - (time.perf_counter() - start)))
            callback(
                Progress(done, config.iterations, losses, elapsed, clock.fraction, elapsed, left)
            )
    except (KeyboardInterrupt, Stop):
        interrupted = True
    if not stepping:
        if done > start_iteration and "heldout" not in history[-1]:  # not scored at a checkpoint
            score()
        save(done)
    net.eval().requires_grad_(False)
    curve = [[h["iteration"], h["heldout"]] for h in history if "heldout" in h]
    reason = under_trained(done, config.iterations, history, curve)
    info = model_file.ModelInfo(
        width=config.width,
        blocks=config.blocks,
        styles=style_info,
        encoder=encoder.name,
        options={**asdict(config), "loss": _loss_options(opts)},
        iterations=done,
        version=__version__,
        planned=config.iterations,
        under_trained=reason,
        heldout=curve,
    )
    metrics = {
        "iterations": done,
        "resumed_from": start_iteration,
        "seconds": history[-1]["seconds"] if history else 0.0,
        "iterations_per_s": _rate(history, start_iteration),
        "encoder": encoder.name,
        "device": str(device),
        "options": info.options,
        "styles": style_info,
        "photos": len(photos),
        "skipped": list(photos.skipped),
        "interrupted": interrupted,
        "under_trained": reason,
        "heldout": curve,
        "heldout_photos": [str(p) for p in photos.held],
        "history": history,
        "version": __version__,
    }
    return TrainResult(net.cpu(), info, metrics, interrupted, list(photos.skipped))


@dataclass(frozen=True)
class TrainFiles:
    """Where :func:`train_model` writes: the model, its checkpoint, and (with a preview
    photo) the preview painted every ``save_every`` iterations and at the end."""

    model: Path
    checkpoint: Path
    preview: Path | None = None

    @classmethod
    def beside(cls, model: Path, preview: bool) -> TrainFiles:
        """The checkpoint and the preview named after ``model``."""
        return cls(
            model,
            model.with_suffix(".ckpt"),
            model.with_name(model.stem + ".preview.jpg") if preview else None,
        )


def train_model(
    images: str | os.PathLike,
    specs: Sequence[tuple[str, float]],
    config: TrainConfig,
    overrides: dict,
    out: TrainFiles,
    *,
    preview_photo: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callback = ignore,
    saving: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> TrainResult:
    """Train a model for the paintings ``specs`` (path, weight) on the photos under
    ``images`` and write it to ``out.model`` (within ``saving()``, which may hold off
    signals), with ``overrides`` the Options fields of training (TRAIN_OPTIONS) given.
    Notices say what is skipped and where the preview goes; the rest as :func:`train`."""
    from painterly.api import resolve_run

    photos = Photos(resolve_images(images, callback=callback), config.crop, config.jitter)
    preview = preview_photo_of(preview_photo, 512) if preview_photo else None
    opts, encoder, device, _ = resolve_run(None, overrides, callback, None)
    styles = style_tensors(specs, opts, config.crop)
    skipped_before = len(photos.skipped)
    if photos.skipped:
        callback(Notice(f"skipping {len(photos.skipped)} unreadable file(s) under {images}"))
    if preview is not None and out.preview is not None:
        every = f"every {config.save_every} iterations" if config.save_every else "at the end"
        callback(Notice(f"a preview of {preview_photo} goes to {out.preview} {every}"))

    def on_event(event) -> None:
        callback(event)
        if isinstance(event, Preview) and out.preview is not None:
            save_image(event.image, out.preview, {"painterly:iteration": str(event.step)})

    with cpu_threads(opts.threads):
        result = train(
            photos,
            styles,
            style_records(specs),
            config,
            opts,
            encoder,
            device,
            checkpoint=out.checkpoint,
            resume=resume,
            preview=preview,
            callback=on_event,
        )
    with saving():
        model_file.save_model(out.model, result.net, result.info)
        if preview is not None and out.preview is not None:
            iteration = {"painterly:iteration": str(result.info.iterations)}
            save_image(paint(result.net, preview, "cpu"), out.preview, iteration)
    result.skipped_before = skipped_before
    return result


def under_trained(
    done: int, planned: int, history: list[dict], curve: Sequence[Sequence[float]] = ()
) -> str:
    """Why a model trained for ``done`` of ``planned`` iterations, with this loss
    ``history`` and held-out ``curve`` ((iteration, loss) at each checkpoint), is not
    finished; "" if it is. Short of its plan (a time limit, Ctrl-C); or, over a run long
    enough to tell (JUDGE_AFTER), a loss that has not fallen by MIN_DROP: the held-out
    loss from its first checkpoint to its last where there are three, else the training
    loss from its first tenth of iterations to its last."""
    if done < planned:
        return f"stopped after {done} of {planned} iterations"
    if done >= JUDGE_AFTER and len(curve) >= 3:
        first, last = curve[0][1], curve[-1][1]
        if first > 0 and last > (1 - MIN_DROP) * first:
            return f"its held-out loss fell only {1 - last / first:.0%} over {done} iterations"
        return ""
    if len(history) >= JUDGE_AFTER:
        tenth = len(history) // 10
        first = sum(h["total"] for h in history[:tenth]) / tenth
        last = sum(h["total"] for h in history[-tenth:]) / tenth
        if first > 0 and last > (1 - MIN_DROP) * first:
            return f"its loss fell only {1 - last / first:.0%} over {done} iterations"
    return ""


def _loss_options(opts: Options) -> dict:
    keep = (
        "content_weight",
        "style_weight",
        "tv_weight",
        "strength",
        "content_layer",
        "style_loss",
    )
    return {**{k: getattr(opts, k) for k in keep}, "style_layers": list(opts.style_layers)}


def _rate(history: list[dict], start_iteration: int) -> float:
    mine = [h for h in history if h["iteration"] > start_iteration]
    if len(mine) < 2:
        return 0.0
    spent = mine[-1]["seconds"] - mine[0]["seconds"]
    return round((len(mine) - 1) / spent, 4) if spent > 0 else 0.0


def _out_of_time(limit: float, start: float, done: int) -> bool:
    """Whether one more iteration, at the pace so far, would end past ``limit`` seconds."""
    if not limit:
        return False
    spent = time.perf_counter() - start
    return spent >= limit or (done > 0 and spent + spent / done > limit)


def _check_same(old: dict, new: dict, path) -> None:
    changed = changed_setting(old, new)
    if changed:
        raise OptionsError(
            f"{path} was made with other settings ({changed} differs); resume with the "
            "same ones, or start afresh with --overwrite"
        )


@torch.no_grad()
def paint(net: TransformerNet, photo: Image.Image, device: torch.device | str) -> Image.Image:
    """One forward pass on ``photo``, leaving the network in the mode it was in."""
    was_training = net.training
    net.eval()
    try:
        return to_image(net(to_tensor(photo).to(device)))
    finally:
        net.train(was_training)


def preview_photo_of(path: str | os.PathLike, side: int) -> Image.Image:
    """The held-out photo for previews, its long side ``side`` px at most."""
    img = load_image(path)
    return resize(img, fit_size(*img.size, side)) if max(img.size) > side else img
