"""Downloads into the cache: streamed with a progress bar and a timeout, and trusted only
once they match their published hashes.

A download goes into a partial file beside its destination and takes the destination's
name only when it is complete and its hashes match, so the cache never holds a partial
or corrupt file under a real name. Two ways to treat an interrupted download:

* ``resume=False`` (weight files): the partial file is removed; the next try starts over.
* ``resume=True`` (photo sets, hundreds of MB): a dropped connection, a timeout or Ctrl-C
  keeps ``NAME.part``; the next try hashes what it holds and asks the server for the rest
  (an HTTP ``Range`` request), or starts over if the server cannot resume. A file whose
  hash does not match is removed either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from painterly.files import atomic_writer

CHUNK = 1 << 20


class Failed(Exception):
    """One URL did not yield a good file; the message says why (for the final error)."""


class Hashes:
    """md5 and sha256 computed in one streaming pass."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)

    def mismatch(self, md5: str | None, sha256_prefix: str | None) -> str | None:
        """Why these hashes are not the published ones, or None if they match.
        ``sha256_prefix``: leading hex digits of the sha256 (torchvision's convention),
        or all of it."""
        got = self.md5.hexdigest()
        if md5 is not None and got != md5.lower():
            return f"md5 is {got}, expected {md5}"
        sha = self.sha256.hexdigest()
        if sha256_prefix is not None and not sha.startswith(sha256_prefix.lower()):
            return f"sha256 starts {sha[: len(sha256_prefix)]}, expected {sha256_prefix}"
        return None


def hash_file(path: Path) -> Hashes:
    """The hashes of a file's bytes."""
    hashes = Hashes()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hashes.update(chunk)
    return hashes


def partial_path(dest: Path) -> Path:
    """Where the download of ``dest`` is kept until it is complete and checked."""
    return dest.with_name(dest.name + ".part")


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None,
    sha256_prefix: str | None,
    progress: bool,
    timeout: float,
    resume: bool = False,
) -> None:
    """Download ``url`` to ``dest``, checked against the hashes; raises :class:`Failed`
    (or OSError for the cache itself). ``timeout`` bounds the connection and every read,
    so a stalled server fails instead of hanging; it is not a limit on the whole file."""
    if not resume:
        # Raising inside the writer's block discards its temporary file.
        with atomic_writer(dest) as out:
            hashes = Hashes()
            _get(url, out, hashes, 0, progress, timeout, dest.name)
            problem = hashes.mismatch(md5, sha256_prefix)
            if problem:
                raise Failed(problem)
        return
    part = partial_path(dest)
    have = part.stat().st_size if part.is_file() else 0
    hashes = hash_file(part) if have else Hashes()
    try:
        with open(part, "r+b" if have else "wb") as out:
            out.seek(have)
            _get(url, out, hashes, have, progress, timeout, dest.name)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if part.is_file() and part.stat().st_size == 0:  # nothing worth resuming from
            part.unlink()
        raise
    problem = hashes.mismatch(md5, sha256_prefix)
    if problem:
        part.unlink(missing_ok=True)
        raise Failed(problem)
    os.replace(part, dest)


def _get(url, out, hashes: Hashes, have: int, progress: bool, timeout: float, desc: str) -> None:
    """Write the body of ``url`` into ``out``, which holds its first ``have`` bytes
    (already in ``hashes``): the rest is asked for with a Range request, and if the
    server sends the whole file instead, ``out`` and ``hashes`` start over."""
    headers = {"User-Agent": "painterly"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    start = received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if resp.status == 206 and _range_start(resp) != have:
                raise Failed(f"the server sent a part from byte {_range_start(resp)}, not {have}")
            if resp.status == 206:
                start = have
            elif have:
                out.seek(0)
                out.truncate()
                hashes.reset()
            length = resp.headers.get("Content-Length")
            total = int(length) + start if length and length.isdigit() else None
            with tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    hashes.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # asked past the end: what is kept is not this file
            out.seek(0)
            out.truncate()
            raise Failed("the partial download is longer than the file; run again") from err
        raise Failed(f"HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise Failed(str(err.reason)) from err
    except TimeoutError as err:
        raise Failed(f"timed out after {timeout:g} s") from err
    except http.client.IncompleteRead as err:
        got = start + received + len(err.partial)
        raise Failed(f"connection dropped after {got} bytes") from err
    except (OSError, http.client.HTTPException) as err:
        raise Failed(f"{type(err).__name__}: {err}") from err
    if total is not None and start + received != total:
        raise Failed(f"connection dropped after {start + received} of {total} bytes")


def _range_start(resp) -> int | None:
    """The first byte of a 206 response's ``Content-Range: bytes A-B/N``."""
    value = resp.headers.get("Content-Range", "")
    with contextlib.suppress(ValueError):
        unit, _, span = value.partition(" ")
        if unit == "bytes":
            return int(span.split("-", 1)[0])
    return None
