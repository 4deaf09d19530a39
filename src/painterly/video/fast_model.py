"""``painterly video --model``: a trained fast model paints each frame in one pass, and
the optical flow steadies the result.

A feed-forward network has no memory between frames, so small changes in the input
(noise, a shift of a pixel) change its texture and the clip flickers. Each frame's
output is therefore blended toward the previous output warped onto it by the flow, on
the pixels where the flow is reliable (the same DIS flow and forward-backward check as
the optimisation path, :mod:`painterly.video.flow`):

    out_t = y_t + blend * c_t * (warp(out_{t-1}) - y_t)

with ``y_t`` the model's output for frame t and ``c_t`` the reliability mask. Along a
motion path this is an exponential moving average of the model's outputs, which cancels
the flicker; where something new comes into view (``c_t`` = 0) the model's own output is
taken as it is, so nothing smears across a disocclusion. ``blend`` 0 is the per-frame
baseline.

Finished frames go to the same :class:`~painterly.video.run.FrameStore` as the
optimisation path, so ``--resume`` and the final atomic write work the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly import __version__
from painterly.events import ignore
from painterly.fast.apply import paint
from painterly.fast.model_file import load_model
from painterly.files import sha256_of
from painterly.image import to_image
from painterly.runstate import Digests
from painterly.video import BLEND, io
from painterly.video.flow import FlowCache, warp
from painterly.video.run import (
    FrameDone,
    FrameStarted,
    FrameStore,
    VideoCallback,
    VideoResult,
    _array,
)


def paint_clip(
    clip: io.Clip,
    model: Path,
    store: FrameStore,
    *,
    size: int | None = None,
    height: int | None = None,
    blend: float = BLEND,
    preserve_color: str = "none",
    device: torch.device | str = "cpu",
    tile: int = 0,
    max_memory: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    callback: VideoCallback = ignore,
    should_stop: Callable[[], bool] = lambda: False,
) -> VideoResult:
    """Paint every frame of ``clip`` with the fast model ``model`` into ``store``.

    ``should_stop`` is asked after each frame; when it says so, or on KeyboardInterrupt,
    the run ends with the finished frames on disk and ``interrupted`` set."""
    net, info = load_model(model)
    net = net.to(device).eval()
    out_size = io.output_size(clip, size, height)
    settings = {
        "input": str(clip.path.resolve()),
        "input_sha256": Digests().of_input(clip.path),
        "start": clip.start,
        "frames": clip.count,
        "size": list(out_size),
        "model": {"name": model.name, "sha256": sha256_of(model)},
        "blend": blend,
        "preserve_color": preserve_color,
        "version": __version__,
    }
    done = store.open(settings, resume, overwrite)
    flows = FlowCache(None)  # recomputing a flow is faster than reading it back
    metadata = {f"painterly:model:{k}": v for k, v in info.metadata().items()}
    previous: tuple[Image.Image, np.ndarray] | None = None  # (input frame, output pixels)
    for k, frame in enumerate(io.frames(clip, out_size)):
        if k >= done and should_stop():
            return VideoResult([store.frame(i) for i in range(k)], clip.count, True)
        if k < done - 1:
            continue
        if k == done - 1:  # the last finished frame: what the next one is steadied toward
            previous = (frame, store.previous(k))
            continue
        callback(FrameStarted(k + 1, clip.count, 0))
        start = time.perf_counter()
        try:
            painted = _array(
                paint(
                    net,
                    frame,
                    device=device,
                    tile=tile,
                    max_memory=max_memory,
                    preserve_color=preserve_color,
                )
            )
        except KeyboardInterrupt:  # a second Ctrl-C: the frame in progress is not kept
            return VideoResult([store.frame(i) for i in range(k)], clip.count, True)
        reliable = 0.0
        if previous is not None and blend > 0:
            flow, mask = flows.pair(k, k - 1, frame, previous[0])
            steady = blend * mask[..., None]
            painted = painted + steady * (warp(previous[1], flow) - painted)
            reliable = float(mask.mean())
        image = to_image(torch.from_numpy(painted).permute(2, 0, 1))
        record = {"seconds": round(time.perf_counter() - start, 4), "reliable": reliable}
        store.save(k, image, None, record, metadata)
        previous = (frame, _array(image))  # as a resumed run reads it back
        callback(FrameDone(k + 1, clip.count, record["seconds"], {}))
    frames = [store.frame(i) for i in range(clip.count)]
    records = [store.record(i) for i in range(clip.count)]
    return VideoResult(frames, clip.count, False, records)
