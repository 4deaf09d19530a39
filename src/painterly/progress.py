"""A terminal consumer of the core's events: a tqdm bar on stderr with the losses."""

from __future__ import annotations

import sys

from tqdm import tqdm

from painterly.events import Event, Notice, Progress, Started


class ProgressPrinter:
    """Callback that draws one progress bar per run and prints notices above it."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: tqdm | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            tqdm.write(f"painterly: warning: {event.message}", file=sys.stderr)
        elif isinstance(event, Started) and not self.quiet:
            self.close()
            w, h = event.size
            scale = f"scale {event.scale}/{event.scales} " if event.scales > 1 else ""
            self.bar = tqdm(
                total=event.total_steps,
                desc=f"{scale}{w}x{h} {event.device}",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        elif isinstance(event, Progress) and self.bar is not None:
            loss = event.losses
            self.bar.set_postfix_str(
                f"content {loss['content']:.3g} style {loss['style']:.3g} tv {loss['tv']:.3g}",
                refresh=False,
            )
            self.bar.update(event.step - self.bar.n)

    def say(self, text: str) -> None:
        """A line on stderr above the bar (even when quiet: it answers the user)."""
        tqdm.write(f"painterly: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
