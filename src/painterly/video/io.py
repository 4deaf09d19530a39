"""Reading and writing clips with PyAV: a video file or a folder of frames in, a video
file (H.264 in yuv420p, even sides, the audio copied through) or a folder of PNGs out.

Every way an input can be wrong (not a video, no video stream, a codec this FFmpeg cannot
decode, no frames in the range asked for, a variable frame rate, frames of different
sizes) is one :class:`VideoError` line, raised by :func:`open_clip` before anything is
written. Frames come out upright (a phone's rotation is applied to the pixels) and with
square pixels (an anamorphic video's sample aspect ratio is applied to the width).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np
from PIL import Image

from painterly import files
from painterly.errors import PainterlyError
from painterly.files import images_in
from painterly.image import MIN_SIDE, fit_size, load_image, resize

# Output containers by suffix; all of them take H.264 and AAC.
VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
VIDEO_CODEC: Final = "libx264"  # Final: its literal type picks add_stream's video overload


class VideoError(PainterlyError):
    """An input clip cannot be used, or an output video cannot be written."""


@dataclass
class Clip:
    """What :func:`open_clip` found: a video file's frames in the range asked for, or
    a folder's frames."""

    path: Path
    size: tuple[int, int]  # (w, h) upright, in square pixels
    rate: Fraction  # frames per second
    count: int  # frames in the range
    start: float = 0.0  # seconds: the first frame's time in the file
    frames: list[Path] = field(default_factory=list)  # a folder's frame files, in order
    audio: str | None = None  # the audio codec's name, when there is an audio stream

    @property
    def is_folder(self) -> bool:
        return bool(self.frames)


def output_size(clip: Clip, side: int | None, height: int | None) -> tuple[int, int]:
    """(w, h) of the output for ``--size``/``--height`` (neither: the clip's own), each
    side even, as H.264 in yuv420p needs."""
    w, h = fit_size(*clip.size, long_side=side, height_px=height) if side or height else clip.size
    w, h = w - w % 2, h - h % 2
    if min(w, h) < MIN_SIDE:
        raise VideoError(
            f"an output of {w}x{h} px is too small; painterly needs at least {MIN_SIDE} px "
            "on each side, so raise --size"
        )
    return w, h


def open_clip(
    path: str | os.PathLike,
    *,
    start: float = 0.0,
    duration: float = 0.0,
    max_frames: int = 0,
    fps: float = 24.0,
) -> Clip:
    """Check the input and count its frames in the range (``duration`` and ``max_frames``
    0: no limit). A folder's frames play at ``fps``; a video keeps its own rate."""
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path} does not exist; check the path")
    if path.is_dir():
        return _open_folder(path, start, duration, max_frames, fps)
    times, first, rate, audio = [], None, None, None
    for time, frame, stream, container in _decoded(path, start, duration, max_frames):
        if first is None:
            first, rate = frame, stream.average_rate or stream.guessed_rate
            sar = stream.sample_aspect_ratio
            audio = next((a.codec_context.name for a in container.streams.audio), None)
        times.append(time)
    if first is None:
        where = f" from {start:g} s on" if start else ""
        raise VideoError(f"{path} has no video frames{where}; check the file or --start")
    rate = _constant_rate(path, times, rate)
    w, h = first.width, first.height
    if sar and sar > 0 and sar != 1:
        w = round(w * sar)
    if quarter_turns(first.rotation) % 2:
        w, h = h, w
    return Clip(path, (w, h), rate, len(times), times[0], audio=audio)


def _constant_rate(path: Path, times: list[float], rate: Fraction | None) -> Fraction:
    """The clip's frame rate, after checking the frames come at a steady pace: the
    temporal terms and the output's timing assume one rate."""
    gaps = np.diff(np.asarray(times, dtype=np.float64))
    if len(gaps) == 0:
        return Fraction(rate) if rate else Fraction(24)
    typical = float(np.median(gaps))
    if typical <= 0 or np.abs(gaps - typical).max() > 0.25 * typical + 1e-3:
        raise VideoError(
            f"{path} has a variable frame rate (frames {1000 * gaps.min():.0f} to "
            f"{1000 * gaps.max():.0f} ms apart); convert it to a constant rate first, "
            "e.g. ffmpeg -i IN -vf fps=24 OUT.mp4"
        )
    measured = Fraction(1 / typical).limit_denominator(1001)
    if rate and abs(float(rate) * typical - 1) < 0.01:
        return Fraction(rate)
    return measured


def _open_folder(path: Path, start: float, duration: float, max_frames: int, fps: float) -> Clip:
    names = images_in(path)
    if not names:
        raise VideoError(f"{path} has no frames; put .png or .jpg files in it (sorted by name)")
    first = int(round(start * fps))
    end = len(names) if not duration else first + int(round(duration * fps))
    names = names[first:end][: max_frames or None]
    if not names:
        raise VideoError(f"{path} has no frames from {start:g} s on at {fps:g} fps")
    size = load_image(names[0]).size
    for name in names[1:]:  # headers only: a mismatch is found before any work
        try:
            with Image.open(name) as img:
                other = img.size
        except OSError:
            load_image(name)  # says what is wrong with it
            raise
        if other != size:
            raise VideoError(
                f"{name} is {other[0]}x{other[1]} px but {names[0].name} is "
                f"{size[0]}x{size[1]}; the frames of a clip must all have one size"
            )
    rate = Fraction(fps).limit_denominator(1001)
    return Clip(path, size, rate, len(names), start, frames=names)


def _decoded(path: Path, start: float, duration: float, max_frames: int) -> Iterator[tuple]:
    """(time, frame, stream, container) for each frame of the first video stream in the
    range, with every failure of PyAV turned into a VideoError."""
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoError(
            f"{path} is not a video this FFmpeg can read ({_reason(err)}); "
            "use an .mp4, .mov, .mkv or .webm file"
        ) from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream; give a video file")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise VideoError(
                f"{path}'s video codec cannot be decoded by PyAV's FFmpeg; "
                "convert it to H.264 first"
            )
        stream.thread_type = "AUTO"
        count, index, rate = 0, 0, float(stream.guessed_rate or 24)
        try:
            if start > 0:
                assert stream.time_base is not None  # a demuxed stream has one
                container.seek(int(start / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else index / rate
                index += 1
                if time < start - 1e-6:
                    continue
                if (duration and time >= start + duration - 1e-6) or (
                    max_frames and count >= max_frames
                ):
                    break
                count += 1
                yield time, frame, stream, container
        except av.error.FFmpegError as err:
            raise VideoError(
                f"{path} cannot be decoded after {count} frames ({_reason(err)}); "
                "the file may be damaged or in a codec this FFmpeg lacks"
            ) from None


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__


def quarter_turns(rotation: float) -> int:
    """A display rotation tag in degrees as counter-clockwise quarter turns (as np.rot90
    turns), 0 to 3. A tag between quarters (45) goes to the nearest one, the same for
    the frame's size and for its pixels."""
    return int(np.floor(rotation / 90 + 0.5)) % 4


def frames(clip: Clip, size: tuple[int, int]) -> Iterator[Image.Image]:
    """The clip's frames, upright, RGB, resized to ``size`` (w, h)."""
    if clip.is_folder:
        for name in clip.frames:
            yield resize(load_image(name), size)
        return
    for _, frame, _, _ in _decoded(clip.path, clip.start, 0.0, clip.count):
        rgb = frame.to_ndarray(format="rgb24")
        turns = quarter_turns(frame.rotation)
        img = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb)
        yield resize(img, size)


def write_video(
    path: Path,
    frame_files: Sequence[Path],
    rate: Fraction,
    audio_from: Clip | None = None,
    notice: Callable[[str], None] = lambda _: None,
) -> None:
    """Encode the frames (PNG files of one even size) as H.264, yuv420p, at ``rate``,
    with the audio of ``audio_from`` in the frames' time range copied packet by packet.
    The file appears whole or not at all (painterly.files)."""
    check_encoder()
    fmt = VIDEO_SUFFIXES[path.suffix.lower()]
    with Image.open(frame_files[0]) as img:
        width, height = img.size
    try:
        with files.atomic_writer(path) as f, av.open(f, "w", format=fmt) as out:
            stream = out.add_stream(VIDEO_CODEC, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "18"}  # visually lossless; the default 23 smears brushwork
            audio = _audio_streams(out, audio_from, path, notice)
            for index, name in enumerate(frame_files):
                with Image.open(name) as img:
                    frame = av.VideoFrame.from_image(img.convert("RGB"))
                frame.pts = index
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
            if audio and audio_from is not None:  # there is audio only with a clip to copy
                _copy_audio(out, *audio, audio_from, len(frame_files) / rate)
    except av.error.FFmpegError as err:
        raise VideoError(f"could not write {path} ({_reason(err)})") from None


def check_encoder() -> None:
    """Refuse early when PyAV's FFmpeg has no H.264 encoder (a build without GPL parts)."""
    if VIDEO_CODEC not in av.codecs_available:
        raise VideoError(
            f"this PyAV's FFmpeg has no {VIDEO_CODEC} encoder; install the PyPI wheel of av, "
            "or write PNG frames to a folder instead (an OUTPUT without a suffix)"
        )


def _audio_streams(
    out, clip: Clip | None, path: Path, notice
) -> tuple[av.container.InputContainer, av.AudioStream, av.AudioStream] | None:
    """(input container, input stream, output stream) for copying the audio, or None."""
    if clip is None or clip.is_folder or clip.audio is None:
        return None
    if clip.audio not in out.supported_codecs:
        notice(f"the audio ({clip.audio}) cannot go in a {path.suffix} file, so it is left out")
        return None
    source = av.open(str(clip.path))
    in_stream = source.streams.audio[0]
    return source, in_stream, out.add_stream_from_template(in_stream)


def _copy_audio(out, source, in_stream, out_stream, clip: Clip, seconds: Fraction) -> None:
    """Remux the audio packets from the clip's first frame for ``seconds``, unchanged,
    their timestamps moved so that the first frame's time is 0."""
    tb = in_stream.time_base
    shift = int(math.floor(clip.start / tb))
    end = clip.start + float(seconds)
    with source:
        if clip.start > 0:
            source.seek(int(clip.start / tb), stream=in_stream)
        for packet in source.demux(in_stream):
            if packet.dts is None or packet.pts is None:
                continue  # the demuxer's flush packet
            time = float(packet.pts * tb)
            if clip.start > 0 and time < clip.start - 1e-6:
                continue  # from the start on, an encoder's priming packet (pts < 0) too
            if time >= end:
                break
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = out_stream
            out.mux(packet)
