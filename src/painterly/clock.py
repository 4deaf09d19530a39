"""How far a whole job has got and how long it still needs: one model for a run's
scales, a batch's images, a clip's frames and a training run's iterations.

A job is planned as parts, each an optimisation of ``steps`` steps over ``pixels``
pixels (a scale of an image, a scale of a batch of images optimised together, a frame).
The share done is the planned work (steps x pixels) done, so a bar does not start again
at every part. The time left is the remaining steps of every part still to come, each
at the step cost measured at its size, plus each part's set-up time (reading, style
targets, optical flow, saving: whatever passes between one part's last step and the
next one's first), as measured so far:

* a step's cost at a size is the median of the latest steps measured there (WINDOW of
  them), the first step of each part left out (it carries the part's set-up and
  warm-up);
* a part's set-up is the median measured for parts like it (the same steps and
  pixels), the job's first part left out once others like it are measured (it carries
  the one-off costs: the encoder's first pass, say), else the mean of the others';
* at a size not yet measured, a line through the sizes measured (cost = a + b x pixels,
  neither below 0), or, with one size measured, that cost scaled by the pixels;
* no estimate (None) until a step has been measured.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence

WINDOW = 64  # steps kept per size: the latest pace counts (a machine's load changes)


class RunClock:
    """The progress model of one job: :meth:`begin` each part, :meth:`advance` as its
    steps are done; :attr:`fraction`, :attr:`elapsed` and :attr:`left` answer."""

    def __init__(
        self,
        parts: Sequence[tuple[int, int]],
        start: float | None = None,
        labels: Sequence[str] = (),
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.plan = [(max(1, int(s)), max(1, int(p))) for s, p in parts]  # still to begin
        self.labels = list(labels)  # what each part is of the job ("image 2 of 3"), if said
        self.label = ""  # the current part's
        self.total = sum(s * p for s, p in self.plan) or 1
        self.timer = timer  # a test's own clock, else perf_counter
        self.start = timer() if start is None else start
        self.done = 0.0  # work of the finished parts and the current one's done steps
        self.current: tuple[int, int] | None = None  # (steps, pixels) of the part running
        self.steps = 0.0  # of the current part
        self.costs: dict[int, deque[float]] = {}  # pixels -> seconds of its latest steps
        # (steps, pixels) of a part -> (seconds to its first step, the steps that did)
        self.setups: dict[tuple[int, int], list[tuple[float, float]]] = {}
        self.last: float = self.start  # when the latest step (or the start) was
        self.first_seen = False  # the current part's first step measured

    # --- what the job says ---------------------------------------------------------

    def begin(self, steps: int | None = None, pixels: int | None = None) -> None:
        """The next part begins. ``steps`` and ``pixels`` say what it is where that may
        differ from the plan (images run one by one after a batch ran out of memory:
        the planned part is then taken a share at a time)."""
        self._finish_current()
        planned = self.plan.pop(0) if self.plan else (steps or 1, pixels or 1)
        self.label = self.labels.pop(0) if self.labels else ""
        if pixels is not None and 0 < pixels < planned[1]:
            self.plan.insert(0, (planned[0], planned[1] - pixels))  # the rest of it
            self.labels.insert(0, self.label)
            planned = (planned[0], pixels)
        self.current = (steps or planned[0], planned[1])
        self.steps, self.first_seen = 0.0, False

    def advance(self, steps: float) -> None:
        """The current part has done ``steps`` of its planned steps in all (a share of
        a step for one tile of a tiled scale). Fewer than before: the part starts
        again (a redo in tiles, or in fp32), which costs time but no planned work."""
        if self.current is None:
            self.begin()
        assert self.current is not None  # begin() sets it
        now = self.timer()
        total, pixels = self.current
        steps = min(float(steps), float(total))
        if steps < self.steps:  # begun again
            self.done -= self.steps * pixels
            self.steps, self.first_seen = 0.0, False
        gained = steps - self.steps
        if gained <= 0:
            return
        if not self.first_seen:
            self.setups.setdefault(self.current, []).append((max(0.0, now - self.last), gained))
            self.first_seen = True
        else:
            window = self.costs.setdefault(pixels, deque(maxlen=WINDOW))
            window.append((now - self.last) / gained)
        self.done += gained * pixels
        self.steps, self.last = steps, now

    # --- what it tells -------------------------------------------------------------

    @property
    def fraction(self) -> float:
        """The share of the planned work done, 0..1, never going back."""
        return min(1.0, max(0.0, self.done / self.total))

    @property
    def elapsed(self) -> float:
        return self.timer() - self.start

    @property
    def left(self) -> float | None:
        """Seconds the job still needs, or None before any step cost is known."""
        if not self.costs:
            return None
        measured = self._measured()
        seconds = 0.0
        if self.current is not None:
            total, pixels = self.current
            seconds += (total - self.steps) * self.cost(pixels, measured)
            if not self.first_seen:
                seconds += self.setup(self.current, measured)
        for steps, pixels in self.plan:
            seconds += self.setup((steps, pixels), measured) + steps * self.cost(pixels, measured)
        under_way = self.cost(self.current[1], measured) if self.current else 0.0
        return max(0.0, seconds - min(self.timer() - self.last, under_way))

    def cost(self, pixels: int, measured: dict[int, float] | None = None) -> float:
        """Seconds a step at ``pixels``, measured or from the sizes measured."""
        measured = self._measured() if measured is None else measured
        if pixels in measured:
            return measured[pixels]
        if len(measured) == 1:
            ((p0, c0),) = measured.items()
            return c0 * pixels / p0
        xs, ys = list(measured), list(measured.values())
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        spread = sum((x - mx) ** 2 for x in xs)
        slope = max(0.0, sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread)
        base = max(0.0, my - slope * mx)
        return base + slope * pixels

    def setup(self, part: tuple[int, int], measured: dict[int, float] | None = None) -> float:
        """Seconds before the first step of a part like ``part`` (steps, pixels): the
        median of those measured, less the step each includes, the job's first part left
        out once others like it are measured (it carries one-off costs: the encoder's
        first pass, say); for a part unlike any measured, the mean of those that were."""
        measured = self._measured() if measured is None else measured
        if part not in self.setups:
            known = [self.setup(p, measured) for p in self.setups]
            return statistics.fmean(known) if known else 0.0
        seen = self.setups[part]
        seen = seen[1:] if len(seen) > 1 else seen
        step = self.cost(part[1], measured)
        return statistics.median(max(0.0, t - n * step) for t, n in seen)

    def _measured(self) -> dict[int, float]:
        """Pixels -> the median of the latest step times measured there."""
        return {p: statistics.median(c) for p, c in self.costs.items()}

    def _finish_current(self) -> None:
        if self.current is not None:
            total, pixels = self.current
            self.done += (total - self.steps) * pixels  # a part cut short counts as done
            self.current = None
