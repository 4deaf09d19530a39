"""What Ctrl-C and SIGTERM do to a command-line run: stop, keep what there is, save it.

1. The first SIGINT or SIGTERM asks the run to stop after the step in progress; the
   latest (best) image is then saved as usual.
2. A second one stops a step still in progress at once (KeyboardInterrupt inside the
   optimiser, which keeps the best image evaluated so far); once the run is winding
   down or saving, it waits for the save.
3. A third one aborts: nothing more is written, and no half-written file is left (the
   atomic writer removes its temporary file).

The run then exits with 128 + the first signal's number (130 for Ctrl-C, 143 for
SIGTERM), as shells report a job stopped by that signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from painterly.events import Event, Progress, Stop

SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


class StopSignals:
    """``with StopSignals(say) as stop:`` installs the policy above for the block (in the
    main thread; elsewhere it does nothing). ``stop.check`` is an event callback that
    ends the run at its next step once asked; ``stop.saving()`` marks the writing of the
    result, which a second signal does not interrupt."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.received: list[int] = []
        self._saving = False  # the result is being written
        self._stopping = False  # the run has been told to stop at its last step
        # What signal.signal returned: a handler, SIG_DFL or SIG_IGN, or None (not from Python).
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    @property
    def asked(self) -> bool:
        return bool(self.received)

    @property
    def aborted(self) -> bool:
        """A third signal: write nothing more."""
        return len(self.received) >= 3

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received[0]) if self.received else 0

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        # After a signal the command is ending: later ones are ignored (SIG_IGN, which
        # Python keeps through interpreter shutdown), so that one arriving while it
        # prints its last line or exits cannot turn a saved run into a killed one.
        # Without a signal, the previous handlers come back.
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self.received else handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            self.say(
                f"{name}: stopping after this step and saving the latest image "
                "(again: stop at once; a third time: quit without saving)"
            )
        elif len(self.received) == 2 and not (self._stopping or self._saving):
            self.say(f"{name}: stopping now; saving the latest image")
            raise KeyboardInterrupt  # the optimiser keeps its best image so far
        elif len(self.received) == 2:  # the step has ended: the result is on its way
            self.say(f"{name}: saving the latest image (a third time: quit without saving)")
        else:
            self.say(f"{name}: quitting without saving")
            raise KeyboardInterrupt

    def check(self, event: Event) -> None:
        """Raise :class:`Stop` (which ends the optimisation and keeps its best image) at
        the first step after a signal. Only on Progress, which comes from inside a step."""
        if self.received and isinstance(event, Progress):
            self._stopping = True
            raise Stop

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """The block that writes the result; after a third signal it is not entered
        (KeyboardInterrupt: nothing more is written)."""
        if self.aborted:
            raise KeyboardInterrupt
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
