"""Several stylisations in one run, batched through the encoder for throughput.

Items whose outputs have the same size are stacked into one (N, 3, H, W) tensor and
optimised together: one forward and one backward pass of the encoder per step serve all
N images, which keeps a GPU busy where a single small image leaves most of it idle. The
objective is the sum of the images' own objectives (each its own content target and its
own blended Gram targets; every loss in losses.py is computed per image, never pooled
over the batch), so the gradient with respect to each image is exactly that of its own
run. Adam updates every pixel on its own, so with Adam each image follows the path of a
single run, up to the float rounding of batched convolutions. L-BFGS sees the batch as
one vector: its line search and curvature memory are shared, so the images interact
through the step lengths (each still gets back the best point evaluated for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from painterly.api import (
    ImageLike,
    Result,
    StyleSpec,
    make_options,
    make_result,
    model_start,
    prepare_inputs,
    resolve_run,
)
from painterly.clock import RunClock
from painterly.config import Options, refuse_one_photo
from painterly.encoders import Encoder
from painterly.errors import OptionsError
from painterly.events import Callback, Notice, ignore
from painterly.pipeline import (
    Job,
    batch_size,
    is_out_of_memory,
    optimize_scales,
    output_size,
    run_parts,
)

Item = tuple[ImageLike, StyleSpec | Sequence[StyleSpec]]


def run_batch(
    items: Sequence[Item],
    options: Options | None = None,
    *,
    callback: Callback = ignore,
    progress_every: int = 1,
    encoder: Encoder | None = None,
    max_batch: int = 0,
    **overrides,
) -> list[Result | None]:
    """Stylise several ``(content, style)`` items, batching those of equal output size.

    ``style`` is anything :func:`painterly.run` accepts; the options are shared by all
    items. Items are grouped by output size; each group runs in batches of as many images
    as fit the memory budget (and at most ``max_batch``, if not 0), all on the group's
    scale plan. Where not even one image fits a step, or ``--tile`` would tile, the items
    run one at a time through :func:`painterly.run` (which tiles), as do those of a batch
    that runs out of memory. Returns one :class:`Result` per item, in order; its metrics
    add ``batch`` (how many images were optimised together) and its ``seconds`` are the
    whole batch's. Progress events carry the batch's losses summed over its images. After
    an interruption (Ctrl-C, or a callback raising Stop) the images being optimised come
    back with ``interrupted`` set and the items not yet started as None. A mask or
    protect image belongs to one photo and is refused (:data:`painterly.config.ONE_PHOTO`).
    """
    if not isinstance(max_batch, int) or max_batch < 0:
        raise OptionsError("max_batch must be 0 (as many as fit) or a positive number")
    for index, item in enumerate(items):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise OptionsError(f"item {index + 1} is not a (content, style) pair")
    base = make_options(options, **overrides)
    refuse_one_photo(base, "a batch")
    # Read every image before anything slow, so that a bad item fails the batch at once.
    prepared = [Job(*prepare_inputs(content, style, base)) for content, style in items]
    opts, encoder, device, fallback_reason = resolve_run(
        options, overrides, callback, encoder, asked=base
    )
    prepared = [model_start(job, opts, device) for job in prepared]  # init="model:NAME"
    results: list[Result | None] = [None] * len(items)

    def optimise(chunk: list[int], out_size: tuple[int, int]) -> None:
        """One optimisation of the chunk's images together (one image: tiles if needed)."""
        scales = optimize_scales(
            [prepared[i] for i in chunk],
            opts,
            encoder,
            device,
            callback=callback,
            progress_every=progress_every,
            clock=clock,
        )
        for i, outcomes in zip(chunk, scales, strict=True):
            finish = prepared[i].finish
            result = make_result(outcomes, opts, encoder, device, out_size, finish, fallback_reason)
            results[i] = result
            result.metrics["batch"] = len(chunk)

    def singly(chunk: list[int], out_size: tuple[int, int]) -> None:
        for i in chunk:
            optimise([i], out_size)
            result = results[i]
            assert result is not None  # optimise() has just made it
            if result.interrupted:
                return

    def together(chunk: list[int], out_size: tuple[int, int]) -> None:
        try:
            optimise(chunk, out_size)
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not is_out_of_memory(err):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            w, h = out_size
            callback(Notice(f"out of memory with {len(chunk)} images of {w}x{h}; one by one"))
            singly(chunk, out_size)

    groups: dict[tuple[int, int], list[int]] = {}
    for index, job in enumerate(prepared):
        groups.setdefault(output_size(job.content.size, opts), []).append(index)
    chunks = []  # (output size, the items optimised together), in the order they run
    for out_size, indices in groups.items():
        size = batch_size(encoder, opts, out_size, device, max_batch)
        chunks += [(out_size, indices[i : i + size]) for i in range(0, len(indices), size)]
    parts, labels = [], []
    for out_size, chunk in chunks:
        scales = run_parts(out_size, opts, len(chunk))
        parts += scales
        labels += [_images_label(chunk, len(items))] * len(scales)
    clock = RunClock(parts, labels=labels)
    for out_size, chunk in chunks:
        if len(chunk) > 1:
            together(chunk, out_size)
        else:
            singly(chunk, out_size)
        if any(r is not None and r.interrupted for r in [results[i] for i in chunk]):
            return results
    return results


def _images_label(chunk: list[int], count: int) -> str:
    """``image 2 of 3``, or ``images 1-4 of 8`` for a chunk optimised together (items
    of one output size, which need not be neighbours: ``images 1, 3 of 8``)."""
    numbers = [i + 1 for i in chunk]
    if count == 1:
        return ""
    if len(numbers) == 1:
        return f"image {numbers[0]} of {count}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"images {numbers[0]}-{numbers[-1]} of {count}"
    return f"images {', '.join(map(str, numbers))} of {count}"


def style_label(specs: Sequence[tuple[str, float]]) -> str:
    """``a.jpg:0.7 b.jpg:0.3`` -> ``a+b``: a style's part of an output name."""
    return "+".join(Path(str(path).rstrip("/\\")).stem or "style" for path, _ in specs)


def output_name(content: str, specs: Sequence[tuple[str, float]], suffix: str) -> str:
    """The file a batch writes for one photo and style: ``PHOTO_STYLE.SUFFIX``."""
    return f"{Path(content).stem}_{style_label(specs)}.{suffix}"
