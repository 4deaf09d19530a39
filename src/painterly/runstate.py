"""The files a resumable run keeps about itself, read and checked in one place.

A run that can be resumed (``painterly video``, ``video --ray``, ``batch --ray``,
``train``) keeps a record beside its output: the settings it was started with, or what
it has made. The record is JSON that a person can open, and so can damage: every reader
goes through :func:`read_record`, which checks the file's structure and types and says
in one line what is wrong and how to start over. :func:`changed_setting` is the one rule
for "the same run" (the same settings, inputs named by their content hashes), used by
the run folders and by training's checkpoints; :func:`open_run_folder` the one
behaviour for ``--resume`` and ``--overwrite``. A clip's frames are kept in a
:class:`RunFolder` (``OUTPUT.frames/``), named by :func:`frame_name` wherever they lie.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from painterly import files
from painterly.errors import OptionsError
from painterly.files import images_in


def read_record(path: Path, fix: str) -> dict:
    """The JSON object in ``path``; OptionsError naming the file and ``fix`` (what to
    do instead) if it cannot be read or is not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise OptionsError(f"{path} cannot be read ({type(err).__name__}); {fix}") from None
    if not isinstance(data, dict):
        raise OptionsError(f"{path} is damaged (not a JSON object); {fix}")
    return data


def check_types(record: dict, kinds: dict[str, type | tuple[type, ...]], path: Path, fix: str):
    """Refuse ``record`` unless each of ``kinds``' keys holds a value of its type."""
    for key, kind in kinds.items():
        if not isinstance(record.get(key), kind):
            raise OptionsError(f"{path} is damaged ({key} has the wrong type); {fix}")


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Names of the settings that differ, into nested dicts (``options.steps``). A name
    that does not print as itself (a damaged record's ``"\\n"``) is given quoted and
    escaped, so that a message naming it stays one line."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        name = key if key.isprintable() else json.dumps(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{prefix}{name}.")
        elif x != y:
            out.append(prefix + name)
    return out


RECORD = "run.json"  # the settings a run folder was started with


def frame_name(index: int) -> str:
    """The file name of frame ``index`` (0-based) wherever frames are kept (a run
    folder, a chunk, a folder output): ``frame_000001.png`` is the first."""
    return f"frame_{index + 1:06d}.png"


def frame_number(path: Path) -> int | None:
    """The index :func:`frame_name` gave ``path``, or None if it is not such a name."""
    digits = path.name.removeprefix("frame_").removesuffix(".png")
    named = path.name.startswith("frame_") and path.name.endswith(".png")
    if not (named and digits.isdigit() and len(digits) == 6 and int(digits) > 0):
        return None
    return int(digits) - 1


def changed_setting(kept: dict, settings: dict) -> str | None:
    """The first setting (``options.steps``) in which ``settings`` differ from the
    ``kept`` ones of the run they would continue, or None if it is the same run."""
    changed = differences(kept, json.loads(json.dumps(settings)))
    return changed[0] if changed else None


def open_run_folder(
    folder: Path, record_name: str, settings: dict, resume: bool, overwrite: bool
) -> None:
    """Check or start the run folder ``folder``, whose ``record_name`` keeps
    ``settings``:

    * a folder without that record is not painterly's: refused, never written into or
      removed, whatever the flags;
    * an earlier run's folder needs ``resume`` (then the settings must be the same) or
      ``overwrite`` (then it is removed and started afresh).
    """
    record = folder / record_name
    if folder.exists() and not record.is_file():
        raise OptionsError(
            f"{folder} is not a painterly run folder (it has no {record_name}); move it "
            "away, or choose another output"
        )
    if folder.exists() and not resume:
        if not overwrite:
            raise OptionsError(
                f"{folder} holds an earlier run's frames; pass --resume to continue it, or "
                "--overwrite to start again"
            )
        shutil.rmtree(folder)
    if resume and record.is_file():
        fix = "pass --overwrite without --resume to start again"
        changed = changed_setting(read_record(record, fix), settings)
        if changed:
            raise OptionsError(
                f"{folder} was made with other settings ({changed} differs); resume with "
                f"the same input, styles and options, or {fix}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    files.write_json(record, settings)


class RunFolder:
    """``OUTPUT.frames/`` of a resumable video run: :data:`RECORD` (its settings) and
    ``frames/`` (the finished frames, by :func:`frame_name`); the local and the Ray
    runs keep their own parts beside them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.frames = folder / "frames"

    @classmethod
    def beside(cls, output: Path):
        """The run folder of ``output``: ``OUTPUT.frames/`` next to it."""
        return cls(output.with_name(output.name + ".frames"))

    def frame(self, index: int) -> Path:
        return self.frames / frame_name(index)

    def open(self, settings: dict, resume: bool, overwrite: bool) -> int:
        """Check or start the folder (:func:`open_run_folder`); return how many leading
        frames are finished."""
        open_run_folder(self.folder, RECORD, settings, resume, overwrite)
        self.frames.mkdir(exist_ok=True)
        done = 0
        while self.frame(done).exists():
            done += 1
        return done


def style_files(path: str | os.PathLike) -> list[Path]:
    """The files a style stands for: itself, or a folder's images (as controls reads
    them: sorted by name, not recursive)."""
    if os.path.isdir(path):
        return images_in(path)
    return [Path(path)]


class Digests:
    """Content hashes of the input files, each file read once however often it is used.
    A file that cannot be read is a one-line error naming it."""

    def __init__(self):
        self._seen: dict[str, str] = {}

    def __call__(self, path: str | os.PathLike) -> str:
        key = os.path.realpath(path)
        if key not in self._seen:
            try:
                self._seen[key] = files.sha256_of(path)
            except OSError as err:
                reason = err.strerror or type(err).__name__
                raise OptionsError(f"cannot read {path} ({reason}); check the path") from None
        return self._seen[key]

    def of_input(self, path: str | os.PathLike) -> list[str]:
        """A file's hash, or each file's in a folder (a clip given as its frames)."""
        if os.path.isdir(path):
            return [self(p) for p in sorted(Path(path).iterdir()) if p.is_file()]
        return [self(path)]

    def of_styles(self, styles) -> list[list]:
        """``[path, weight, [hash of each file]]`` per (path, weight) style."""
        return [[str(p), w, [self(f) for f in style_files(p)]] for p, w in styles]
