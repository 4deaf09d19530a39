"""The weights cache: where weight files live, and how they get there and are trusted.

Files live in ``cache_dir()/weights`` under their published names. They arrive by
:func:`download` (streamed, with a progress bar, a timeout and the published hash checked
before the file takes its name) or by :func:`import_file` (a file the user obtained).

A registry file is used only once it has matched its published hash: a cache can hold a
truncated copy, a file damaged on disk or another file under the registry's name. The
first use hashes it (about 0.2 s for the 80 MB VGG19 file) and keeps the verdict in
``verified.json`` beside it, keyed by the file's size and modification time, so later runs
skip the hash until the file changes. A download or an import hashes the file anyway and
records the verdict at once.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from painterly import download as downloads
from painterly.encoders.formats import load_state_dict
from painterly.encoders.registry import REGISTRY, WeightSet, registry_entry
from painterly.errors import WeightsError
from painterly.files import atomic_writer, cache_dir, write_json

HINT_IMPORT = "`painterly weights import PATH`"
VERDICTS = "verified.json"  # in the weights folder: which cached files matched their hash


def _weights_dir() -> Path:
    """The directory weight files live in, created on demand."""
    path = cache_dir() / "weights"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsError(
            f"cannot create the cache directory {path} ({err.strerror});"
            " set PAINTERLY_CACHE to a writable directory"
        ) from err
    return path


def cached_path(ws: WeightSet) -> Path | None:
    """The cached file of ``ws`` if it is present (not hash-checked, so this is fast)."""
    path = cache_dir() / "weights" / ws.filename
    return path if path.is_file() else None


def weights_cached(name: str) -> bool:
    """Whether the registry's weight set ``name`` is cached and genuine (nothing downloaded;
    the file is hashed on the first call after it changed)."""
    try:
        return checked_path(REGISTRY[name]) is not None
    except WeightsError:
        return False


# --- hashes and verdicts ------------------------------------------------------------------


def _mismatch(hashes: downloads.Hashes, ws: WeightSet) -> str | None:
    """Why these hashes are not ``ws``'s file, or None if they match."""
    return hashes.mismatch(ws.md5, ws.sha256_prefix)


def _identifies(hashes: downloads.Hashes, ws: WeightSet) -> bool:
    has_hash = ws.md5 is not None or ws.sha256_prefix is not None
    return has_hash and _mismatch(hashes, ws) is None


def _hash_file(path: Path) -> downloads.Hashes:
    try:
        return downloads.hash_file(path)
    except OSError as err:
        raise WeightsError(f"cannot read weights file {path} ({err.strerror})") from err


def _stamp(path: Path) -> dict:
    """What identifies this version of the file without reading it."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _hash_id(ws: WeightSet) -> str:
    """The published hash a verdict was reached against (a registry change voids it)."""
    return f"md5:{ws.md5}" if ws.md5 else f"sha256:{ws.sha256_prefix}"


def _verdicts(directory: Path) -> dict:
    try:
        data = json.loads((directory / VERDICTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: files are hashed again
    return data if isinstance(data, dict) else {}


def _remember(path: Path, ws: WeightSet, stamp: dict, problem: str | None) -> None:
    """Record that ``path`` as of ``stamp`` is ``ws``'s file (``problem`` None) or why not."""
    verdicts = _verdicts(path.parent)
    verdicts[path.name] = {**stamp, "hash": _hash_id(ws), "problem": problem}
    with contextlib.suppress(OSError):  # a read-only cache: hashed again next time
        write_json(path.parent / VERDICTS, verdicts)


def checked_path(ws: WeightSet) -> Path | None:
    """The cached file of ``ws``, known to match its published hash; None if it is not
    cached. A cached file that does not match raises WeightsError and is never used."""
    path = cached_path(ws)
    if path is None:
        return None
    try:
        stamp = _stamp(path)
    except OSError as err:
        raise WeightsError(f"cannot read weights file {path} ({err.strerror})") from err
    known = _verdicts(path.parent).get(path.name)
    if (
        isinstance(known, dict)
        and all(known.get(key) == value for key, value in stamp.items())
        and known.get("hash") == _hash_id(ws)
    ):
        problem = known.get("problem")
    else:
        problem = _mismatch(_hash_file(path), ws)
        _remember(path, ws, stamp, problem)
    if problem:
        raise WeightsError(
            f"the cached {ws.name} weights file {path} is corrupt ({problem}); delete it and"
            f" run `painterly weights fetch {ws.name}`, or import a good copy with {HINT_IMPORT}"
        )
    return path


# --- download -----------------------------------------------------------------------------


def download(
    ws: WeightSet,
    *,
    progress: bool = True,
    urls: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``ws`` into the cache, verify its hash and return the cached path.

    URLs are tried in order (``urls`` replaces ``ws.urls``). The file is streamed into a
    temporary file in the cache and renamed only once complete and verified, so the cache
    never holds a partial or corrupt file. A progress bar goes to stderr unless
    ``progress`` is False.
    """
    urls = tuple(ws.urls if urls is None else urls)
    if not urls:
        raise WeightsError(
            f"no URL to download {ws.name} from; get {ws.filename} and run {HINT_IMPORT}"
        )
    dest = _weights_dir() / ws.filename
    failures = []
    for url in urls:
        try:
            downloads.fetch(
                url,
                dest,
                md5=ws.md5,
                sha256_prefix=ws.sha256_prefix,
                progress=progress,
                timeout=timeout,
            )
        except downloads.Failed as err:
            failures.append(f"{url}: {err}")
        except OSError as err:  # the cache itself: full disk, read-only folder
            raise WeightsError(f"cannot write {dest} ({err.strerror})") from err
        else:
            _remember(dest, ws, _stamp(dest), None)
            return dest
    raise WeightsError(
        f"could not download the {ws.name} weights ({'; '.join(failures)});"
        f" download {ws.filename} by hand from {urls[0]} and run {HINT_IMPORT}"
    )


# --- import and listing -------------------------------------------------------------------


def import_file(path: str | os.PathLike, name: str | None = None) -> Path:
    """Copy a weight file the user obtained into the cache and return the cached path.

    A file whose hash matches a registry entry becomes that entry's cached file, whatever
    it is called. A file that claims to be an entry (by ``name`` or by its filename) but
    does not match its hash is refused rather than cached as if it were genuine. Any other
    valid file is cached under its own name. The file is checked by loading it first and
    copied atomically.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"{src} is not a file; give the path of a downloaded weights file")
    claimed: WeightSet | None
    if name is not None:
        claimed = registry_entry(name)
    else:
        claimed = next((ws for ws in REGISTRY.values() if ws.filename == src.name), None)
    load_state_dict(src, claimed.arch if claimed else None)

    hashes = _hash_file(src)
    match = next((ws for ws in REGISTRY.values() if _identifies(hashes, ws)), None)
    if claimed is not None and match is not claimed:
        why = f"it is the {match.name} file" if match else _mismatch(hashes, claimed)
        raise WeightsError(
            f"{src} is not the {claimed.name} weights file ({why}); download"
            f" {claimed.filename} again from {claimed.urls[0]}"
        )
    directory = _weights_dir()
    dest = directory / (match.filename if match else src.name)
    if dest.name == VERDICTS:
        raise WeightsError(f"{src}: the cache keeps its own {VERDICTS}; rename the file")
    copied = downloads.Hashes()
    try:
        with atomic_writer(dest) as out, open(src, "rb") as f:
            while chunk := f.read(downloads.CHUNK):
                out.write(chunk)
                copied.update(chunk)
            if copied.sha256.digest() != hashes.sha256.digest():
                raise WeightsError(f"{src} changed while it was copied; import it again")
    except OSError as err:
        raise WeightsError(f"cannot copy {src} into {directory} ({err.strerror})") from err
    if match is not None:
        _remember(dest, match, _stamp(dest), None)
    return dest


def describe() -> list[dict]:
    """One dict per registry entry, for ``painterly weights list``."""
    return [
        {
            "name": ws.name,
            "arch": ws.arch,
            "size_mb": ws.size_mb,
            "path": cached_path(ws),
            "preprocessing": ws.preprocessing,
            "licence": ws.licence,
            "description": ws.description,
        }
        for ws in REGISTRY.values()
    ]
