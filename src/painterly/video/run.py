"""The frame loop of ``painterly video``: one :func:`painterly.pipeline.optimize_scales`
call per frame, with the temporal terms, and every finished frame kept on disk.

The first frame is an ordinary coarse-to-fine stylisation (``first_steps``). Each later
frame is one scale at the output size (``steps``, fewer: it starts close to its answer),
started from the previous output warped by the flow and held to it, where the flow is
reliable, by the temporal loss.

A :class:`FrameStore` (``OUTPUT.frames/``) keeps each finished frame as a PNG written
atomically, the flows, and the settings; a run stopped at any point, even by SIGKILL,
continues from the first frame not on disk and redoes nothing finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from painterly import __version__, color
from painterly.api import _style_list, make_options, make_result, model_start, resolve_run
from painterly.clock import RunClock
from painterly.config import Options, identity, refuse_one_photo
from painterly.controls import expand_styles
from painterly.events import Event, ignore
from painterly.image import load_image, read_metadata, save_image, to_image
from painterly.pipeline import Job, optimize_scales, run_parts
from painterly.runstate import Digests, RunFolder, frame_name
from painterly.video import FIRST_STEPS, LATER_STEPS, TEMPORAL_WEIGHT, io
from painterly.video.flow import FlowCache, warp
from painterly.video.temporal import TemporalLoss, long_term_masks, to_tensor


@dataclass(frozen=True)
class FrameStarted:
    """Frame ``index`` (1-based) of ``count`` begins, with ``steps`` to make."""

    index: int
    count: int
    steps: int


@dataclass(frozen=True)
class FrameDone:
    """Frame ``index`` (1-based) of ``count`` is on disk."""

    index: int
    count: int
    seconds: float
    losses: dict[str, float]


# What a clip's callback is told: the core's events and the frames' own.
VideoCallback = Callable[[Event | FrameStarted | FrameDone], None]


@dataclass
class VideoResult:
    frames: list[Path]  # the finished frames, in order
    count: int  # frames in the clip
    interrupted: bool
    records: list[dict] = field(default_factory=list)  # per frame: steps, seconds, losses


class FrameStore(RunFolder):
    """``OUTPUT.frames/`` of a local run: ``frames/`` (finished, with their losses in the
    PNG's text), ``raw/`` (the optimiser's own pixels, where --preserve-color changes the
    output's), ``flow/`` (cached flows) and ``run.json`` (the settings, to resume)."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.raw = folder / "raw"

    def open(self, settings: dict, resume: bool, overwrite: bool) -> int:
        done = super().open(settings, resume, overwrite)
        self.raw.mkdir(exist_ok=True)
        return done

    def save(
        self,
        index: int,
        image: Image.Image,
        raw: Image.Image | None,
        record: dict,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """The raw pixels first, then the frame: a frame on disk is a finished frame."""
        if raw is not None:
            save_image(raw, self.raw / frame_name(index))
        text = {**(metadata or {}), "painterly:frame": json.dumps(record)}
        save_image(image, self.frame(index), text)

    def previous(self, index: int) -> np.ndarray:
        """Frame ``index``'s optimiser pixels, (H, W, 3) float32 in 0..1."""
        path = self.raw / frame_name(index)
        return _array(load_image(path if path.exists() else self.frame(index)))

    def record(self, index: int) -> dict:
        return json.loads(read_metadata(self.frame(index)).get("painterly:frame", "{}"))


def _array(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def stylize_clip(
    clip: io.Clip,
    styles: Sequence,
    store: FrameStore,
    *,
    overrides: dict,
    first_steps: int = FIRST_STEPS,
    temporal_weight: float = TEMPORAL_WEIGHT,
    long_term: Sequence[int] = (),
    resume: bool = False,
    overwrite: bool = False,
    callback: VideoCallback = ignore,
) -> VideoResult:
    """Stylise every frame of ``clip`` into ``store``; ``overrides`` are the stylize
    options (``steps``: each later frame's, LATER_STEPS if not given).
    ``temporal_weight`` 0 stylises each frame on its own, as ``painterly stylize`` would
    with ``first_steps``: the per-frame baseline that flickers."""
    overrides = {"steps": LATER_STEPS, **overrides}
    asked = make_options(None, **overrides)
    refuse_one_photo(asked, "a video")
    pairs, _ = expand_styles(_style_list(styles), asked.style_blend)  # read once
    opts, encoder, device, fallback = resolve_run(None, overrides, callback, None, asked=asked)
    size = io.output_size(clip, opts.size, opts.height)
    opts = opts.replace(size=None, height=None)  # the frames come at the output size
    first = opts.replace(steps=first_steps)
    later = opts.replace(scales=1, scale_steps=()) if temporal_weight > 0 else first
    offsets = (1, *sorted(set(long_term) - {1}))
    digests = Digests()  # the run is the same only if its inputs' contents are
    settings = {
        **clip_record(clip, size, styles, digests),
        "options": identity(asdict(opts)),
        "first_steps": first_steps,
        "temporal_weight": temporal_weight,
        "long_term": list(offsets[1:]),
        "version": __version__,
    }
    done = store.open(settings, resume, overwrite)
    flows = FlowCache(store.folder / "flow")
    keeps_raw = opts.preserve_color != "none" or opts.color_only
    clock = _clip_clock(clip.count, done, size, first, later)
    window: dict[int, Image.Image] = {}
    for k, frame in enumerate(io.frames(clip, size)):
        window[k] = frame
        window.pop(k - offsets[-1] - 1, None)
        if k < done:
            continue
        frame_opts = first if k == 0 else later
        callback(FrameStarted(k + 1, clip.count, frame_opts.steps))
        start = time.perf_counter()
        content, frame_styles, finish = color.prepare(
            frame, pairs, opts.preserve_color, opts.color_only
        )
        job = Job(content, frame_styles, None, finish)
        if k > 0 and temporal_weight > 0:
            job = _temporal_job(job, k, offsets, window, flows, store, temporal_weight, device)
        else:
            job = model_start(job, frame_opts, device)  # init="model:NAME"
        (outcomes,) = optimize_scales(
            [job], frame_opts, encoder, device, callback=callback, clock=clock
        )
        result = make_result(outcomes, frame_opts, encoder, device, size, finish, fallback)
        if result.interrupted:  # a stopped frame is not finished: --resume redoes it
            return VideoResult([store.frame(i) for i in range(k)], clip.count, True)
        final = outcomes[-1].final
        record = {
            "steps": result.metrics["steps"],
            "seconds": round(time.perf_counter() - start, 3),
            "losses": {n: v for n, v in final.items() if not n.startswith("style:")},
        }
        raw = to_image(outcomes[-1].rgb) if keeps_raw else None
        store.save(k, result.image, raw, record)
        callback(FrameDone(k + 1, clip.count, record["seconds"], record["losses"]))
    frames = [store.frame(i) for i in range(clip.count)]
    records = [store.record(i) for i in range(clip.count)]
    return VideoResult(frames, clip.count, False, records)


def clip_record(clip: io.Clip, size, styles: Sequence, digests: Digests) -> dict:
    """What makes two runs over a clip the same run, as far as the clip goes: the input's
    path and contents, the frames taken, their size and the paintings' contents (the
    store of each path, here and on a cluster, adds its own settings)."""
    return {
        "input": str(clip.path.resolve()),
        "input_sha256": digests.of_input(clip.path),
        "start": clip.start,
        "frames": clip.count,
        "size": list(size),
        "styles": digests.of_styles(
            [(s, w) for s, w in _style_list(styles) if not isinstance(s, Image.Image)]
        ),
    }


def _clip_clock(count: int, done: int, size, first: Options, later: Options) -> RunClock:
    """The progress model of the frames still to paint: the first frame's scales (if it
    is still to do), then one part per later frame."""
    parts, labels = [], []
    for k in range(done, count):
        scales = run_parts(size, first if k == 0 else later)
        parts += scales
        labels += [f"frame {k + 1} of {count}"] * len(scales)
    return RunClock(parts, labels=labels)


def _temporal_job(job, k, offsets, window, flows, store, weight, device) -> Job:
    """Frame ``k``'s job with the start image and temporal loss from earlier outputs.

    The start is the previous output warped, everywhere: where the flow is unreliable
    (a disocclusion, the edge a pan brings in) it holds a smeared copy of nearby painted
    pixels, which the content loss reshapes within the frame's steps. Starting those
    pixels from the photo instead leaves them less painted than the rest, and the
    temporal loss then keeps them so: on bench_video's pan, the style loss rose faster
    and the flicker was higher (docs/video.md)."""
    warped, masks = [], []
    for j in offsets:
        if k - j < 0:
            break
        flow_kj, mask = flows.pair(k, k - j, window[k], window[k - j])
        warped.append(warp(store.previous(k - j), flow_kj))
        masks.append(mask)
    job.init = to_tensor(np.clip(warped[0], 0, 1), device)
    targets = [
        (to_tensor(w, device), to_tensor(m, device))
        for w, m in zip(warped, long_term_masks(masks), strict=True)
    ]
    job.extra = TemporalLoss(targets, weight)
    return job
