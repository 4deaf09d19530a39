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

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ray

from painterly.cluster import ClusterConfig, watchdog, worker
from painterly.cluster.plan import BatchPlan, Task
from painterly.errors import PainterlyError
from painterly.runstate import style_files

RETRIES = 5  # runs of a task whose worker or node died, before it counts as failed
CONNECT_TIMEOUT = 10.0  # seconds to wait for the head node to answer at all


LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's own switch for a machine-local instance (its default on macOS and Windows):
set to 0, every node names itself by loopback (127.0.0.1) rather than by the machine's
network interface address, and listens there. Read by Ray at import, in this process
and in every process a local instance starts."""

NICENESS = "RAY_worker_niceness"
"""Ray adds 15 to its worker processes' niceness, below everything else on the
machine; on a busy laptop a local instance's tasks then get a few per cent of a core
(a batch of tiny images took minutes beside two busy processes). A local instance is
the user's own job, so its workers add nothing and run at the driver's own priority,
unless the environment says otherwise. Read by the raylet when it starts."""


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: the one running here; ``""``: the one
    RAY_ADDRESS names or the latest started here, else a new local instance).

    A cluster on this machine is reached over loopback, and a local instance pinned to
    it (left alone, Ray names the node by the machine's network interface address and
    serves on it); a local instance ends with this process
    (:mod:`painterly.cluster.watchdog`)."""
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    _answers(address)
    if _on_this_machine(address):
        _local_only()  # the driver too: workers reach it at the address it names
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            os.environ.setdefault(NICENESS, "0")
            watchdog.guard()  # its processes end with this one, even if it is killed
            ray.init(include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"at {address}" if address else "here"
        raise PainterlyError(
            f"cannot start or reach a Ray cluster {where} ({one_line(err)}); check the "
            "address, or give none to start a local one"
        ) from None


def _on_this_machine(address: str) -> bool:
    """Whether ``address`` names a cluster on this machine: none (a new local instance
    or the latest started here), ``auto``, ``local`` or a loopback HOST:PORT."""
    host = address.removeprefix("ray://").rpartition(":")[0]
    return address in ("", "auto", "local") or host in ("127.0.0.1", "localhost", "[::1]")


def _local_only() -> None:
    """Pin the local instance about to start to loopback (see LOCAL_ONLY): through the
    environment for the processes it starts, and in Ray's constants for this one, which
    imported them already."""
    from ray._private import ray_constants

    os.environ[LOCAL_ONLY] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _answers(address: str) -> None:
    """Refuse at once a HOST:PORT where nothing listens: Ray itself keeps trying for
    minutes. ``auto``, ``local`` and the empty address are Ray's to resolve."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not (sep and host and port.isdigit()):
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PainterlyError(
            f"nothing answers at {address} ({reason}); start the Ray head there "
            "(ray start --head) or give its address"
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


def style_specs(styles: list[tuple[str, float]]) -> list[dict]:
    """How a worker lays out the style files it gets (painterly.cluster.worker)."""
    return [
        {
            "path": path,
            "weight": weight,
            "folder": Path(path).is_dir(),
            "files": [p.name for p in style_files(path)],
        }
        for path, weight in styles
    ]


def spec_of(task: Task, options: dict, threads: int) -> dict:
    """What :func:`painterly.cluster.worker.stylize` needs besides the files' bytes."""
    return {
        "key": task.key,
        "content": task.content,
        "styles": style_specs(task.styles),
        "options": options,
        "threads": threads,
    }


def remote(function, cpus: int, on_gpus: bool):
    """``function`` as a Ray task of one slot, retried where its worker dies."""
    return ray.remote(function).options(
        num_cpus=1 if on_gpus else cpus,
        num_gpus=1 if on_gpus else 0,
        max_retries=RETRIES,
        retry_exceptions=False,  # an error of the task's own is its answer
    )


class Shared:
    """Files put in the object store once however many tasks read them (the styles)."""

    def __init__(self):
        self._refs: dict[str, ray.ObjectRef] = {}

    def __call__(self, path: Path) -> ray.ObjectRef:
        key = str(path)
        if key not in self._refs:
            self._refs[key] = ray.put(path.read_bytes())
        return self._refs[key]

    def styles(self, styles: list[tuple[str, float]]) -> list[ray.ObjectRef]:
        return [self(file) for path, _ in styles for file in style_files(path)]


_Item = TypeVar("_Item")


def schedule(
    items: Iterable[_Item], submit: Callable, cpus: int, stopping: Callable[[], bool]
) -> Iterator[tuple[_Item, dict]]:
    """Submit ``items`` (``submit(item)`` returns a task's ObjectRef) while there are
    free slots, at most two per slot in flight; yield each item with its result as it
    finishes (an ``error`` key where it failed, with ``wall``: seconds from submitting
    to the result). Once ``stopping()`` is true nothing more is submitted; closing the
    iterator early cancels the running tasks."""
    items = iter(items)
    pending: dict[ray.ObjectRef, tuple[_Item, float]] = {}
    more = True
    try:
        while more or pending:
            limit = 2 * max(slots(cpus)[0], 2)  # nodes come and go
            while more and not stopping() and len(pending) < limit:
                item = next(items, None)
                if item is None:
                    more = False
                    break
                try:
                    pending[submit(item)] = (item, time.perf_counter())
                except OSError as err:
                    yield item, {"error": f"cannot read an input ({err.strerror or err})"}
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                item, submitted = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    result = {"error": one_line(err)}
                result["wall"] = time.perf_counter() - submitted
                yield item, result
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def run_tasks(
    tasks: list[Task], options: dict, cpus: int, stopping: Callable[[], bool]
) -> Iterator[tuple[Task, dict]]:
    """Run ``tasks`` on the cluster (see :func:`schedule`)."""
    on_gpus = slots(cpus)[1]
    task_of = remote(worker.stylize, cpus, on_gpus)
    shared = Shared()
    threads = 1 if on_gpus else cpus

    def submit(task: Task) -> ray.ObjectRef:
        content = ray.put(Path(task.content).read_bytes())
        styles = shared.styles(task.styles)
        return task_of.remote(spec_of(task, options, threads), content, *styles)

    yield from schedule(tasks, submit, cpus, stopping)


SAVE_EVERY = 2.0  # seconds between manifest writes while outputs come in


@dataclass
class BatchOnRay:
    """What :func:`run_batch` made: each output's record (for --metrics), the outputs
    that failed (name -> error), the seconds it took, and whether it was stopped."""

    items: list[dict] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: bool = False


def run_batch(
    plan: BatchPlan,
    *,
    overrides: dict,
    cluster: ClusterConfig,
    address: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[], None] = lambda: None,
    on_item: Callable[[Task, bool], None] = lambda task, ok: None,
    saving: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> BatchOnRay:
    """Run the tasks ``plan`` has still to do on the Ray cluster at ``address`` (``""``:
    a local instance), each image written into the plan's folder as it comes back
    (within ``saving()``) and recorded in its manifest; the counterpart of
    :func:`painterly.batch.run_batch` on one machine. ``on_start`` hears that the
    cluster answered, ``on_item`` of each output made or failed; ``should_stop`` ends it
    between outputs; a rerun makes only what is still missing."""
    from painterly.image import save_image

    manifest, run = plan.manifest, BatchOnRay()
    started = last_save = time.perf_counter()
    connect(address)
    on_start()
    try:
        for task, result in run_tasks(plan.todo, overrides, cluster.ray_cpus, should_stop):
            if "error" in result:
                manifest.fail(task, result["error"])
                run.failures[task.name] = result["error"]
            else:
                with saving():
                    save_image(result["image"], manifest.folder / task.name, result["metadata"])
                item = _item(task, result)
                manifest.record(task, {k: item[k] for k in ("node", "host", "seconds")})
                run.items.append(item)
            on_item(task, "error" not in result)
            if time.perf_counter() - last_save > SAVE_EVERY:
                manifest.save()
                last_save = time.perf_counter()
    finally:
        manifest.save()
        shutdown()
    run.seconds, run.stopped = time.perf_counter() - started, should_stop()
    return run


def _item(task: Task, result: dict) -> dict:
    """One output's line in --metrics: where and how long it took, and its losses."""
    metrics = result["metrics"]
    return {
        "output": task.name,
        "content": task.content,
        "styles": [[path, weight] for path, weight in task.styles],
        "node": result["node"],
        "host": result["host"],
        "seconds": round(result["seconds"], 3),  # on the worker, inputs to image
        "wall": round(result["wall"], 3),  # at the driver, sent to received
        **{k: metrics[k] for k in ("device", "steps", "ms_per_step", "losses")},
    }
