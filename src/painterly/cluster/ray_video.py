"""The driver's side of ``painterly video --ray``: the clip decoded once, cut into
chunks (painterly.cluster.chunks), each chunk a Ray task, their frames kept on disk as
they come back and cross-faded into the output's frames at the end.

``OUTPUT.frames/`` (a :class:`painterly.runstate.RunFolder`) holds ``run.json`` (the
settings, to resume), ``chunkNNNNN/`` (a chunk's stylised frames, by frame number, and
``done.json`` once all are there) and ``frames/`` (the joined output frames). A stopped
run continues with ``--resume`` and redoes only the chunks whose frames are not all there
as ``done.json`` recorded them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as stdio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray
from PIL import Image

from painterly import __version__, files
from painterly.api import make_options
from painterly.cluster import ClusterConfig, ray_batch, worker
from painterly.cluster.chunks import Chunk, compose, plan
from painterly.config import refuse_one_photo
from painterly.image import load_image, save_image
from painterly.runstate import Digests, RunFolder, frame_name
from painterly.video import LATER_STEPS, VideoConfig, io
from painterly.video.run import VideoResult, clip_record


class ChunkStore(RunFolder):
    """``OUTPUT.frames/`` of a ``--ray`` run (see the module's docstring)."""

    def chunk(self, chunk: Chunk) -> Path:
        return self.folder / f"chunk{chunk.index:05d}"

    def done(self, chunk: Chunk) -> bool:
        """Whether the chunk's frames are all there as its ``done.json`` recorded them
        (by SHA-256): one truncated or replaced since is redone, not joined."""
        folder = self.chunk(chunk)
        try:
            record = json.loads((folder / "done.json").read_text(encoding="utf-8"))
            hashes = record["sha256"]
            return isinstance(hashes, dict) and all(
                hashes.get(frame_name(n)) == files.sha256_of(folder / frame_name(n))
                for n in range(chunk.start, chunk.stop)
            )
        except (OSError, ValueError, KeyError, TypeError):
            return False  # missing, damaged or from an older layout: redo it

    def save(self, chunk: Chunk, frames: list[bytes], record: dict) -> None:
        """The chunk's frames, then its ``done.json`` with their hashes: a chunk marked
        done is whole."""
        folder = self.chunk(chunk)
        folder.mkdir(exist_ok=True)
        hashes = {}
        for number, data in zip(range(chunk.start, chunk.stop), frames, strict=True):
            files.write_bytes(folder / frame_name(number), data)
            hashes[frame_name(number)] = hashlib.sha256(data).hexdigest()
        files.write_json(folder / "done.json", {**record, "sha256": hashes})

    def join(self, count: int, chunks: list[Chunk]) -> list[Path]:
        """The output frames, cross-faded where chunks overlap; their paths in order."""

        def image(chunk: Chunk, number: int) -> Image.Image:
            return load_image(self.chunk(chunk) / frame_name(number))

        paths = []
        for number in range(count):
            path = self.frame(number)
            save_image(compose(number, chunks, image), path)
            paths.append(path)
        return paths


def _png(img: Image.Image) -> bytes:
    buffer = stdio.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)  # lossless; speed over size
    return buffer.getvalue()


def chunk_frames(
    clip: io.Clip, size: tuple[int, int], chunks: list[Chunk], skip: set[int]
) -> Iterator[tuple[Chunk, list[bytes]]]:
    """Each chunk not in ``skip`` with its frames as PNG files at ``size``, from one pass
    over the clip (frames two chunks share are kept until the second has them)."""
    frames = io.frames(clip, size)
    kept: dict[int, bytes] = {}
    decoded = 0
    for index, chunk in enumerate(chunks):
        while decoded < chunk.stop:
            kept[decoded] = _png(next(frames))
            decoded += 1
        if chunk.index not in skip:
            yield chunk, [kept[n] for n in range(chunk.start, chunk.stop)]
        keep_from = chunks[index + 1].start if index + 1 < len(chunks) else decoded
        for number in [n for n in kept if n < keep_from]:
            del kept[number]


def run_chunks(
    work: Iterator[tuple[Chunk, list[bytes]]],
    spec: dict,
    styles: list[tuple[str, float]],
    cpus: int,
    stopping: Callable[[], bool],
) -> Iterator[tuple[tuple[Chunk, list[bytes]], dict]]:
    """Run each (chunk, frames) of ``work`` as a task (see ray_batch.schedule)."""
    on_gpus = ray_batch.slots(cpus)[1]
    task_of = ray_batch.remote(worker.stylize_chunk, cpus, on_gpus)
    shared = ray_batch.Shared()
    spec = {**spec, "styles": ray_batch.style_specs(styles), "threads": 1 if on_gpus else cpus}

    def submit(item: tuple[Chunk, list[bytes]]) -> ray.ObjectRef:
        chunk, frames = item
        refs = shared.styles(styles)
        return task_of.remote({**spec, "key": chunk.index}, frames, *refs)

    yield from ray_batch.schedule(work, submit, cpus, stopping)


@dataclass
class ClipOnRay(VideoResult):
    """What :func:`stylize_clip` did, as the local run's :class:`VideoResult` says it
    (the output's frames, empty until every chunk is made; ``interrupted``: stopped;
    ``records``: each made chunk's), and how many chunks there were, which failed
    (index -> error) and the run folder that keeps them."""

    chunks: int = 0
    failures: dict[int, str] = field(default_factory=dict)
    folder: Path = Path()


def stylize_clip(
    clip: io.Clip,
    styles: list[tuple[str, float]],
    folder: Path,
    *,
    overrides: dict,
    video: VideoConfig,
    cluster: ClusterConfig,
    address: str = "",
    resume: bool = False,
    overwrite: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_plan: Callable[[int], None] = lambda frames: None,
    on_chunk: Callable[[Chunk, bool], None] = lambda chunk, ok: None,
    saving: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> ClipOnRay:
    """Stylise ``clip`` in chunks of frames, each a task on the Ray cluster at
    ``address`` (``""``: a local instance), kept in ``folder`` as they come back;
    the counterpart of :func:`painterly.video.run.stylize_clip` on one machine.
    ``overrides`` are the stylize options (``steps``: each later frame's);
    ``on_plan`` hears how many frames are still to make once the cluster answers,
    ``on_chunk`` of each chunk done or failed; ``should_stop`` ends the run
    between chunks, with those made kept for ``resume``; each chunk is saved within
    ``saving()`` (the CLI's signal policy: a second Ctrl-C waits for the write)."""
    opts = make_options(None, **{"steps": LATER_STEPS, **overrides})
    refuse_one_photo(opts, "a video")
    size = io.output_size(clip, opts.size, opts.height)
    chunks = plan(clip.count, cluster.ray_chunk, cluster.ray_overlap)
    digests = Digests()
    temporal = {
        "first_steps": video.first_steps,
        "temporal_weight": video.temporal_weight,
        "long_term": list(video.long_term),
    }
    settings = {
        **clip_record(clip, size, styles, digests),
        "options": overrides,
        **temporal,
        "chunk": cluster.ray_chunk,
        "overlap": cluster.ray_overlap,
        "version": __version__,
    }
    store = ChunkStore(folder)
    store.open(settings, resume, overwrite)
    skip = {c.index for c in chunks if store.done(c)}
    todo = [c for c in chunks if c.index not in skip]
    run = ClipOnRay([], clip.count, False, chunks=len(chunks), folder=store.folder)
    if todo:
        spec = {"options": overrides, "fps": float(clip.rate), **temporal}
        ray_batch.connect(address)
        on_plan(sum(c.count for c in todo))
        try:
            work = chunk_frames(clip, size, chunks, skip)
            for (chunk, _), result in run_chunks(work, spec, styles, cluster.ray_cpus, should_stop):
                ok = "error" not in result
                if ok:
                    record = {
                        "chunk": chunk.index,
                        "frames": [chunk.start, chunk.stop],
                        "node": result["node"],
                        "host": result["host"],
                        "seconds": round(result["seconds"], 3),
                        "each": result["records"],
                    }
                    with saving():
                        store.save(chunk, result["frames"], record)
                    run.records.append(record)
                else:
                    run.failures[chunk.index] = result["error"]
                on_chunk(chunk, ok)
        finally:
            ray_batch.shutdown()
        run.interrupted = should_stop()
        if run.interrupted or run.failures:
            return run
    run.frames = store.join(clip.count, chunks)
    return run
