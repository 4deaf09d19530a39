"""``painterly video``: stylise a clip frame by frame without flicker.

Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos" (2016), for the
optimisation-based method: each frame after the first starts from the previous output
warped by the optical flow and is held to it by a temporal loss, weighted per pixel by
how reliable the flow is there.

* :mod:`painterly.video.io`: decode and encode with PyAV (frame rate, rotation, audio).
* :mod:`painterly.video.flow`: optical flow (OpenCV's DIS), warping, reliability masks.
* :mod:`painterly.video.temporal`: the temporal loss, the start image, the warping error.
* :mod:`painterly.video.run`: the frame loop, with finished frames kept for ``--resume``.
* :mod:`painterly.video.fast_model`: ``--model``: a fast model per frame, steadied by the flow.

PyAV and OpenCV are the ``video`` extra; nothing here is imported by ``painterly`` itself.
:class:`VideoConfig`, the settings of a clip's run besides the stylize options, is here,
free of torch, PyAV and OpenCV, so that the CLI builds its flags without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass

from painterly.config import MAX_STEPS, MAX_WEIGHT
from painterly.settings import check_fields, option

FIRST_STEPS = 300  # the first frame: an ordinary coarse-to-fine stylisation
LATER_STEPS = 100  # each later frame: one scale, started from the warped previous output
BLEND = 0.8  # --model: how much of each reliable pixel comes from the previous output
TEMPORAL_WEIGHT = 1000.0  # docs/video.md: flicker as at 2000-5000, the style drifting less
MAX_SECONDS = 1e7  # a clip's start or duration: about 116 days


@dataclass(frozen=True)
class VideoConfig:
    """Which frames of a clip are painted, and how each later frame follows the one
    before; the stylize options (:class:`painterly.config.Options`) are separate."""

    start: float = option(0.0, "skip to this time, in s", "float", low=0, high=MAX_SECONDS)
    duration: float = option(0.0, "seconds to take (0: all)", "float", low=0, high=MAX_SECONDS)
    max_frames: int = option(0, "at most N frames (0: all)", "int", low=0, high=10**9)
    fps: float = option(24.0, "frame rate of a folder of frames", "float", low=0.001, high=1000)
    first_steps: int = option(
        FIRST_STEPS, "steps of the first frame, coarse to fine", "int", low=1, high=MAX_STEPS
    )
    temporal_weight: float = option(
        TEMPORAL_WEIGHT,
        "weight of the temporal loss; 0: each frame on its own, which flickers",
        "float",
        low=0,
        high=MAX_WEIGHT,
    )
    long_term: tuple[int, ...] = option(
        (),
        "also hold each frame to the outputs J, K.. frames back (e.g. 4,8)",
        "ints",
        low=2,
        high=100,
        items=(0, 16),
    )
    blend: float = option(
        BLEND,
        "with --model: the share of each reliable pixel taken from the previous output "
        "warped (0: each frame on its own, which flickers; below 1, or the model's output "
        "would never show)",
        "float",
        low=0,
        high=0.99,
    )

    def __post_init__(self) -> None:
        check_fields(self)
