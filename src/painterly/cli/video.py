"""``painterly video``: a thin shell around painterly.video.run, with progress, the
signal policy, resuming and the atomic write of the result. PyAV, OpenCV and torch are
imported only when the command runs."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from painterly.cli.cluster import add_ray_flags
from painterly.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OVERWRITE_HELP,
    add_option_flags,
    add_settings_flags,
    check_writable,
    claim_output,
    given_options,
    given_settings,
    input_files,
    metrics_path_of,
    parse_style,
    require_extra,
    stoppable,
    write_metrics,
)
from painterly.config import ONE_PHOTO
from painterly.errors import OptionsError
from painterly.fast.config import MODEL_OPTIONS
from painterly.runstate import frame_name, frame_number
from painterly.video import LATER_STEPS, VideoConfig

if TYPE_CHECKING:
    from painterly.video.io import Clip

VIDEO_MODULES = ("av", "cv2")  # what pip install "painterly[video]" adds


def add_video_parser(sub) -> None:
    vid = sub.add_parser(
        "video",
        help="paint a clip frame by frame without flicker (needs the video extra)",
        description="Stylise every frame of INPUT (a video file or a folder of frames) "
        "with optical-flow temporal consistency (Ruder et al. 2016) and write OUTPUT: a "
        ".mp4/.mov/.mkv file (H.264, the audio copied) or, without a suffix, a folder of "
        "PNG frames. Finished frames are kept in OUTPUT.frames/ until the end, so a "
        "stopped run continues with --resume.",
    )
    vid.add_argument("input", help="video file, or a folder of frames (sorted by name)")
    vid.add_argument(
        "styles", nargs="*", help="painting(s); PATH:WEIGHT blends several (none with --model)"
    )
    vid.add_argument("-o", "--output", required=True, help="OUT.mp4 (.mov .mkv) or a folder")
    vid.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    vid.add_argument(
        "--resume", action="store_true", help="continue a stopped run from OUTPUT.frames/"
    )
    vid.add_argument(
        "--keep-frames", action="store_true", help="keep OUTPUT.frames/ after writing OUTPUT"
    )
    vid.add_argument(
        "--model",
        help="a trained fast model (painterly train, a file or a name in painterly models): "
        "each frame painted in one pass and steadied by the flow, instead of optimised",
    )
    add_settings_flags(vid, VideoConfig)
    add_option_flags(
        vid,
        skip=ONE_PHOTO,
        defaults={"steps": f"{LATER_STEPS}"},
        helps={"steps": "steps of each frame after the first, at the output size"},
    )
    vid.add_argument("--metrics", metavar="FILE.json", help="write per-frame losses as JSON")
    vid.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_flags(vid, video=True)  # --ray: chunks of frames on a Ray cluster


class VideoProgress:
    """Optimising: the job's bar over the whole clip (its label says which frame and
    scale, its tail the time left from measured step costs) and a line per finished
    frame. With a fast model (``optimising`` False): one bar over the frames."""

    def __init__(self, quiet: bool, optimising: bool):
        from painterly.progress import ProgressPrinter

        self.printer = ProgressPrinter(quiet=quiet, unit="step" if optimising else "frame")
        self.quiet, self.optimising = quiet, optimising
        self.left: float | None = None  # the clip's, as of the latest step

    def __call__(self, event) -> None:
        from painterly.events import Progress
        from painterly.progress import duration
        from painterly.video.run import FrameDone, FrameStarted

        if not self.optimising:
            if isinstance(event, FrameDone) and not self.quiet:
                if self.printer.bar is None:
                    self.printer.open_bar(event.count, "frames", initial=event.index - 1)
                    assert self.printer.bar is not None  # open_bar opened it
                self.printer.bar.update(event.index - self.printer.bar.n)
            return
        if isinstance(event, FrameDone):
            if not self.quiet:
                left = (
                    f"; about {duration(self.left)} left"
                    if event.index < event.count and self.left is not None
                    else ""
                )
                self.printer.say(
                    f"frame {event.index} of {event.count} done in {event.seconds:.1f} s{left}"
                )
            return
        if isinstance(event, Progress):
            self.left = event.run_left
        if not isinstance(event, FrameStarted):
            self.printer(event)

    def say(self, text: str) -> None:
        self.printer.say(text)

    def close(self) -> None:
        self.printer.close()


@dataclass
class VideoJob:
    """What ``painterly video`` was asked, checked: the files it reads, where it writes,
    and the clip (its frames not yet decoded)."""

    inputs: list[str]
    output: Path
    is_video: bool  # a video file, else a folder of PNG frames
    metrics_path: Path | None
    clip: Clip
    video: VideoConfig


def check_video_job(args: argparse.Namespace, given: dict, model: Path | None) -> VideoJob:
    """The checks every ``painterly video`` run makes before anything slow: paintings or
    a model, the output (nothing overwritten without --overwrite), the metrics file, and
    the clip's range and codecs."""
    from painterly.video import io

    video = VideoConfig(**given_settings(args, VideoConfig))
    if model is not None:
        if args.styles:
            raise OptionsError("a --model carries its own style; give no paintings with it")
        refused = sorted(set(given) - set(MODEL_OPTIONS))
        if refused:
            flag = "--" + refused[0].replace("_", "-")
            raise OptionsError(f"{flag} is for optimising; it does not apply with --model")
        inputs = [args.input, str(model)]
    else:
        if not args.styles:
            raise OptionsError("give at least one painting, or --model MODEL")
        if hasattr(args, "blend"):
            raise OptionsError("--blend is for --model; optimisation uses --temporal-weight")
        inputs = input_files(argparse.Namespace(content=args.input, styles=args.styles), given)
    output = Path(args.output)
    is_video = output.suffix.lower() in io.VIDEO_SUFFIXES
    if output.suffix and not is_video:
        known = ", ".join(sorted(io.VIDEO_SUFFIXES))
        raise OptionsError(f"{output}: use a video suffix ({known}) or a folder name (none)")
    if is_video:
        claim_output(output, inputs, args.overwrite)
    else:
        _claim_folder(output, args.input, args.overwrite)
    metrics_path = metrics_path_of(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    clip = io.open_clip(
        args.input,
        start=video.start,
        duration=video.duration,
        max_frames=video.max_frames,
        fps=video.fps,
    )
    if is_video:
        io.check_encoder()
    return VideoJob(inputs, output, is_video, metrics_path, clip, video)


def cmd_video(args: argparse.Namespace) -> int:
    if args.ray is not None:  # chunks of frames as tasks on a Ray cluster
        if args.model:
            raise OptionsError("--model paints a frame in milliseconds; run it without --ray")
        return _video_on_ray(args)
    require_extra("video", "video", VIDEO_MODULES)
    from painterly.signals import StopSignals
    from painterly.video.run import FrameStore

    given = given_options(args)
    model = None
    if args.model:
        from painterly.cli.fast import _model_path

        model = _model_path(args.model)
    job = check_video_job(args, given, model)
    if model is not None:
        from painterly.cli.fast import warn_if_under_trained

        warn_if_under_trained(model)
    output = job.output
    store = FrameStore.beside(output)
    progress = VideoProgress(args.quiet, optimising=not args.model)
    started = time.perf_counter()
    with StopSignals(progress.say) as stop:
        try:
            if args.model:
                result = _paint_with_model(args, job, model, store, given, progress, stop)
            else:
                result = _optimise(args, job, store, given, stoppable(progress, stop))
        finally:
            progress.close()
        if result.interrupted or stop.asked:
            made = f"{len(result.frames)} of {result.count} frames done"
            return _kept(made, store.folder, stop, interrupted=True)
        with stop.saving():
            write_result(job, result.frames, progress.say)
    seconds = time.perf_counter() - started
    return wind_up(
        args,
        job,
        store.folder,
        {"frames": result.count, "seconds": round(seconds, 3), "each": result.records},
        f"{result.count} frames, {seconds:.1f} s, {result.count / seconds:.3g} frames/s",
    )


def _video_on_ray(args: argparse.Namespace) -> int:
    """``painterly video --ray``: the clip in chunks, each a task (painterly.cluster)."""
    from painterly.cli.cluster import RAY_MODULES, cluster_config

    require_extra("video", "video", VIDEO_MODULES)
    require_extra("video --ray", "ray", RAY_MODULES)
    from painterly.cluster import ray_video
    from painterly.progress import CountBar, ProgressPrinter
    from painterly.signals import StopSignals

    cluster, given = cluster_config(args), given_options(args)
    job = check_video_job(args, given, None)
    printer = ProgressPrinter(quiet=args.quiet)
    bars = []  # the bar of the frames still to make, once the store knows them
    started = time.perf_counter()
    try:
        with StopSignals(printer.say) as stop:
            run = ray_video.stylize_clip(
                job.clip,
                [parse_style(s) for s in args.styles],
                Path(f"{job.output}.frames"),
                overrides=given,
                video=job.video,
                cluster=cluster,
                address=args.ray,
                resume=args.resume,
                overwrite=args.overwrite,
                should_stop=lambda: stop.asked,
                on_plan=lambda n: bars.extend([CountBar(n, args.quiet, unit="frame", desc="ray")]),
                on_chunk=lambda chunk, ok: bars[0].update(ok, chunk.count),
                saving=stop.saving,
            )
    finally:
        for bar in bars:
            bar.close()
    if len(run.frames) < run.count:
        for index, error in sorted(run.failures.items()):
            print(f"painterly: failed: chunk {index}: {error}", file=sys.stderr)
        return _kept(f"{len(run.records)} chunks made", run.folder, stop, run.interrupted)
    write_result(job, run.frames, printer.say)
    seconds = time.perf_counter() - started
    return wind_up(
        args,
        job,
        run.folder,
        {"frames": run.count, "seconds": round(seconds, 3), "chunks": run.records},
        f"{run.count} frames in {run.chunks} chunks, {seconds:.1f} s",
    )


def _kept(made: str, folder: Path, stop, interrupted: bool) -> int:
    """A run that stopped short: where its work is kept, and its exit code."""
    print(
        f"painterly: stopped with {made}, kept in {folder}; run the same command with "
        "--resume to go on",
        file=sys.stderr,
    )
    return (stop.exit_code or EXIT_INTERRUPTED) if interrupted else EXIT_ERROR


def write_result(job: VideoJob, frames: list[Path], say) -> None:
    """The finished frames as the video file or the folder of frames asked for."""
    from painterly.video import io

    if job.is_video:
        io.write_video(job.output, frames, job.clip.rate, job.clip, say)
    else:
        _write_folder(job.output, frames)


def wind_up(args, job: VideoJob, frames_folder: Path, metrics: dict, summary: str) -> int:
    """After the output is written: the metrics, the kept frames removed (unless
    --keep-frames), the closing line."""
    if job.metrics_path:
        write_metrics(job.metrics_path, metrics, f"{job.output} is written")
    if not args.keep_frames:
        shutil.rmtree(frames_folder, ignore_errors=True)
    if not args.quiet:
        print(f"painterly: wrote {job.output} ({summary})", file=sys.stderr)
    return EXIT_OK


def _optimise(args, job: VideoJob, store, given, callback):
    from painterly.video.run import stylize_clip

    return stylize_clip(
        job.clip,
        [parse_style(s) for s in args.styles],
        store,
        overrides=given,
        first_steps=job.video.first_steps,
        temporal_weight=job.video.temporal_weight,
        long_term=job.video.long_term,
        resume=args.resume,
        overwrite=args.overwrite,
        callback=callback,
    )


def _paint_with_model(args, job: VideoJob, model, store, given, progress, stop):
    from painterly.api import resolve_device
    from painterly.video.fast_model import paint_clip

    return paint_clip(
        job.clip,
        model,
        store,
        blend=job.video.blend,
        **{**given, "device": resolve_device(given.get("device", "auto"))},
        resume=args.resume,
        overwrite=args.overwrite,
        callback=progress,
        should_stop=lambda: stop.asked,
    )


def _claim_folder(folder: Path, clip: str, overwrite: bool) -> None:
    """A folder output: new, or one whose frame files may be replaced (--overwrite);
    never the folder of frames the clip is read from."""
    from painterly import files

    files.claims.claim(folder)
    if os.path.isdir(clip) and folder.is_dir() and os.path.samefile(clip, folder):
        raise OptionsError(f"{folder} holds the input frames; write the result elsewhere")
    if folder.exists() and not folder.is_dir():
        raise OptionsError(f"{folder} is a file; give a folder name or a .mp4 output")
    if folder.is_dir() and any(frame_number(p) is not None for p in folder.iterdir()):
        if not overwrite:
            raise OptionsError(f"{folder} already holds frames; pass --overwrite to replace them")
    check_writable(folder / frame_name(0) if folder.is_dir() else folder)


def _write_folder(folder: Path, frames: list[Path]) -> None:
    from painterly import files

    folder.mkdir(exist_ok=True)
    for index, frame in enumerate(frames):
        files.write_bytes(folder / frame_name(index), frame.read_bytes())
    for stale in folder.iterdir():  # a longer clip's frames from before
        number = frame_number(stale)
        if number is not None and number >= len(frames):
            os.unlink(stale)
