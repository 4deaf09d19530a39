"""``--ray`` (painterly.cluster): ``painterly batch`` with every (photo, style) output
as one task on a Ray cluster, named by its inputs' content, recorded in a manifest,
resumable; ``painterly video`` with the clip in chunks of frames, cross-faded.

Each output is stylised on its own, as ``painterly stylize`` (or ``painterly batch
--batch-size 1``) would: with the same inputs, options, seed and CPU threads per task
(``--ray-cpus``, OMP_NUM_THREADS locally) a CPU worker writes the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time

from painterly.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_settings_flags,
    claim_output,
    given_options,
    given_settings,
    input_files,
    metrics_path_of,
    output_folder,
    parse_style,
    require_extra,
    write_metrics,
)
from painterly.cluster import ClusterConfig
from painterly.config import refuse_one_photo
from painterly.errors import OptionsError

RAY_MODULES = ("ray",)  # what pip install "painterly[ray]" adds
SAVE_EVERY = 2.0  # seconds between manifest writes while outputs come in


ADDRESS_HELP = (
    "(needs the ray extra): ADDRESS as Ray takes it, 'auto' for the cluster running "
    "here; none: the one RAY_ADDRESS names, else a local one"
)


def add_ray_flags(parser: argparse.ArgumentParser, video: bool = False) -> None:
    what = (
        "stylise chunks of consecutive frames in parallel on a Ray cluster"
        if video
        else "run each output as a task on a Ray cluster; outputs are named "
        "PHOTO_STYLE-HASH.EXT, recorded in OUTDIR/painterly-manifest.json, and a rerun "
        "redoes only what is missing or changed"
    )
    parser.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS", help=f"{what} {ADDRESS_HELP}"
    )
    chunks = () if video else ("ray_chunk", "ray_overlap")
    add_settings_flags(parser, ClusterConfig, skip=chunks)


def cluster_config(args: argparse.Namespace) -> ClusterConfig:
    """The --ray-* settings given, checked."""
    return ClusterConfig(**given_settings(args, ClusterConfig))


def _plan(args: argparse.Namespace, given: dict, inputs: list[str]):
    """The tasks, the manifest, and the tasks still to do (missing, changed, failed)."""
    from painterly.batch import style_label
    from painterly.cluster.plan import Manifest, make_task
    from painterly.image import check_output_path
    from painterly.runstate import Digests

    outdir = output_folder(args.output_dir)
    digests = Digests()
    styles = [[parse_style(s) for s in specs] for specs in args.styles]
    tasks = {}
    for content in args.contents:
        for specs in styles:
            task = make_task(content, specs, given, args.format, style_label(specs), digests)
            tasks.setdefault(task.name, task)  # the same photo twice: one output
    manifest = Manifest(outdir)
    todo = []
    for task in tasks.values():
        path = check_output_path(outdir / task.name)
        if manifest.done(task) or manifest.adopt(task):
            continue
        if task.name not in manifest.outputs:  # not ours: never replaced unasked
            claim_output(path, inputs, args.overwrite)
        todo.append(task)
    return list(tasks.values()), manifest, todo


def cmd_batch_ray(args: argparse.Namespace) -> int:
    require_extra("batch --ray", "ray", RAY_MODULES)
    from painterly.api import make_options
    from painterly.image import save_image
    from painterly.progress import CountBar, ProgressPrinter
    from painterly.signals import StopSignals

    if args.batch_size not in (0, 1):
        raise OptionsError("--batch-size does not apply with --ray: each output is one task")
    ray = cluster_config(args)
    given = given_options(args)
    asked = make_options(None, **given)
    refuse_one_photo(asked, "a batch")
    inputs = input_files(args, given)
    metrics_path = metrics_path_of(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    tasks, manifest, todo = _plan(args, given, inputs)
    outdir = manifest.folder
    skipped = len(tasks) - len(todo)
    printer = ProgressPrinter(quiet=args.quiet)
    if not todo:
        if manifest.adopted:
            manifest.save()
        if not args.quiet:
            printer.say(f"all {len(tasks)} outputs in {outdir} are done (see {manifest.path})")
        return EXIT_OK
    if skipped and not args.quiet:
        printer.say(f"{skipped} of {len(tasks)} outputs are done already; making {len(todo)}")

    from painterly.cluster import ray_batch

    ray_batch.connect(args.ray)
    bar = CountBar(len(todo), args.quiet, desc="ray")
    items, failures, last_save = [], {}, time.perf_counter()
    started = time.perf_counter()
    try:
        with StopSignals(printer.say) as stop:
            finished = ray_batch.run_tasks(todo, given, ray.ray_cpus, lambda: stop.asked)
            for task, result in finished:
                if "error" in result:
                    manifest.fail(task, result["error"])
                    failures[task.name] = result["error"]
                else:
                    with stop.saving():
                        save_image(result["image"], outdir / task.name, result["metadata"])
                    item = _item(task, result)
                    manifest.record(task, {k: item[k] for k in ("node", "host", "seconds")})
                    items.append(item)
                bar.update("error" not in result)
                if time.perf_counter() - last_save > SAVE_EVERY:
                    manifest.save()
                    last_save = time.perf_counter()
    finally:
        bar.close()
        manifest.save()
        ray_batch.shutdown()
    seconds = time.perf_counter() - started
    pace = len(items) / seconds * 60
    if metrics_path:
        data = {
            "images": len(items),
            "skipped": skipped,
            "failed": failures,
            "seconds": round(seconds, 3),
            "images_per_min": round(pace, 3),
            "items": items,
        }
        write_metrics(metrics_path, data, f"the {len(items)} images in {outdir} are written")
    if stop.asked:
        print(
            f"painterly: stopped with {len(items)} of {len(todo)} images made; run the "
            "same command again to make the rest",
            file=sys.stderr,
        )
        return stop.exit_code or EXIT_INTERRUPTED
    if not args.quiet or failures:
        print(
            f"painterly: wrote {len(items)} images to {outdir} ({seconds:.1f} s, "
            f"{pace:.3g} images/min); {skipped} done before, {len(failures)} failed",
            file=sys.stderr,
        )
    for name, error in failures.items():
        print(f"painterly: failed: {name}: {error}", file=sys.stderr)
    return EXIT_ERROR if failures else EXIT_OK


def _item(task, result: dict) -> dict:
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
