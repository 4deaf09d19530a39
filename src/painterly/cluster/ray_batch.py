"""The driver's side of a cluster batch: connect to Ray, hand out one task per output,
collect what comes back.

Each output is a Ray *task* (not a pinned actor), so Ray places it on any node with a
free slot and, when a node or worker process dies, runs it again elsewhere
(``max_retries``); a retried task makes the same bytes, and only the driver writes
files, so a retry never leaves a second copy. A task that fails on its input returns
its error as a result (see :mod:`painterly.cluster.worker`) and is not retried.

Slots: one GPU per task where the cluster has GPUs, else ``cpus`` CPU threads per task
(``--ray-cpus``), so a node with C cores runs C / cpus photos at once. At most two
tasks per slot are in flight, so the object store holds a bounded number of photos.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import ray

from painterly.cluster import worker
from painterly.cluster.plan import Task, style_files
from painterly.errors import PainterlyError

RETRIES = 5  # runs of a task whose worker or node died, before it counts as failed


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: the one running here; ``""``: the one
    RAY_ADDRESS names or the latest started here, else a new local instance)."""
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"at {address}" if address else "here"
        raise PainterlyError(
            f"cannot start or reach a Ray cluster {where} ({one_line(err)}); check the "
            "address, or give none to start a local one"
        ) from None


def shutdown() -> None:
    ray.shutdown()


def one_line(err: BaseException) -> str:
    """An exception in one line: a task's own error (not Ray's traceback), else Ray's."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException) and cause is not err:
        err = cause
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(err).__name__}: {text}"[:300]


def slots(cpus: int) -> tuple[int, bool]:
    """How many outputs the cluster makes at once, and whether on GPUs."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return gpus, True
    return max(1, int(resources.get("CPU", 0)) // cpus), False


def spec_of(task: Task, options: dict, threads: int) -> dict:
    """What :func:`painterly.cluster.worker.stylise` needs besides the files' bytes."""
    styles = [
        {
            "path": path,
            "weight": weight,
            "folder": Path(path).is_dir(),
            "files": [p.name for p in style_files(path)],
        }
        for path, weight in task.styles
    ]
    return {
        "key": task.key,
        "content": task.content,
        "styles": styles,
        "options": options,
        "threads": threads,
    }


def run_tasks(
    tasks: list[Task], options: dict, cpus: int, stopping: Callable[[], bool]
) -> Iterator[tuple[Task, dict]]:
    """Run ``tasks`` on the cluster; yield each with its result as it finishes (an
    ``error`` key where it failed). Once ``stopping()`` is true, no task is started;
    those running finish. Closing the iterator early cancels the running ones."""
    count, on_gpus = slots(cpus)
    remote = ray.remote(worker.stylise).options(
        num_cpus=1 if on_gpus else cpus,
        num_gpus=1 if on_gpus else 0,
        max_retries=RETRIES,
        retry_exceptions=False,  # an error of the task's own is its answer
    )
    threads = 1 if on_gpus else cpus
    shared: dict[str, ray.ObjectRef] = {}  # style file -> its bytes in the object store
    queue = deque(tasks)
    pending: dict[ray.ObjectRef, tuple[Task, float]] = {}

    def put(path: Path) -> ray.ObjectRef:
        return ray.put(path.read_bytes())

    try:
        while queue or pending:
            while queue and not stopping() and len(pending) < 2 * max(count, 2):
                task = queue.popleft()
                try:
                    content = put(Path(task.content))
                    styles = []
                    for path, _ in task.styles:
                        for file in style_files(path):
                            key = str(file)
                            if key not in shared:
                                shared[key] = put(file)
                            styles.append(shared[key])
                except OSError as err:
                    yield task, {"error": f"cannot read an input ({err.strerror or err})"}
                    continue
                spec = spec_of(task, options, threads)
                pending[remote.remote(spec, content, *styles)] = (task, time.perf_counter())
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                task, submitted = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    result = {"error": one_line(err)}
                result["wall"] = time.perf_counter() - submitted
                yield task, result
            count = slots(cpus)[0]  # nodes come and go
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
