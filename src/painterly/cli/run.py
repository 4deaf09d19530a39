"""``painterly stylize`` and ``painterly batch``: thin shells around painterly.run and
painterly.run_batch, with progress bars, snapshots, metrics and the signal policy."""

from __future__ import annotations

import argparse
import glob
import os
import re
import time
from pathlib import Path

from painterly.cli.common import (
    claim_output,
    closing_line,
    distinct_outputs,
    given_options,
    given_settings,
    input_files,
    metrics_path_of,
    output_folder,
    parse_style,
    stoppable,
    write_metrics,
)
from painterly.config import BatchConfig, StylizeConfig
from painterly.errors import OptionsError, PainterlyError


def _step_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:05d}{output.suffix}")


def _is_step_path(output: Path, path: Path) -> bool:
    """Whether ``path`` is the name of one of ``output``'s --save-every snapshots."""
    folder = os.path.realpath(output.parent)
    name = re.escape(output.stem) + r"_step\d{5,}" + re.escape(output.suffix)
    return os.path.realpath(path.parent) == folder and re.fullmatch(name, path.name) is not None


def _stylize_outputs(
    args: argparse.Namespace, inputs: list[str], save_every: int
) -> tuple[Path, Path | None]:
    """The image, the metrics file and the --save-every snapshots ``stylize`` will
    write, claimed and checked before anything slow."""
    from painterly.image import check_output_path

    output = claim_output(check_output_path(args.output), inputs, args.overwrite)
    metrics_path = metrics_path_of(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    distinct_outputs([output, metrics_path] if metrics_path else [output])
    if save_every:  # another run's snapshots would be mixed with this one's
        pattern = f"{glob.escape(output.stem)}_step*{glob.escape(output.suffix)}"
        for earlier in sorted(output.parent.glob(pattern)):
            if not earlier.is_dir():  # a folder there costs its snapshot, with a warning
                claim_output(earlier, inputs, args.overwrite)
        if metrics_path and _is_step_path(output, metrics_path):
            raise OptionsError(f"{metrics_path} is where a --save-every snapshot goes")
    return output, metrics_path


def cmd_stylize(args: argparse.Namespace) -> int:
    from painterly.api import run
    from painterly.events import Notice
    from painterly.image import save_image
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = given_options(args)
    save_every = StylizeConfig(**given_settings(args, StylizeConfig)).save_every
    output, metrics_path = _stylize_outputs(args, input_files(args, given), save_every)
    printer = ProgressPrinter(quiet=args.quiet)
    failed_snapshots: list[int] = []

    def on_event(event) -> None:
        printer(event)
        if getattr(event, "image", None) is None or failed_snapshots:
            return
        step_path = _step_path(output, event.step)
        try:
            save_image(event.image, step_path, {"painterly:step": str(event.step)})
        except PainterlyError as err:  # a snapshot is a by-product: the run goes on
            failed_snapshots.append(event.step)
            printer(Notice(f"{err}; no more snapshots this run"))

    styles = [parse_style(s) for s in args.styles]
    with StopSignals(printer.say) as stop:
        try:
            result = run(
                args.content,
                styles,
                callback=stoppable(on_event, stop),
                preview_every=save_every,
                **given,
            )
        finally:
            printer.close()
        with stop.saving():
            save_image(result.image, output, result.metadata)
            if metrics_path:
                write_metrics(metrics_path, result.metrics, f"the image {output} is written")
    m = result.metrics
    return closing_line(
        stop,
        result.interrupted,
        f"interrupted after {m['steps']} steps; saved the latest image to {output}",
        f"wrote {output} ({m['seconds']:.1f} s, {m['ms_per_step']:.0f} ms/step)",
        args.quiet,
    )


def _batch_outputs(args: argparse.Namespace, inputs: list[str]):
    """The folder, the (photo, style) items, the image each writes and the metrics file
    of a local ``batch``, claimed and checked before anything slow."""
    from painterly.batch import output_name
    from painterly.image import check_output_path

    metrics_path = metrics_path_of(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    outdir = output_folder(args.output_dir)
    styles = [[parse_style(s) for s in specs] for specs in args.styles]
    items, outputs = [], []
    for content in args.contents:
        for specs in styles:
            name = output_name(content, specs, args.format)
            output = claim_output(check_output_path(outdir / name), inputs, args.overwrite)
            if output in outputs:
                raise OptionsError(
                    f"two items would both write {output}; give the inputs different file names"
                )
            items.append((content, specs))
            outputs.append(output)
    distinct_outputs([*outputs, metrics_path] if metrics_path else outputs)
    return outdir, items, outputs, metrics_path


def cmd_batch(args: argparse.Namespace) -> int:
    if args.ray is not None:  # each output a task on a Ray cluster
        from painterly.cli.cluster import cmd_batch_ray

        return cmd_batch_ray(args)
    from painterly.batch import run_batch
    from painterly.image import save_image
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = given_options(args)
    batching = BatchConfig(**given_settings(args, BatchConfig))
    outdir, items, outputs, metrics_path = _batch_outputs(args, input_files(args, given))
    printer = ProgressPrinter(quiet=args.quiet)
    start = time.perf_counter()
    with StopSignals(printer.say) as stop:
        try:
            results = run_batch(
                items, callback=stoppable(printer, stop), max_batch=batching.batch_size, **given
            )
        finally:
            printer.close()
        with stop.saving():
            seconds = time.perf_counter() - start
            done = [(i, out, r) for i, out, r in zip(items, outputs, results, strict=True) if r]
            for _, output, result in done:
                save_image(result.image, output, result.metadata)
    if metrics_path:
        write_metrics(
            metrics_path,
            {
                "images": len(done),
                "seconds": round(seconds, 3),
                "images_per_s": round(len(done) / seconds, 4),
                "items": [
                    {"content": c, "style": s, "output": str(o), **r.metrics}
                    for (c, s), o, r in done
                ],
            },
            f"the {len(done)} images in {outdir} are written",
        )
    plural = "s" * (len(done) != 1)
    return closing_line(
        stop,
        any(r.interrupted for _, _, r in done),
        f"interrupted; saved {len(done)} of {len(items)} images to {outdir}",
        f"wrote {len(done)} image{plural} to {outdir} "
        f"({seconds:.1f} s, {len(done) / seconds:.3g} images/s)",
        args.quiet,
    )
