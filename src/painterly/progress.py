"""Progress on the terminal: a tqdm bar on stderr with the losses of the core's events,
and a bar of finished items for work spread across processes or machines."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from painterly.events import Event, Notice, Progress, Started


def duration(seconds: float) -> str:
    """``45 s``, ``4 min``, ``1.5 h``: a time left as a person says it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


JOB_BAR = (
    "{desc} {percentage:3.0f}%|{bar}| {elapsed}{postfix}"  # postfix: ", about 4 min left, ..."
)


class ProgressPrinter:
    """Callback that draws one progress bar for a whole job and prints notices above it.

    A job's Progress events carry its share done and time left (painterly.clock): one
    bar in per cent goes through every scale, tile and image, its label saying what runs
    now (``image 2 of 3 scale 1/2 256x192 cpu``, from each Started) and its tail the time
    left and the losses. A Progress without a share (a training run, which counts
    iterations) opens a bar named ``desc`` that starts at that step, so a resumed run's
    rate is its own."""

    def __init__(self, quiet: bool = False, *, unit: str = "step", desc: str = ""):
        self.quiet, self.unit, self.desc = quiet, unit, desc
        self.bar: tqdm | None = None
        self.whole = False  # the bar is a job's, in per cent
        self.where = ""

    def open_bar(self, total: int, desc: str, initial: int = 0) -> None:
        self.close()
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=self.unit,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def _open_job_bar(self) -> None:
        self.close()
        self.bar = tqdm(
            total=100,
            desc=self.where,
            bar_format=JOB_BAR,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self.whole = True

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            tqdm.write(f"painterly: warning: {event.message}", file=sys.stderr)
        elif isinstance(event, Started) and not self.quiet:
            w, h = event.size
            scale = f"scale {event.scale}/{event.scales} " if event.scales > 1 else ""
            part = f"{event.part} " if event.part else ""
            self.where = f"{part}{scale}{w}x{h} {event.device}"
            if self.bar is not None and self.whole:
                self.bar.set_description_str(self.where, refresh=False)
        elif isinstance(event, Progress) and not self.quiet:
            loss = event.losses
            losses = f"content {loss['content']:.3g} style {loss['style']:.3g} tv {loss['tv']:.3g}"
            if "heldout" in loss:  # a training run's latest score on its held-out crops
                losses += f" held-out {loss['heldout']:.3g}"
            if event.run_fraction or event.run_left is not None:
                if self.bar is None or not self.whole:
                    self._open_job_bar()
                assert self.bar is not None  # _open_job_bar opened it
                left = "" if event.run_left is None else f"about {duration(event.run_left)} left, "
                self.bar.set_postfix_str(left + losses, refresh=False)
                self.bar.update(100 * event.run_fraction - self.bar.n)
                return
            if self.bar is None:
                self.open_bar(event.total_steps, self.desc, initial=event.step - 1)
                assert self.bar is not None  # open_bar opened it
            self.bar.set_postfix_str(losses, refresh=False)
            self.bar.update(event.step - self.bar.n)

    def say(self, text: str) -> None:
        """A line on stderr above the bar (even when quiet: it answers the user)."""
        tqdm.write(f"painterly: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.whole = False


class CountBar:
    """A bar of finished items (images, chunks) out of ``total``, with how many failed
    and the pace per minute; tqdm adds the time left. For work spread over many
    processes or machines, where no single optimisation's steps tell the progress."""

    def __init__(self, total: int, quiet: bool = False, *, unit: str = "image", desc: str = ""):
        self.failed = 0
        self.started = time.perf_counter()
        self.bar = None
        if not quiet:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, ok: bool = True, count: int = 1) -> None:
        """``count`` more items finished (``ok``: well, else failed)."""
        self.failed += not ok
        if self.bar is not None:
            minutes = max(time.perf_counter() - self.started, 1e-9) / 60
            pace = (self.bar.n + count) / minutes
            self.bar.set_postfix_str(f"{self.failed} failed, {pace:.3g}/min", refresh=False)
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
