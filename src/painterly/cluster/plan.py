"""What a cluster batch has to make, and what it has made already.

Each output is one :class:`Task`: a photo, one style blend, the options. Its key is a
SHA-256 over the inputs' *contents* (not their names), the style weights, the options
given and the output format, so the output's name (``photo_style-<key8>.png``) says
exactly what it holds: the same name twice is the same work, and changing a photo or an
option gives a new name rather than a stale file under the old one.

The :class:`Manifest` (``OUTDIR/painterly-manifest.json``, written atomically) records
each finished output with the hashes of its inputs and of the file itself. A rerun
skips the outputs whose file still has the recorded hash and redoes those that are
missing or changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from painterly import files
from painterly.errors import PainterlyError
from painterly.files import sha256_of
from painterly.image import read_metadata
from painterly.runstate import Digests, check_types, read_record, style_files

MANIFEST = "painterly-manifest.json"
FORMAT = 1  # the manifest's layout


@dataclass
class Task:
    """One output: ``content`` stylised with the ``styles`` blend ((path, weight) pairs)."""

    content: str
    styles: list[tuple[str, float]]
    name: str  # the output's file name in OUTDIR
    key: str  # SHA-256 hex of everything the output depends on
    inputs: dict = field(default_factory=dict)  # what the manifest records of the inputs


def make_task(
    content: str,
    styles: list[tuple[str, float]],
    options: dict,
    fmt: str,
    label: str,
    digests: Digests,
) -> Task:
    """The task for one (photo, style blend), named ``<photo stem>_<label>-<key8>.<fmt>``.
    ``options`` are the options given (JSON values); one naming a file counts by the
    file's content."""
    style_inputs = [
        {"path": path, "weight": weight, "sha256": [digests(p) for p in style_files(path)]}
        for path, weight in styles
    ]
    content_input = {"path": content, "sha256": digests(content)}
    named = {k: digests(v) for k, v in options.items() if isinstance(v, str) and os.path.isfile(v)}
    described = {
        "content": content_input["sha256"],
        "styles": [[s["sha256"], s["weight"]] for s in style_inputs],
        "options": {**options, **named},
        "format": fmt,
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    name = f"{Path(content).stem}_{label}-{key[:8]}.{fmt}"
    inputs = {"content": content_input, "styles": style_inputs, "options": options}
    return Task(content, styles, name, key, inputs)


class Manifest:
    """What is done in ``folder``: ``outputs`` (file name -> record with ``task``, the
    inputs, ``sha256`` of the file, the node that made it and its timings) and
    ``failed`` (file name -> the one-line error of its last try)."""

    def __init__(self, folder: Path):
        self.path = folder / MANIFEST
        self.folder = folder
        self.outputs: dict[str, dict] = {}
        self.failed: dict[str, dict] = {}
        self.adopted: list[str] = []  # outputs found on disk and recorded now
        if self.path.exists():
            fix = "move it away to start the batch afresh"
            data = read_record(self.path, fix)
            if data.get("format") != FORMAT:
                raise PainterlyError(f"{self.path} is not a painterly manifest; {fix}")
            check_types(data, {"outputs": dict, "failed": dict}, self.path, fix)
            for part in ("outputs", "failed"):
                if not all(isinstance(r, dict) for r in data[part].values()):
                    raise PainterlyError(f"{self.path} is damaged ({part}); {fix}")
            self.outputs = data["outputs"]
            self.failed = data["failed"]

    def done(self, task: Task) -> bool:
        """Whether ``task``'s output is on disk as recorded (same task, same bytes)."""
        record = self.outputs.get(task.name)
        path = self.folder / task.name
        if not record or record.get("task") != task.key or not path.is_file():
            return False
        try:
            return sha256_of(path) == record.get("sha256")
        except OSError:
            return False

    def adopt(self, task: Task) -> bool:
        """Record an output found on disk but not in the manifest (the manifest was not
        saved after the file was written): its name holds the task's key, so a complete
        painterly image there is this task's. Whether it was adopted."""
        path = self.folder / task.name
        if task.name in self.outputs or not path.is_file():
            return False
        try:
            if "painterly:version" not in read_metadata(path):
                return False
            digest = sha256_of(path)
        except (PainterlyError, OSError):
            return False
        self.outputs[task.name] = {"task": task.key, **task.inputs, "sha256": digest}
        self.adopted.append(task.name)
        return True

    def record(self, task: Task, extra: dict) -> None:
        """``task``'s output is written: hash it and record it with ``extra`` (node,
        timings)."""
        digest = sha256_of(self.folder / task.name)
        self.outputs[task.name] = {"task": task.key, **task.inputs, "sha256": digest, **extra}
        self.failed.pop(task.name, None)

    def fail(self, task: Task, error: str) -> None:
        self.outputs.pop(task.name, None)
        self.failed[task.name] = {"task": task.key, **task.inputs, "error": error}

    def save(self) -> None:
        files.write_json(
            self.path, {"format": FORMAT, "outputs": self.outputs, "failed": self.failed}
        )


@dataclass
class BatchPlan:
    """A batch on a cluster before it runs: every task (one per output), the folder's
    manifest, the tasks still to do (missing, changed, failed), and the outputs among
    those that are not the manifest's (the caller decides whether they may be replaced)."""

    tasks: list[Task]
    manifest: Manifest
    todo: list[Task]
    foreign: list[Path]


def plan_batch(
    contents: list[str],
    styles: list[list[tuple[str, float]]],
    folder: Path,
    overrides: dict,
    suffix: str,
) -> BatchPlan:
    """Every photo of ``contents`` in every style of ``styles`` as a task writing
    ``folder/PHOTO_STYLE-HASH.SUFFIX`` (the same photo and style twice: one task). A
    mask or protect image belongs to one photo and is refused, as in a local batch."""
    from painterly.api import make_options
    from painterly.batch import style_label
    from painterly.config import refuse_one_photo
    from painterly.image import check_output_path

    refuse_one_photo(make_options(None, **overrides), "a batch")

    digests = Digests()
    tasks: dict[str, Task] = {}
    for content in contents:
        for specs in styles:
            task = make_task(content, specs, overrides, suffix, style_label(specs), digests)
            tasks.setdefault(task.name, task)
    manifest = Manifest(folder)
    todo, foreign = [], []
    for task in tasks.values():
        path = check_output_path(folder / task.name)
        if manifest.done(task) or manifest.adopt(task):
            continue
        if task.name not in manifest.outputs:  # not ours: never replaced unasked
            foreign.append(path)
        todo.append(task)
    return BatchPlan(list(tasks.values()), manifest, todo, foreign)
