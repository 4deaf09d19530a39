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
from painterly.errors import OptionsError

RAY_MODULES = ("ray",)  # what pip install "painterly[ray]" adds


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
    if hasattr(args, "threads"):
        raise OptionsError("--threads does not apply with --ray: each task has --ray-cpus")
    return ClusterConfig(**given_settings(args, ClusterConfig))


def cmd_batch_ray(args: argparse.Namespace) -> int:
    """``painterly batch --ray``: each output a task (painterly.cluster)."""
    require_extra("batch --ray", "ray", RAY_MODULES)
    from painterly.cluster.plan import plan_batch
    from painterly.progress import CountBar, ProgressPrinter
    from painterly.signals import StopSignals

    if getattr(args, "batch_size", 0) not in (0, 1):
        raise OptionsError("--batch-size does not apply with --ray: each output is one task")
    cluster = cluster_config(args)
    given = given_options(args)
    inputs = input_files(args, given)
    metrics_path = metrics_path_of(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    styles = [[parse_style(s) for s in specs] for specs in args.styles]
    outdir = output_folder(args.output_dir)
    plan = plan_batch(args.contents, styles, outdir, given, args.format)
    for path in plan.foreign:
        claim_output(path, inputs, args.overwrite)
    printer = ProgressPrinter(quiet=args.quiet)
    skipped = len(plan.tasks) - len(plan.todo)
    if not plan.todo:
        if plan.manifest.adopted:
            plan.manifest.save()
        if not args.quiet:
            printer.say(
                f"all {len(plan.tasks)} outputs in {outdir} are done (see {plan.manifest.path})"
            )
        return EXIT_OK
    if skipped and not args.quiet:
        printer.say(
            f"{skipped} of {len(plan.tasks)} outputs are done already; making {len(plan.todo)}"
        )
    from painterly.cluster import ray_batch

    bars = []  # once the cluster answers
    try:
        with StopSignals(printer.say) as stop:
            run = ray_batch.run_batch(
                plan,
                overrides=given,
                cluster=cluster,
                address=args.ray,
                should_stop=lambda: stop.asked,
                on_start=lambda: bars.append(CountBar(len(plan.todo), args.quiet, desc="ray")),
                on_item=lambda task, ok: bars[0].update(ok),
                saving=stop.saving,
            )
    finally:
        for bar in bars:
            bar.close()
    return _batch_ray_summary(args, run, outdir, skipped, len(plan.todo), metrics_path, stop)


def _batch_ray_summary(args, run, outdir, skipped: int, todo: int, metrics_path, stop) -> int:
    """The metrics file, the closing lines and the exit code of ``batch --ray``."""
    pace = len(run.items) / run.seconds * 60
    if metrics_path:
        data = {
            "images": len(run.items),
            "skipped": skipped,
            "failed": run.failures,
            "seconds": round(run.seconds, 3),
            "images_per_min": round(pace, 3),
            "items": run.items,
        }
        write_metrics(metrics_path, data, f"the {len(run.items)} images in {outdir} are written")
    if run.stopped:
        print(
            f"painterly: stopped with {len(run.items)} of {todo} images made; run the "
            "same command again to make the rest",
            file=sys.stderr,
        )
        return stop.exit_code or EXIT_INTERRUPTED
    if not args.quiet or run.failures:
        print(
            f"painterly: wrote {len(run.items)} images to {outdir} ({run.seconds:.1f} s, "
            f"{pace:.3g} images/min); {skipped} done before, {len(run.failures)} failed",
            file=sys.stderr,
        )
    for name, error in run.failures.items():
        print(f"painterly: failed: {name}: {error}", file=sys.stderr)
    return EXIT_ERROR if run.failures else EXIT_OK
