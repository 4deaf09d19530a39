"""The one way painterly writes a file the user keeps: whole, or not at all.

:func:`atomic_writer` opens a temporary file beside the destination, and only when the
caller's block finishes without an exception is it flushed to disk and renamed over the
destination. A crash, a full disk or Ctrl-C therefore never leaves a half-written file
under the real name, and an existing file there stays as it was until the new one is
complete.

A process killed outright (SIGKILL, power loss) cannot delete its temporary file. The
name carries the writer's process id, so the next write into the same folder removes
the temporary files of painterly processes that no longer run (:func:`sweep_stale`).

:class:`Claims` makes an output one run's alone: two runs told to write the same file
(or into the same run folder) would otherwise both work, and the later silently
replace the other's result. A claim is an advisory lock (``flock``) on a file named
after the output's real path in the cache's ``locks/`` folder: nothing is left beside
the output, and the kernel releases it when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import platformdirs

from painterly.errors import PainterlyError

# .NAME.<pid>-<random>.painterly.tmp: hidden, and recognisably ours.
_TMP = re.compile(r"^\..+\.(\d+)-[0-9a-f]{12}\.painterly\.tmp$")


class OutputBusy(PainterlyError):
    """Another painterly process is writing the same output."""


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``, in the form :func:`sweep_stale` knows."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.painterly.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process, or no way to tell: keep its file
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Delete temporary files in ``folder`` left by painterly processes that have died;
    return what was removed. Files of running processes and anything not ours stay."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TMP.match(entry.name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_writer(path) as f: f.write(...)``: ``path`` appears complete or not at
    all. ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8). The file gets the usual
    umask-derived permissions (not mkstemp's 0600). Errors propagate unchanged, after the
    temporary file is removed."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    sweep_stale(path.parent)
    tmp = temp_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        encoding = None if mode == "wb" else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_writer(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, data) -> None:
    """``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=1) + "\n")


def cache_dir() -> Path:
    """Where painterly keeps what it downloads and makes (weights, models, locks):
    $PAINTERLY_CACHE, else the platform's cache folder for painterly
    ($XDG_CACHE_HOME/painterly, else ~/.cache/painterly, on Linux)."""
    if os.environ.get("PAINTERLY_CACHE"):
        return Path(os.environ["PAINTERLY_CACHE"]).expanduser()
    return platformdirs.user_cache_path("painterly", appauthor=False)


class Claims:
    """The outputs this process has claimed, each held until :meth:`release`."""

    def __init__(self):
        self._held: dict[str, int] = {}  # real path -> the lock file's descriptor

    def claim(self, path: str | os.PathLike) -> None:
        """Claim ``path`` for this run: OutputBusy if another process holds it."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock; outputs go unclaimed
            return
        key = os.path.normcase(os.path.realpath(path))
        if key in self._held:
            return
        folder = cache_dir() / "locks"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
            fd = os.open(folder / f"{digest[:32]}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return  # no writable cache: claims are a safeguard, not a requirement
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputBusy(
                f"another painterly run is writing {path}; wait for it to finish, or give "
                "this one another output"
            ) from None
        self._held[key] = fd

    def release(self) -> None:
        for fd in self._held.values():
            os.close(fd)  # closing the descriptor drops the lock
        self._held.clear()


claims = Claims()
"""This process's claims: the CLI claims each output it will write, and releases them
when the command ends."""


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
"""What painterly takes for an image when it reads a folder (a GIF: its first frame)."""


def images_in(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
