"""What a Ray worker runs for one output of ``painterly batch --ray``.

The driver sends the input files' bytes (through Ray's object store, so the nodes need
no shared filesystem); :func:`stylise` puts them in a private temporary folder under
their own names, runs :func:`painterly.run` and returns the image, its metadata and
timings. The driver writes the file, so every output is written by one process, once.

A worker process keeps the encoder it loaded for the next task with the same options
(Ray reuses worker processes), so a node loads the weights once, not once per photo.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from pathlib import Path

from painterly.errors import PainterlyError
from painterly.runstate import frame_name

_ENCODERS: dict[str, tuple] = {}  # options (JSON) -> (encoder, why auto fell back)


def _encoder(options: dict):
    from painterly.api import resolve_run
    from painterly.events import ignore

    key = json.dumps(options, sort_keys=True)
    if key not in _ENCODERS:
        _ENCODERS.clear()  # one set of options per batch: keep one encoder
        _, encoder, _, fallback = resolve_run(None, dict(options), ignore, None, progress=False)
        _ENCODERS[key] = (encoder, fallback)
    return _ENCODERS[key]


def _place(folder: Path, data: bytes, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _node() -> tuple[str, str]:
    import ray

    # Outside Ray (a direct call) there is no node; asking would start a Ray instance.
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    return node, socket.gethostname()


def _styles(folder: Path, specs: list[dict], data) -> tuple[list, list[tuple[str, str]]]:
    """Place the style files under ``folder``: the (path, weight) blend to run with, and
    (temporary path, the driver's path) pairs to put the user's names back in errors."""
    blend, places, parts = [], [], iter(data)
    for index, style in enumerate(specs):
        home = folder / f"style{index}"
        placed = [_place(home, next(parts), name) for name in style["files"]]
        path = home if style["folder"] else placed[0]
        places.append((str(path), style["path"]))
        blend.append((str(path), style["weight"]))
    return blend, places


def _error(err: PainterlyError, places: list[tuple[str, str]]) -> str:
    message = str(err)
    for temporary, original in places:
        message = message.replace(temporary, original)
    return message


def stylize(spec: dict, content: bytes, *styles: bytes) -> dict:
    """One output. ``spec``: ``key``, ``content`` (its path on the driver), ``styles``
    (``path``, ``weight``, ``folder``: whether it is a folder, ``files``: the names of
    the files it stands for), ``options`` (painterly.run's keywords) and ``threads``
    (torch's CPU threads). ``styles`` are the style files' bytes in order.

    Returns ``key``, ``image``, ``metadata``, ``metrics``, ``node``, ``host`` and
    ``seconds``; on bad input (a :class:`PainterlyError`) ``error`` instead of the
    image, with the driver's paths in the message: retrying would fail the same way."""
    import torch

    from painterly.api import run

    started = time.perf_counter()
    torch.set_num_threads(spec["threads"])  # fixed: the thread count changes float sums
    node, host = _node()
    out = {"key": spec["key"], "node": node, "host": host}
    with tempfile.TemporaryDirectory(prefix="painterly-") as tmp:
        folder = Path(tmp)
        content_path = _place(folder / "content", content, Path(spec["content"]).name)
        blend, places = _styles(folder, spec["styles"], styles)
        places.append((str(content_path), spec["content"]))
        try:
            encoder, fallback = _encoder(spec["options"])
            result = run(str(content_path), blend, encoder=encoder, **spec["options"])
        except PainterlyError as err:
            return {**out, "error": _error(err, places), "seconds": time.perf_counter() - started}
    result.metrics["fallback_reason"] = fallback
    result.metrics.pop("history", None)  # per-step losses: not needed by the driver
    return {
        **out,
        "image": result.image,
        "metadata": result.metadata,
        "metrics": result.metrics,
        "seconds": time.perf_counter() - started,
    }


def stylize_chunk(spec: dict, frames: list[bytes], *styles: bytes) -> dict:
    """One chunk of a clip (painterly.cluster.chunks): ``frames`` are its frames as PNG
    files at the output size, stylized as ``painterly video`` does a clip of their own.
    ``spec``: ``key``, ``styles`` and ``threads`` as for :func:`stylise`, ``options``
    (the stylize options), ``fps``, ``first_steps``, ``temporal_weight``, ``long_term``.

    Returns ``key``, ``frames`` (the stylized frames as PNG files), ``records`` (each
    frame's steps, time and losses), ``node``, ``host`` and ``seconds``; ``error``
    instead of the frames on bad input."""
    import torch

    from painterly.video import io
    from painterly.video.run import FrameStore, stylize_clip

    started = time.perf_counter()
    torch.set_num_threads(spec["threads"])
    node, host = _node()
    out = {"key": spec["key"], "node": node, "host": host}
    with tempfile.TemporaryDirectory(prefix="painterly-") as tmp:
        folder = Path(tmp)
        for index, data in enumerate(frames):
            _place(folder / "in", data, frame_name(index))
        blend, places = _styles(folder, spec["styles"], styles)
        try:
            clip = io.open_clip(folder / "in", fps=spec["fps"])
            # The frames come at the output size: a --size of their long side keeps it.
            options = {**spec["options"], "size": max(clip.size)}
            options.pop("height", None)
            result = stylize_clip(
                clip,
                blend,
                FrameStore(folder / "out"),
                overrides=options,
                first_steps=spec["first_steps"],
                temporal_weight=spec["temporal_weight"],
                long_term=spec["long_term"],
            )
        except PainterlyError as err:
            return {**out, "error": _error(err, places), "seconds": time.perf_counter() - started}
        stylized = [path.read_bytes() for path in result.frames]
    return {
        **out,
        "frames": stylized,
        "records": result.records,
        "seconds": time.perf_counter() - started,
    }
