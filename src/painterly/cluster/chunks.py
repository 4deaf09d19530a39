"""A clip cut into chunks of consecutive frames that are stylised in parallel, and
joined again by cross-fading where they overlap.

Chunk i owns frames ``[i L, (i + 1) L)`` and starts ``O`` frames earlier (``overlap``):
it is an ordinary ``painterly video`` run of frames ``[i L - O, (i + 1) L)``, whose
first frame is stylised from scratch. The frames both chunk i - 1 and chunk i made,
``[i L - O, i L)``, are blended from the one to the other, the newer chunk's share
rising by ``1 / (O + 1)`` a frame, so that the change of texture between two
independent runs is spread over O + 1 frame steps instead of falling on one. With
``O = 0`` the chunks are simply cut together.

Chunks that each start from the previous chunk's last frame would join seamlessly but
run one after another, which gives up the parallelism; docs/cluster.md measures what
the cross-fade leaves at the joins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from painterly.errors import OptionsError


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first frame it stylises (the overlap with the chunk before included)
    owned: int  # first frame that is its alone
    stop: int  # one past its last frame

    @property
    def count(self) -> int:
        return self.stop - self.start


def plan(count: int, length: int, overlap: int) -> list[Chunk]:
    """The chunks of a clip of ``count`` frames: ``length`` frames each (the last may
    be shorter), each but the first starting ``overlap`` frames early."""
    if length < 1:
        raise OptionsError("--ray-chunk must be 1 frame or more")
    if not 0 <= overlap < length:
        raise OptionsError("--ray-overlap must be 0 or more and less than --ray-chunk")
    return [
        Chunk(i, max(0, first - overlap), first, min(first + length, count))
        for i, first in enumerate(range(0, count, length))
    ]


def sources(frame: int, chunks: list[Chunk]) -> list[tuple[Chunk, float]]:
    """The chunks that made ``frame``, with the weight of each in the output."""
    chunk = next(c for c in chunks if c.owned <= frame < c.stop)
    after = chunks[chunk.index + 1] if chunk.index + 1 < len(chunks) else None
    if after is None or frame < after.start:
        return [(chunk, 1.0)]
    share = (frame - after.start + 1) / (after.owned - after.start + 1)
    return [(chunk, 1.0 - share), (after, share)]


def compose(frame: int, chunks: list[Chunk], image: Callable[[Chunk, int], Image.Image]):
    """Output frame ``frame``: ``image(chunk, frame)`` is that chunk's stylised frame."""
    parts = sources(frame, chunks)
    if len(parts) == 1:
        return image(parts[0][0], frame)
    mixed = sum(w * np.asarray(image(c, frame), np.float32) for c, w in parts)
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def join_pairs(chunks: list[Chunk]) -> list[int]:
    """The frame pairs (t, t + 1), by t, where one chunk gives way to the next: those
    that touch the cross-fade, or the cut where there is none."""
    return sorted({t for c in chunks[1:] for t in range(c.start - 1, c.owned)})
