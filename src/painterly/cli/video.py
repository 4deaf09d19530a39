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

from painterly.cli.cluster import add_ray_flags
from painterly.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    OVERWRITE_HELP,
    add_option_flags,
    check_writable,
    claim_output,
    flag_type,
    given_options,
    input_files,
    metrics_path_of,
    parse_style,
    require_extra,
    stoppable,
    write_metrics,
)
from painterly.errors import OptionsError
from painterly.video import BLEND, FIRST_STEPS, LATER_STEPS, TEMPORAL_WEIGHT

VIDEO_MODULES = ("av", "cv2")  # what pip install "painterly[video]" adds


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
    return value


def _steps(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text} steps: give 1 to 100000")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1e7:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text} is not a time in seconds (0 or more)")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text} is not a frame rate between 0 and 1000")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:  # also refuses NaN; 1 would never let the model's output in
        raise argparse.ArgumentTypeError(f"{text} is not a share from 0 to below 1")
    return value


def _offsets(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a list of frame offsets") from None
    if any(not 2 <= v <= 100 for v in values):
        raise argparse.ArgumentTypeError("long-term offsets are frames back, from 2 to 100")
    return values


def add_video_parser(sub) -> None:
    vid = sub.add_parser(
        "video",
        help="paint a clip frame by frame without flicker (needs the video extra)",
        conflict_handler="resolve",  # --steps below replaces the stylize flag
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
    vid.add_argument("--start", type=_seconds, default=0.0, help="skip to this time, in s")
    vid.add_argument("--duration", type=_seconds, default=0.0, help="seconds to take (0: all)")
    vid.add_argument("--max-frames", type=_count, default=0, help="at most N frames (0: all)")
    vid.add_argument(
        "--fps", type=_positive, default=24.0, help="frame rate of a folder of frames (24)"
    )
    vid.add_argument(
        "--first-steps",
        type=_steps,
        default=FIRST_STEPS,
        help=f"steps of the first frame, coarse to fine (default: {FIRST_STEPS})",
    )
    vid.add_argument(
        "--temporal-weight",
        type=flag_type("content_weight", "--temporal-weight"),  # a loss weight like the rest
        default=TEMPORAL_WEIGHT,
        help="weight of the temporal loss; 0: each frame on its own, which flickers "
        f"(default: {TEMPORAL_WEIGHT:g})",
    )
    vid.add_argument(
        "--long-term",
        type=_offsets,
        default=(),
        metavar="J,K",
        help="also hold each frame to the outputs J, K.. frames back (e.g. 4,8)",
    )
    vid.add_argument(
        "--model",
        help="a trained fast model (painterly train, a file or a name in painterly models): "
        "each frame painted in one pass and steadied by the flow, instead of optimised",
    )
    vid.add_argument(
        "--blend",
        type=_fraction,
        default=None,
        help="with --model: the share of each reliable pixel taken from the previous output "
        f"warped (0: each frame on its own, which flickers; default: {BLEND})",
    )
    add_option_flags(vid)
    vid.add_argument(  # replaces the stylize flag: here it counts each later frame's steps
        "--steps",
        type=flag_type("steps"),
        default=argparse.SUPPRESS,
        help=f"steps of each frame after the first, at the output size (default: {LATER_STEPS})",
    )
    vid.add_argument("--metrics", metavar="FILE.json", help="write per-frame losses as JSON")
    vid.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_flags(vid, video=True)  # --ray: chunks of frames on a Ray cluster


class VideoProgress:
    """Optimising: a bar for the current frame's steps and a line per finished frame with
    the time the whole clip still needs, from the pace of the steps made so far. With a
    fast model (``later_steps`` 0): one bar over the frames."""

    def __init__(self, quiet: bool, later_steps: int):
        from painterly.progress import ProgressPrinter

        self.printer = ProgressPrinter(quiet=quiet, unit="frame" if not later_steps else "step")
        self.quiet, self.later_steps = quiet, later_steps
        self.frame, self.seconds, self.steps = "", 0.0, 0

    def __call__(self, event) -> None:
        from painterly.events import Progress, Started
        from painterly.video.run import FrameDone, FrameStarted

        if not self.later_steps:
            if isinstance(event, FrameDone) and not self.quiet:
                if self.printer.bar is None:
                    self.printer.open_bar(event.count, "frames", initial=event.index - 1)
                self.printer.bar.update(event.index - self.printer.bar.n)
            return
        if isinstance(event, FrameStarted):
            self.frame = f"frame {event.index}/{event.count}"
        elif isinstance(event, FrameDone):
            self.printer.close()
            self.seconds += event.seconds
            left = event.count - event.index
            if not self.quiet:
                pace = self.seconds / max(self.steps, 1)
                self.printer.say(
                    f"frame {event.index} of {event.count} done in {event.seconds:.1f} s; "
                    f"about {_duration(pace * left * self.later_steps)} left"
                )
        elif isinstance(event, Started):
            self.printer(event)
            if self.printer.bar is not None:
                scale = f" scale {event.scale}/{event.scales}" if event.scales > 1 else ""
                self.printer.bar.set_description_str(f"{self.frame}{scale}", refresh=False)
            return
        elif isinstance(event, Progress) and event.step == event.total_steps:
            self.steps += event.total_steps
        if not isinstance(event, FrameStarted | FrameDone):
            self.printer(event)

    def say(self, text: str) -> None:
        self.printer.say(text)

    def close(self) -> None:
        self.printer.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# What a fast model's one pass can take; the rest of the stylize options are for optimising.
MODEL_OPTIONS = {"size", "height", "preserve_color", "device", "max_memory"}


@dataclass
class VideoJob:
    """What ``painterly video`` was asked, checked: the files it reads, where it writes,
    and the clip (its frames not yet decoded)."""

    inputs: list[str]
    output: Path
    is_video: bool  # a video file, else a folder of PNG frames
    metrics_path: Path | None
    clip: object  # painterly.video.io.Clip


def check_video_job(args: argparse.Namespace, given: dict, model: Path | None) -> VideoJob:
    """The checks every ``painterly video`` run makes before anything slow: paintings or
    a model, the output (nothing overwritten without --overwrite), the metrics file, and
    the clip's range and codecs."""
    from painterly.video import io

    if model is not None:
        if args.styles:
            raise OptionsError("a --model carries its own style; give no paintings with it")
        refused = sorted(set(given) - MODEL_OPTIONS)
        if refused:
            flag = "--" + refused[0].replace("_", "-")
            raise OptionsError(f"{flag} is for optimising; it does not apply with --model")
        inputs = [args.input, str(model)]
    else:
        if not args.styles:
            raise OptionsError("give at least one painting, or --model MODEL")
        if args.blend is not None:
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
        start=args.start,
        duration=args.duration,
        max_frames=args.max_frames,
        fps=args.fps,
    )
    if is_video:
        io.check_encoder()
    return VideoJob(inputs, output, is_video, metrics_path, clip)


def cmd_video(args: argparse.Namespace) -> int:
    if args.ray is not None:  # chunks of frames as tasks on a Ray cluster
        if args.model:
            raise OptionsError("--model paints a frame in milliseconds; run it without --ray")
        from painterly.cli.cluster import cmd_video_ray

        return cmd_video_ray(args)
    require_extra("video", "video", VIDEO_MODULES)
    from painterly.signals import StopSignals
    from painterly.video.run import FrameStore

    given = given_options(args)
    model = None
    if args.model:
        from painterly.cli.fast import _model_path

        model = _model_path(args.model)
    job = check_video_job(args, given, model)
    output, clip = job.output, job.clip
    store = FrameStore.beside(output)
    progress = VideoProgress(args.quiet, 0 if args.model else given.get("steps", LATER_STEPS))
    started = time.perf_counter()
    with StopSignals(progress.say) as stop:
        try:
            if args.model:
                result = _paint_with_model(args, model, clip, store, given, progress, stop)
            else:
                result = _optimise(args, clip, store, given, stoppable(progress, stop))
        finally:
            progress.close()
        if result.interrupted or stop.asked:
            print(
                f"painterly: stopped with {len(result.frames)} of {result.count} frames "
                f"done, kept in {store.folder}; run the same command with --resume to go on",
                file=sys.stderr,
            )
            return stop.exit_code or EXIT_INTERRUPTED
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


def _optimise(args, clip, store, given, callback):
    from painterly.video.run import stylize_clip

    return stylize_clip(
        clip,
        [parse_style(s) for s in args.styles],
        store,
        overrides=given,
        first_steps=args.first_steps,
        temporal_weight=args.temporal_weight,
        long_term=args.long_term,
        resume=args.resume,
        overwrite=args.overwrite,
        callback=callback,
    )


def _paint_with_model(args, model, clip, store, given, progress, stop):
    from painterly.api import resolve_device
    from painterly.video.fast_model import paint_clip

    return paint_clip(
        clip,
        model,
        store,
        size=given.get("size"),
        height=given.get("height"),
        blend=BLEND if args.blend is None else args.blend,
        preserve_color=given.get("preserve_color", "none"),
        device=resolve_device(given.get("device", "auto")),
        max_memory=given.get("max_memory", "auto"),
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
    if folder.is_dir() and any(folder.glob("frame_*.png")) and not overwrite:
        raise OptionsError(f"{folder} already holds frames; pass --overwrite to replace them")
    check_writable(folder / "frame_000001.png" if folder.is_dir() else folder)


def _write_folder(folder: Path, frames: list[Path]) -> None:
    from painterly import files

    folder.mkdir(exist_ok=True)
    for index, frame in enumerate(frames, 1):
        files.write_bytes(folder / f"frame_{index:06d}.png", frame.read_bytes())
    for stale in folder.glob("frame_*.png"):  # a longer clip's frames from before
        number = stale.stem.removeprefix("frame_")
        if number.isdigit() and int(number) > len(frames):
            os.unlink(stale)
