"""What the core tells its callers while it works: small frozen dataclasses.

The CLI's progress bar, the web app's live view and the report all subscribe to the same
events through one callback; the core itself never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Notice:
    """Something the user should know (for example: fell back to the offline encoder)."""

    message: str


@dataclass(frozen=True)
class Started:
    """One optimisation begins: a scale of a coarse-to-fine run, or one tile of it."""

    total_steps: int  # of this optimisation
    size: tuple[int, int]  # (w, h) of what it optimises
    encoder: str
    device: str
    scale: int = 1  # which scale of the run, 1-based, coarse to fine
    scales: int = 1
    part: str = ""  # which part of a larger job it is: "image 2 of 3", "frame 5 of 24"


@dataclass(frozen=True)
class Progress:
    step: int  # 1-based, counts loss evaluations of this optimisation
    total_steps: int
    losses: dict[str, float]  # total, content, style, tv and style:<layer>
    elapsed: float  # seconds since Started
    # The whole job (all scales and tiles; a batch's images, a clip's frames), for a
    # bar and a time estimate that do not start again at every scale: the share of its
    # planned work (steps x pixels) done, the seconds since it began and the seconds it
    # still needs, from measured step costs (painterly.clock; None until measured).
    run_fraction: float = 0.0
    run_elapsed: float = 0.0
    run_left: float | None = None


@dataclass(frozen=True)
class Preview:
    """The current image, sent every ``preview_every`` steps when asked for."""

    step: int
    image: Image.Image


class Stop(Exception):
    """Raise from a callback (on Progress or Preview) to end the run early.

    The core then returns the latest image with ``interrupted`` set, as it does on Ctrl-C;
    this is how the web app's Cancel button stops a job running in a worker thread.
    """


Event = Notice | Started | Progress | Preview
Callback = Callable[[Event], None]


def ignore(event: object) -> None:
    """The default callback: drop everything."""
