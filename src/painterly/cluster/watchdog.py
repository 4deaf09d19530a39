"""Ends the local Ray instance a driver started, once the driver is gone however it went.

``--ray`` without an address starts Ray on this machine. Ray ends most of its processes
with the driver, but not all: after a SIGKILL of the driver its dashboard and
runtime-env agents (about 170 MB) were still running a minute later. So the driver
starts this watchdog first, in a session of its own, holding the read end of a pipe
whose write end only the driver has. While the driver lives, the watchdog notes every
Ray process below it (they all start there); when the driver ends, normally or killed,
the read sees the end of the pipe and the watchdog kills those still running.
A process is known by its id and start time, so a reused id is never killed. Linux
only (``/proc``); elsewhere nothing is started.

Run as ``python -m painterly.cluster.watchdog FD``; it imports nothing heavy.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

LOOK_EVERY_S = 0.5  # how often the driver's descendants are listed while it runs


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent id, start time) of process ``pid``; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (name) "
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Process id -> start time of every process below ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def _is_ray(pid: int) -> bool:
    """Whether process ``pid`` is one of Ray's (``ray::`` workers and agents, raylet,
    gcs_server, Ray's Python helpers): other children of the driver are left alone."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return command.startswith(b"ray::") or b"/ray/" in command


def guard() -> None:
    """Start the watchdog for a local Ray instance about to start in this process. Call
    it before ``ray.init``; once per process; nothing where there is no ``/proc``."""
    if _keep or not Path("/proc/self/stat").exists():
        return
    read_end, write_end = os.pipe()  # neither is inherited unless passed on by name
    subprocess.Popen(
        [sys.executable, "-m", "painterly.cluster.watchdog", str(read_end)],
        pass_fds=(read_end,),
        start_new_session=True,  # outlives the driver's process group and its Ctrl-C
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(read_end)
    _keep.append(write_end)  # held until this process ends


_keep: list[int] = []


def main(argv: list[str]) -> None:
    fd, driver = int(argv[0]), os.getppid()
    seen: dict[int, int] = {}
    while True:  # until the driver is gone
        ready, _, _ = select.select([fd], [], [], LOOK_EVERY_S)
        if ready:
            try:
                if not os.read(fd, 1):
                    break
            except OSError:
                break
        seen.update({pid: t for pid, t in descendants(driver).items() if _is_ray(pid)})
    for pid, started in seen.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started:  # the same process, still running
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # ended meanwhile


if __name__ == "__main__":
    main(sys.argv[1:])
