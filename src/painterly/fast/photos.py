"""Named photo sets to train fast models on: ``painterly train --images coco``.

A fast model learns to paint *any* photo from the photos it is trained on, so it needs
many and varied ones: Johnson et al. trained on the 80,000 photos of COCO. A set here is
one published archive (its address, size and md5 below), downloaded into the cache on
first use with a progress bar and resumed if the download is interrupted (download.py),
checked against its md5, and unpacked into ``cache_dir()/photos/NAME``; the archive is
then removed. Unpacking goes into a temporary folder that takes the set's name only when
complete, so a half-unpacked set is never trained on. Any folder of photos works as well.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from painterly import download
from painterly.errors import PainterlyError
from painterly.events import Callback, Notice, ignore
from painterly.files import IMAGE_SUFFIXES, cache_dir, claims


class PhotoSetError(PainterlyError):
    """A photo set cannot be downloaded, checked or unpacked."""


@dataclass(frozen=True)
class PhotoSet:
    """A published archive of photos and what is needed to fetch and trust it."""

    name: str
    urls: tuple[str, ...]  # tried in order
    filename: str
    size: int  # bytes
    md5: str
    photos: int
    licence: str  # one line
    description: str  # one line


PHOTO_SETS = {
    "coco": PhotoSet(
        name="coco",
        urls=("http://images.cocodataset.org/zips/val2017.zip",),
        filename="val2017.zip",
        size=815_585_330,
        md5="442b8da7639aecaf257c1dceb8ba8c80",
        photos=5000,
        licence="each photo under its Flickr owner's Creative Commons licence "
        "(cocodataset.org/#termsofuse)",
        description="COCO 2017 validation images (Lin et al. 2014): 5,000 everyday "
        "scenes of people, animals, streets and rooms, 778 MB",
    ),
}


def photos_dir() -> Path:
    return cache_dir() / "photos"


def resolve_images(
    images: str | os.PathLike,
    *,
    callback: Callback = ignore,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """The folder of photos ``--images`` names: a folder as it is; the name of a set in
    :data:`PHOTO_SETS` (when no such folder exists) its unpacked folder, downloaded and
    unpacked first if it is not in the cache yet."""
    path = Path(images)
    if path.exists() or str(images) not in PHOTO_SETS:
        return path
    return fetch_photo_set(
        PHOTO_SETS[str(images)], callback=callback, progress=progress, timeout=timeout
    )


def fetch_photo_set(
    ps: PhotoSet,
    *,
    callback: Callback = ignore,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """The unpacked folder of ``ps``, downloaded, checked and unpacked if need be."""
    folder = photos_dir() / ps.name
    if folder.is_dir():
        return folder
    archive = photos_dir() / ps.filename
    try:
        photos_dir().mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PhotoSetError(
            f"cannot create {photos_dir()} ({err.strerror}); set PAINTERLY_CACHE to a "
            "writable folder"
        ) from err
    # One download and unpacking at a time: a second run waits its turn by saying so.
    claims.claim(archive)
    if folder.is_dir():  # the run that held it has just finished
        return folder
    if not archive.is_file():
        _download(ps, archive, callback, progress, timeout)
    callback(Notice(f"unpacking {ps.photos} photos into {folder}"))
    _unpack(archive, folder, progress)
    archive.unlink(missing_ok=True)
    return folder


def _download(ps: PhotoSet, archive: Path, callback, progress, timeout) -> None:
    part = download.partial_path(archive)
    have = part.stat().st_size if part.is_file() else 0
    need = 2 * ps.size - have  # the archive, and the photos unpacked beside it
    free = shutil.disk_usage(photos_dir()).free
    if free < need:
        raise PhotoSetError(
            f"the {ps.name} photo set needs {need / 1e9:.1f} GB free in {photos_dir()}, "
            f"which has {free / 1e9:.1f} GB; free some or set PAINTERLY_CACHE elsewhere"
        )
    how = f"resuming at {have / 1e6:.0f} MB" if have else "it resumes if interrupted"
    callback(
        Notice(
            f"downloading the {ps.name} photo set ({ps.size / 1e6:.0f} MB, {ps.licence}) "
            f"into {photos_dir()}; {how}"
        )
    )
    failures = []
    for url in ps.urls:
        try:
            download.fetch(
                url,
                archive,
                md5=ps.md5,
                sha256_prefix=None,
                progress=progress,
                timeout=timeout,
                resume=True,
            )
            return
        except download.Failed as err:
            failures.append(f"{url}: {err}")
        except OSError as err:  # the cache itself: full disk, read-only folder
            raise PhotoSetError(f"cannot write {archive} ({err.strerror})") from err
    again = " (run again to resume)" if part.is_file() else ""
    raise PhotoSetError(
        f"could not download the {ps.name} photo set ({'; '.join(failures)}){again}; or "
        f"download {ps.filename} by hand from {ps.urls[0]}, unpack it and give its folder "
        "to --images"
    )


def _unpack(archive: Path, folder: Path, progress: bool) -> None:
    """Unpack the photos of ``archive`` flat into ``folder``, which appears complete."""
    work = folder.with_name(f".{folder.name}.unpacking-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir()
        with zipfile.ZipFile(archive) as zf:
            members = [
                m
                for m in zf.infolist()
                if not m.is_dir() and PurePosixPath(m.filename).suffix.lower() in IMAGE_SUFFIXES
            ]
            if not members:
                raise PhotoSetError(f"{archive} holds no photos; delete it and run again")
            for m in tqdm(members, desc="unpack", unit="photo", disable=not progress):
                # The file's own name only: nothing outside the folder, whatever the archive says.
                name = PurePosixPath(m.filename).name
                if name.startswith("."):
                    continue
                with zf.open(m) as src, open(work / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, download.CHUNK)
        os.replace(work, folder)
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)
        raise PhotoSetError(f"{archive} is not a readable zip ({err}); run again") from err
    except OSError as err:
        raise PhotoSetError(f"cannot unpack {archive} into {folder} ({err.strerror})") from err
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
