"""The job queue: one worker thread per device, each running one job at a time.

A worker calls :func:`painterly.run` with a callback that records the core's events on
the job (losses, previews, notices) and raises :class:`painterly.events.Stop` once the
job is cancelled; the core then hands back its latest image. The page reads jobs
through :meth:`JobManager.snapshot`; the state lives here, on the server, so a page
can reload or a client vanish without touching a running job. Each job's state is
also written to ``jobs/<id>/job.json``, so finished ones outlive a restart.

The event loop reads jobs too (the event stream), so the state lock guards memory only:
it is never held across file writes, fsync or folder removal, and a slow disk delays
the worker, never the server's connections.
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from painterly.api import Result, run_model
from painterly.errors import PainterlyError
from painterly.events import Event, Notice, Preview, Progress, Started, Stop
from painterly.files import write_bytes, write_json
from painterly.image import save_image
from painterly.web.limits import Limits
from painterly.web.models import ModelShelf
from painterly.web.uploads import THUMB_SIDE, UploadStore, return_freed_memory, valid_id

log = logging.getLogger("painterly.web")

CURVES = ("total", "content", "style", "tv")  # the losses the page draws
TERMINAL = ("done", "cancelled", "failed")
PREVIEW_INTERVAL_S = 0.25  # encode a preview at most this often, however fast the steps
PREVIEWS_PER_RUN = 100  # ask the core for a preview about this many times per run
STORED_HISTORY = 2000  # points of the loss curves kept in job.json


class QueueFull(Exception):
    """Too many jobs are waiting."""


@dataclass
class Job:
    id: str
    device: str
    content: dict  # {"id", "name"} of the photo's upload
    styles: list[dict]  # {"id", "name", "weight"} of each painting's upload
    options: dict  # the preset's name and the fields changed from it, or a model's fields
    model: dict | None = None  # {"id", "styles"} of the fast model that paints, if one does
    status: str = "queued"  # then running, and one of TERMINAL
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    step: int = 0
    total_steps: int = 0
    elapsed: float = 0.0
    scale: int = 0  # which coarse-to-fine scale is running (1-based), of `scales`
    scales: int = 0
    run_fraction: float = 0.0  # of the whole run's planned work (events.Progress)
    run_elapsed: float = 0.0
    run_left: float | None = None  # seconds, from measured step costs (painterly.clock)
    size: list[int] | None = None
    encoder: str | None = None
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    metrics: dict = field(default_factory=dict)
    history: list[dict[str, float | None]] = field(default_factory=list)  # None: not finite
    has_result: bool = False
    # Not stored in job.json:
    preview: bytes | None = None
    preview_version: int = 0
    version: int = 0  # bumped on every change; the event stream sends when it moves
    cancel: threading.Event = field(default_factory=threading.Event)

    STORED = (
        "id device content styles options model status created started finished step total_steps "
        "elapsed scale scales run_fraction run_elapsed run_left size encoder notices error "
        "metrics "
        "history has_result"
    ).split()

    def to_json(self) -> dict:
        data = {k: getattr(self, k) for k in self.STORED}
        data["history"] = _thin(self.history, STORED_HISTORY)
        return data

    def uploads(self) -> list[dict]:
        return [self.content, *self.styles]

    @classmethod
    def from_json(cls, data: dict) -> Job:
        return cls(**{k: data[k] for k in cls.STORED if k in data})


def _thin(points: list, most: int) -> list:
    """At most ``most`` points, evenly spread, always keeping the last."""
    if len(points) <= most:
        return list(points)
    stride = len(points) / most
    return [points[int(i * stride)] for i in range(most - 1)] + [points[-1]]


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity; a diverged loss is sent as null."""
    return value if math.isfinite(value) else None


def _jpeg(img, side: int | None = None) -> bytes:
    if side:
        img = img.copy()
        img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


Runner = Callable[..., Result]  # painterly.run's signature


class JobManager:
    """Jobs by id, a waiting line per device and the worker threads that serve them.

    ``runner`` paints the jobs with paintings (painterly.run), ``model_runner`` those
    with a fast model of ``models`` (painterly.api.run_model).
    """

    def __init__(
        self,
        root: Path,
        uploads: UploadStore,
        limits: Limits,
        runner: Runner,
        models: ModelShelf,
        model_runner: Runner = run_model,
    ):
        self.root = root
        self.uploads = uploads
        self.limits = limits
        self.runner = runner
        self.models = models
        self.model_runner = model_runner
        self.jobs: dict[str, Job] = {}
        self.lines: dict[str, deque[Job]] = {}  # device -> waiting jobs, next first
        self.running: dict[str, Job] = {}  # device -> its running job
        self.workers: dict[str, threading.Thread] = {}
        self.lock = threading.Condition()  # the state above; held for memory only
        self.save_lock = threading.Lock()  # orders job.json writes; never on the event loop
        self.lines_version = 0  # bumped whenever a line or a running job changes
        self.stopping = False
        root.mkdir(parents=True, exist_ok=True)
        self._load()

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; KeyError if the id is malformed or unknown."""
        if not valid_id(job_id) or job_id not in self.jobs:
            raise KeyError(job_id)
        return self.jobs[job_id]

    def position(self, job: Job) -> int:
        """How many jobs run or wait ahead of ``job`` on its device (0 once it runs)."""
        line = self.lines.get(job.device, ())
        if job not in line:
            return 0
        return list(line).index(job) + (job.device in self.running)

    def mark(self, job: Job) -> tuple[int, int]:
        """Changes whenever what :meth:`snapshot` shows of ``job`` does. Lock-free: two
        integers, each written whole by the thread that changes it."""
        return job.version, self.lines_version

    def snapshot(self, job: Job, history_from: int = 0) -> dict:
        """What the page shows of ``job``, with the loss history from ``history_from`` on."""
        with self.lock:
            data = {k: getattr(job, k) for k in Job.STORED if k != "history"}
            data.update(
                position=self.position(job),
                version=job.version,
                preview_version=job.preview_version,
                history_from=history_from,
                history=job.history[history_from:],
            )
        return data

    def in_use(self) -> set[str]:
        """Uploads that waiting and running jobs need."""
        with self.lock:
            active = [j for j in self.jobs.values() if j.status not in TERMINAL]
            return {u["id"] for j in active for u in j.uploads()}

    def recent(self) -> list[dict]:
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            return [
                {
                    "id": j.id,
                    "status": j.status,
                    "created": j.created,
                    "content": j.content,
                    "styles": j.styles,
                    "model": j.model,
                    "step": j.step,
                    "total_steps": j.total_steps,
                    "run_fraction": j.run_fraction,
                    "has_result": j.has_result,
                    "position": self.position(j),
                }
                for j in jobs
            ]

    def result_path(self, job: Job) -> Path:
        return self.root / job.id / "result.png"

    def thumb_path(self, job: Job) -> Path:
        return self.root / job.id / "thumb.jpg"

    # ------------------------------------------------------------------ changing

    def _check_room(self) -> None:
        if self.stopping:
            raise QueueFull("the server is shutting down")
        if sum(len(line) for line in self.lines.values()) >= self.limits.max_queued:
            raise QueueFull(
                f"{self.limits.max_queued} jobs are already waiting; try again when "
                "some have finished"
            )

    def submit(self, job: Job) -> None:
        with self.lock:
            self._check_room()
        (self.root / job.id).mkdir()
        try:
            with self.lock:
                self._check_room()  # again: others may have queued while the folder was made
                self.jobs[job.id] = job
                self.lines.setdefault(job.device, deque()).append(job)
                self.lines_version += 1
                self._start_worker(job.device)
                self.lock.notify_all()
        except QueueFull:
            shutil.rmtree(self.root / job.id, ignore_errors=True)
            raise
        self._save(job)

    def _start_worker(self, device: str) -> None:
        if device not in self.workers:
            worker = threading.Thread(target=self._work, args=(device,), name=f"painterly-{device}")
            worker.daemon = True  # a stuck run must not keep the process alive
            self.workers[device] = worker
            worker.start()

    def cancel(self, job: Job) -> None:
        """Take a waiting job out of line, or ask a running one to stop at its next step."""
        with self.lock:
            line = self.lines.get(job.device, deque())
            taken = job in line
            if taken:
                line.remove(job)
                self.lines_version += 1
                self._finish(job, "cancelled")
            elif job.status == "running":
                job.cancel.set()
                job.version += 1
        if taken:
            self._save(job)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers: waiting jobs stay unstarted, running ones stop at the next step."""
        with self.lock:
            self.stopping = True
            for job in self.running.values():
                job.cancel.set()
            self.lock.notify_all()
        deadline = time.monotonic() + timeout
        for worker in list(self.workers.values()):
            worker.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ working

    def _work(self, device: str) -> None:
        while True:
            with self.lock:
                line = self.lines[device]
                while not line and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                job = line.popleft()
                job.status, job.started = "running", time.time()
                job.version += 1
                self.running[device] = job
                self.lines_version += 1
            self._save(job)
            try:
                self._run(job)
            finally:
                with self.lock:
                    del self.running[device]
                    self.lines_version += 1
                self._prune()
                if self.limits.return_memory_after_jobs:
                    return_freed_memory()

    def _run(self, job: Job) -> None:
        # Messages from the core name our copies of the files; the user knows their names.
        names = {str(self.uploads.root / f"{u['id']}.img"): u["name"] for u in job.uploads()}
        last_preview = [0.0]

        def on_event(event: Event) -> None:
            with self.lock:
                if isinstance(event, Progress):
                    job.step, job.total_steps, job.elapsed = (
                        event.step,
                        event.total_steps,
                        event.elapsed,
                    )
                    job.run_fraction, job.run_elapsed = event.run_fraction, event.run_elapsed
                    job.run_left = event.run_left
                    job.history.append({k: _finite(event.losses[k]) for k in CURVES})
                elif isinstance(event, Started):
                    job.size, job.encoder = list(event.size), event.encoder
                    job.step, job.total_steps = 0, event.total_steps
                    job.scale, job.scales = event.scale, event.scales
                elif isinstance(event, Notice):
                    job.notices.append(event.message)
                job.version += 1
            if isinstance(event, Preview) and time.monotonic() - last_preview[0] > (
                PREVIEW_INTERVAL_S
            ):
                last_preview[0] = time.monotonic()
                data = _jpeg(event.image)
                with self.lock:
                    job.preview, job.preview_version = data, job.preview_version + 1
                    job.version += 1
            if isinstance(event, Progress) and job.cancel.is_set():
                raise Stop

        try:
            if job.model:
                model, _ = self.models.find(job.model["id"])
                names[str(model)] = f"the model '{job.model['id']}'"
                result = self.model_runner(
                    self.uploads.path(job.content["id"]), model, callback=on_event, **job.options
                )
            else:
                result = self.runner(
                    self.uploads.path(job.content["id"]),
                    [(self.uploads.path(s["id"]), s["weight"]) for s in job.styles],
                    callback=on_event,
                    preview_every=max(1, job.total_steps // PREVIEWS_PER_RUN),
                    **job.options,
                )
            save_image(result.image, self.result_path(job), result.metadata)
            write_bytes(self.thumb_path(job), _jpeg(result.image, THUMB_SIDE))
        except PainterlyError as err:
            message = str(err)
            for path, name in names.items():
                message = message.replace(path, name)
            self._end(job, "failed", error=message)
        except Exception as err:  # noqa: BLE001 - the worker must outlive any one job
            log.exception("job %s failed", job.id)
            self._end(job, "failed", error=f"internal error ({type(err).__name__}: {err})")
        else:
            m = result.metrics
            with self.lock:
                job.has_result = True
                job.preview = None  # the result is the image now
                kept = ("model", "encoder", "device", "size", "steps", "seconds", "ms_per_step")
                job.metrics = {k: m[k] for k in kept if k in m}
                job.metrics["losses"] = {k: _finite(v) for k, v in m["losses"].items()}
            self._end(job, "cancelled" if result.interrupted else "done")

    def _end(self, job: Job, status: str, error: str | None = None) -> None:
        with self.lock:
            job.error = error
            self._finish(job, status)
        self._save(job)

    def _finish(self, job: Job, status: str) -> None:
        """Mark ``job`` ended, in memory; the caller holds the lock, then saves."""
        job.status, job.finished = status, time.time()
        job.version += 1

    # ------------------------------------------------------------------ storage

    def _save(self, job: Job) -> None:
        """Write ``job.json``. The state is copied under the lock and written outside it;
        the save lock makes the last write the newest state."""
        with self.save_lock:
            with self.lock:
                if job.id not in self.jobs:
                    return  # pruned meanwhile: its folder is gone
                data = job.to_json()
            write_json(self.root / job.id / "job.json", data)

    def _load(self) -> None:
        for path in sorted(self.root.glob("*/job.json")):
            if not valid_id(path.parent.name):
                continue
            try:
                job = Job.from_json(json.loads(path.read_text()))
            except (ValueError, TypeError, KeyError) as err:
                log.warning("skipping %s: %s", path, err)
                continue
            self.jobs[job.id] = job
            if job.status not in TERMINAL:
                job.status, job.error = "failed", "the server stopped before this job finished"
                self._save(job)
        self._prune()

    def _prune(self) -> None:
        """Keep the newest ``keep_jobs`` finished jobs, and the uploads that jobs still use."""
        with self.lock:
            done = sorted(
                (j for j in self.jobs.values() if j.status in TERMINAL),
                key=lambda j: j.created,
                reverse=True,
            )
            dropped = done[self.limits.keep_jobs :]
            for job in dropped:
                del self.jobs[job.id]
            used = {u["id"] for j in self.jobs.values() for u in j.uploads()}
        with self.save_lock:  # no write into a folder while it is removed
            for job in dropped:
                shutil.rmtree(self.root / job.id, ignore_errors=True)
        self.uploads.prune(used)
