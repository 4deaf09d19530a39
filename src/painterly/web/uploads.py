"""Uploaded images: checked at the door and kept under ids the server makes.

A request never names a file: it sends bytes and gets back an id (16 hex digits); later
requests name the id, which is matched against :data:`ID_RE` before it is turned into a
path inside the data directory. The client's file name is kept only as a label.

Decoding is the costly part (a 50-megapixel PNG of a few hundred kilobytes unpacks to
about a gigabyte on the way to RGB), so at most ``Limits.max_decodes`` uploads decode at
once, each only after its header's pixel count has passed. All uploads together stay
under ``Limits.max_upload_store_bytes``: a new one evicts the least recently used ones
that no waiting or running job needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
import warnings
from collections.abc import AsyncIterator, Callable, Set
from pathlib import Path

import anyio
from PIL import Image

from painterly.errors import ImageError
from painterly.files import atomic_writer, temp_path, write_json
from painterly.image import INPUT_FORMATS, load_image
from painterly.web.limits import Limits

ID_RE = re.compile(r"[0-9a-f]{16}")

ACCEPTED_FORMATS = INPUT_FORMATS
"""Pillow format name -> how the page names it: what the CLI reads."""

ACCEPT_MIME = ",".join(f"image/{name.lower()}" for name in INPUT_FORMATS.values())
"""The page's <input accept=...>: a hint for the file chooser; the server checks the bytes."""

THUMB_SIDE = 320
VIEW_SIDE = 1280  # the photo as the page shows it beside the result
SHOWN_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
"""Formats every browser shows: an upload of one, no larger than VIEW_SIDE, is its own view."""


WRITE_BLOCK = 1 << 20  # bytes of an upload gathered before a write


def _finish_file(fh, tail: bytes) -> None:
    fh.write(tail)
    fh.flush()
    os.fsync(fh.fileno())


class UploadRejected(Exception):
    """A file the server will not take; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def new_id() -> str:
    return secrets.token_hex(8)


def valid_id(value: str) -> bool:
    return ID_RE.fullmatch(value) is not None


def clean_name(name: str | None) -> str:
    """A file name fit to show: the last path part, printable characters, at most 80."""
    base = re.split(r"[\\/]", name or "")[-1]
    text = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return text[:80] or "image"


def _human_bytes(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def return_freed_memory() -> None:
    """Hand the heap's free pages back to the system where the C library can (glibc).

    A decode's large buffers are freed into the allocator's per-thread arenas, where
    they stay as resident memory of the server for ever unless trimmed.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).malloc_trim(0)


class UploadStore:
    """Uploaded images in ``root``: ``<id>.img`` (the bytes as sent), ``<id>.json`` (what
    they are) and ``<id>.jpg`` (a thumbnail). ``in_use()`` names the uploads that waiting
    or running jobs need; those are never evicted."""

    def __init__(self, root: Path, limits: Limits, in_use: Callable[[], set[str]] = set):
        self.root = root
        self.limits = limits
        self.in_use = in_use
        self.decoding = threading.BoundedSemaphore(limits.max_decodes)
        self.store_lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, upload_id: str) -> Path:
        """The stored image of ``upload_id``; KeyError if there is none."""
        if not valid_id(upload_id):
            raise KeyError(upload_id)
        path = self.root / f"{upload_id}.img"
        if not path.is_file():
            raise KeyError(upload_id)
        return path

    def info(self, upload_id: str) -> dict:
        self.path(upload_id)
        return json.loads((self.root / f"{upload_id}.json").read_text())

    def thumb(self, upload_id: str) -> Path:
        self.path(upload_id)
        return self.root / f"{upload_id}.jpg"

    def view(self, upload_id: str) -> tuple[Path, str]:
        """The image as a browser shows it, at most VIEW_SIDE px, for the page's
        before/after: the file itself where it can be, else a JPEG made at upload; and
        its media type."""
        path = self.path(upload_id)
        view = self.root / f"{upload_id}.view.jpg"
        if view.is_file():
            return view, "image/jpeg"
        name = self.info(upload_id).get("format", "")
        fmt = next((f for f, shown in ACCEPTED_FORMATS.items() if shown == name), "")
        return (
            (path, SHOWN_AS_IS[fmt])
            if fmt in SHOWN_AS_IS
            else (self.thumb(upload_id), "image/jpeg")
        )

    async def receive(
        self, chunks: AsyncIterator[bytes], name: str, length: int | None
    ) -> tuple[str, Path]:
        """Write the request body to a new part file; refuse it as soon as it is too big."""
        limit = self.limits.max_upload_bytes
        too_big = UploadRejected(
            413,
            f"{name} is larger than the {_human_bytes(limit)} this page accepts; "
            "downscale or re-compress it first",
        )
        if length is not None and length > limit:
            raise too_big
        upload_id = new_id()
        # A temporary name painterly.files knows: if the server dies, the next write into
        # this folder sweeps it away.
        part = temp_path(self.root / f"{upload_id}.img")
        size = 0
        # This runs on the event loop: the chunks are gathered in memory and written,
        # like the fsync, in a worker thread, so that a slow disk stalls no connection.
        fh = await anyio.to_thread.run_sync(open, part, "wb")
        try:
            with fh:
                pending = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise too_big
                    pending += chunk
                    if len(pending) >= WRITE_BLOCK:
                        await anyio.to_thread.run_sync(fh.write, bytes(pending))
                        pending.clear()
                await anyio.to_thread.run_sync(_finish_file, fh, bytes(pending))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(part.unlink, True)
            raise
        if size == 0:
            await anyio.to_thread.run_sync(part.unlink, True)
            raise UploadRejected(422, f"{name} is empty; choose an image file")
        return upload_id, part

    def accept(self, upload_id: str, part: Path, name: str) -> dict:
        """Check the received bytes are an image we take, then keep them. Blocking (decodes)."""
        try:
            with self.decoding:
                try:
                    info = self._check(part, name, upload_id)
                finally:
                    return_freed_memory()
            info.update(id=upload_id, name=name, bytes=part.stat().st_size)
            write_json(self.root / f"{upload_id}.json", info)
            os.replace(part, self.root / f"{upload_id}.img")  # a temporary file of ours
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        self.evict(keep={upload_id})
        return info

    def copy_in(self, source: Path, name: str) -> dict:
        """Keep a copy of a file of ours (a bundled painting) as an upload, checked like
        any other. Blocking."""
        upload_id = new_id()
        part = temp_path(self.root / f"{upload_id}.img")
        shutil.copyfile(source, part)
        return self.accept(upload_id, part, name)

    def touch(self, upload_ids) -> None:
        """Mark uploads as just used, so that eviction takes them last."""
        for upload_id in upload_ids:
            with contextlib.suppress(KeyError, OSError):
                os.utime(self.path(upload_id))

    def evict(self, keep: Set[str] = frozenset()) -> list[str]:
        """Delete the least recently used uploads until all of them fit
        ``max_upload_store_bytes``, sparing ``keep`` and those in use. Returns their ids."""
        with self.store_lock:
            spared = set(keep) | self.in_use()
            sizes: dict[str, int] = {}
            used: dict[str, float] = {}
            for entry in os.scandir(self.root):
                upload_id = entry.name.split(".")[0]
                if not valid_id(upload_id):
                    continue
                with contextlib.suppress(OSError):
                    stat = entry.stat()
                    sizes[upload_id] = sizes.get(upload_id, 0) + stat.st_size
                    if entry.name.endswith(".img"):
                        used[upload_id] = stat.st_mtime
            total, evicted = sum(sizes.values()), []
            for upload_id in sorted(used, key=used.__getitem__):
                if total <= self.limits.max_upload_store_bytes:
                    break
                if upload_id in spared:
                    continue
                for ext in (".img", ".json", ".jpg", ".view.jpg"):
                    (self.root / f"{upload_id}{ext}").unlink(missing_ok=True)
                total -= sizes[upload_id]
                evicted.append(upload_id)
            return evicted

    def _check(self, part: Path, name: str, upload_id: str) -> dict:
        names = list(ACCEPTED_FORMATS.values())
        kinds = ", ".join(names[:-1]) + " or " + names[-1]
        fmt = size = None
        try:  # the header alone: refuse a wrong type or a pixel bomb before decoding
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(part) as head:
                    fmt, size = head.format, head.size
        except Exception:  # noqa: BLE001 - load_image below says what is wrong, in words
            pass
        if fmt is not None and fmt not in ACCEPTED_FORMATS:
            raise UploadRejected(415, f"{name} is a {fmt} image; use a {kinds} file")
        if size is not None and size[0] * size[1] > self.limits.max_pixels:
            w, h = size
            raise UploadRejected(
                413,
                f"{name} is {w}x{h} px ({w * h:,} pixels); this page takes at most "
                f"{self.limits.max_pixels:,} pixels, so downscale it first",
            )
        try:
            img = load_image(part)  # decodes the whole image
        except ImageError as err:
            # The core names the file by its path; the user knows it by its own name.
            raise UploadRejected(422, str(err).replace(str(part), name)) from None
        if fmt is None:  # decodable, yet its header could not be read on its own
            raise UploadRejected(415, f"{name} is not a {kinds} file")
        if fmt not in SHOWN_AS_IS or max(img.size) > VIEW_SIDE:  # else the file itself
            img.thumbnail((VIEW_SIDE, VIEW_SIDE))
            with atomic_writer(self.root / f"{upload_id}.view.jpg") as fh:
                img.save(fh, "JPEG", quality=90)
        img.thumbnail((THUMB_SIDE, THUMB_SIDE))
        with atomic_writer(self.root / f"{upload_id}.jpg") as fh:
            img.save(fh, "JPEG", quality=85)
        img.close()
        assert size is not None  # read from the header with fmt, which is not None here
        w, h = size
        return {"width": w, "height": h, "format": ACCEPTED_FORMATS[fmt]}

    def prune(self, keep: set[str], grace_s: float = 24 * 3600) -> None:
        """Delete uploads that no job in ``keep`` uses and part files left by a crash, once
        they are ``grace_s`` old (a page may still hold a fresh upload for its next job)."""
        now = time.time()
        for path in self.root.iterdir():
            upload_id = path.name.strip(".").split(".")[0]
            try:
                old = now - path.stat().st_mtime > grace_s
            except FileNotFoundError:
                continue
            if old and valid_id(upload_id) and upload_id not in keep:
                path.unlink(missing_ok=True)
