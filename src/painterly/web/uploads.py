"""Uploaded images: checked at the door and kept under ids the server makes.

A request never names a file: it sends bytes and gets back an id (16 hex digits); later
requests name the id, which is matched against :data:`ID_RE` before it is turned into a
path inside the data directory. The client's file name is kept only as a label.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import unicodedata
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from painterly.errors import ImageError
from painterly.image import load_image

ID_RE = re.compile(r"[0-9a-f]{16}")

ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "TIFF": "TIFF", "BMP": "BMP"}
"""Pillow format name -> how the page names it."""

ACCEPT_MIME = "image/png,image/jpeg,image/webp,image/tiff,image/bmp"
"""The page's <input accept=...>: a hint for the file chooser; the server checks the bytes."""

THUMB_SIDE = 320


@dataclass(frozen=True)
class Limits:
    """What the server accepts. The page reads these too, to warn before uploading."""

    max_upload_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 50_000_000  # per input image, checked from the header before decoding
    max_side: int = 4096  # of the output
    max_steps: int = 20_000
    max_styles: int = 8
    max_queued: int = 32  # waiting jobs, all devices together
    keep_jobs: int = 60  # finished jobs kept on disk for "recent results"


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


class UploadStore:
    """Uploaded images in ``root``: ``<id>.img`` (the bytes as sent), ``<id>.json`` (what
    they are) and ``<id>.jpg`` (a thumbnail)."""

    def __init__(self, root: Path, limits: Limits):
        self.root = root
        self.limits = limits
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
        part = self.root / f".{upload_id}.part"
        size = 0
        try:
            with open(part, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise too_big
                    fh.write(chunk)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        if size == 0:
            part.unlink(missing_ok=True)
            raise UploadRejected(422, f"{name} is empty; choose an image file")
        return upload_id, part

    def accept(self, upload_id: str, part: Path, name: str) -> dict:
        """Check the received bytes are an image we take, then keep them. Blocking (decodes)."""
        try:
            info = self._check(part, name, upload_id)
            info.update(id=upload_id, name=name, bytes=part.stat().st_size)
            (self.root / f"{upload_id}.json").write_text(json.dumps(info))
            os.replace(part, self.root / f"{upload_id}.img")
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return info

    def _check(self, part: Path, name: str, upload_id: str) -> dict:
        kinds = ", ".join(list(ACCEPTED_FORMATS.values())[:-1]) + " or BMP"
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
            img = load_image(part)
        except ImageError as err:
            # The core names the file by its path; the user knows it by its own name.
            raise UploadRejected(422, str(err).replace(str(part), name)) from None
        if fmt is None:  # decodable, yet its header could not be read on its own
            raise UploadRejected(415, f"{name} is not a {kinds} file")
        img.thumbnail((THUMB_SIDE, THUMB_SIDE))
        img.save(self.root / f"{upload_id}.jpg", "JPEG", quality=85)
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
