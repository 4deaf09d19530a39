"""painterly video: flow and masks on clips whose motion is known, the temporal loss, the
core's extra-loss hook, the command end to end (audio kept, folders, resume after
SIGKILL) and one-line errors for bad input. Clips are made here: a camera panning over
a photo with a red square moving across it faster than the camera (so there are
occlusions), at 64x48 and a few steps per frame."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runcli import run_cli
from synthetic import tiny_encoder

from painterly.config import preset
from painterly.optimize import Objective, optimize
from painterly.pipeline import Job, optimize_scales

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from painterly.video import flow, io, temporal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "content" / "tubingen_neckarfront.jpg"
FAST = ["--weights", "offline", "--size", "64", "--first-steps", "6", "--steps", "3", "--quiet"]
PAN = 2  # camera: px per frame to the right
SQUARE = 5  # the object: px per frame to the right


def pan_frames(n: int = 6, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """The camera pans right over the photo by PAN px a frame; a red square crosses it by
    SQUARE px a frame, hiding and showing the background."""
    w, h = size
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((w + PAN * n + 8, h + 8)))
    out = []
    for i in range(n):
        frame = photo[4 : 4 + h, 4 + PAN * i : 4 + PAN * i + w].copy()
        x = 4 + SQUARE * i
        frame[h // 3 : h // 3 + 12, x : x + 12] = (230, 20, 20)
        out.append(frame)
    return out


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    rate: int = 24,
    audio: bool = False,
    pts: list[int] | None = None,
    rotation: int = 0,
) -> Path:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=22050) if audio else None
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = pts[i] if pts else i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            t = np.arange(int(22050 * len(frames) / rate)) / 22050
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 22050, 0
            out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(**{kind: 0}) if p.size]


# --- flow, masks and the temporal terms ----------------------------------------------


def test_flow_finds_the_pan_and_masks_the_moving_square():
    a, b = pan_frames(3)[1:3]
    f_ab, f_ba = flow.flow(a, b), flow.flow(b, a)
    mask = flow.reliable(f_ab, f_ba)
    h, w = a.shape[:2]
    # The background: A's pixel (x, y) is at x - PAN in B (the camera moved right).
    background = np.zeros((h, w), bool)
    background[h // 3 + 16 :, 8:-8] = True
    assert np.median(f_ab[background][:, 0]) == pytest.approx(-PAN, abs=0.5)
    assert mask[background].mean() > 0.8
    # The square moves +SQUARE: around it the flow fails the check somewhere, and the
    # right edge (what leaves the frame... the left edge here) is not trusted.
    assert mask.mean() < 0.97
    assert mask[:, :PAN].mean() < 0.5  # content from beyond B's left edge
    # Warping B onto A by the flow reproduces A where the mask trusts it.
    warped = flow.warp(b.astype(np.float32) / 255, f_ab)
    err = temporal.warping_error(a.astype(np.float32) / 255, b.astype(np.float32) / 255, f_ab, mask)
    plain = float(((a / 255.0 - b / 255.0) ** 2).mean())
    assert err < plain / 4 and warped.shape == (h, w, 3)


def test_long_term_masks_cover_each_pixel_once():
    near = np.array([[1, 0, 0, 1]], np.float32)
    mid = np.array([[1, 1, 0, 0]], np.float32)
    far = np.array([[1, 1, 1, 0]], np.float32)
    out = temporal.long_term_masks([near, mid, far])
    np.testing.assert_array_equal(out[0], near)
    np.testing.assert_array_equal(out[1], [[0, 1, 0, 0]])
    np.testing.assert_array_equal(out[2], [[0, 0, 1, 0]])


def test_temporal_loss_is_the_masked_mean_and_resizes():
    target = torch.rand(1, 3, 8, 8)
    mask = (torch.rand(1, 1, 8, 8) > 0.5).float()
    rgb = torch.rand(2, 3, 8, 8)
    loss = temporal.TemporalLoss([(target, mask)], 3.0)(rgb)
    expected = [3.0 * float((mask * (rgb[i] - target) ** 2).sum()) / (3 * 64) for i in range(2)]
    assert loss.shape == (2,) and loss.tolist() == pytest.approx(expected, rel=1e-5)
    assert temporal.TemporalLoss([(target, mask)], 1.0)(torch.rand(1, 3, 4, 4)).shape == (1,)


# --- the core's hook -------------------------------------------------------------------


def test_objective_extra_is_added_and_optimised(content_path, style_path):
    enc = tiny_encoder()
    opts = preset("default").replace(steps=15, content_weight=0.0, style_weight=0.0, tv_weight=0.0)
    content = torch.rand(1, 3, 32, 48)
    target = torch.full_like(content, 0.25)
    extra = temporal.TemporalLoss([(target, torch.ones(1, 1, 32, 48))], 100.0)
    plain = Objective(enc, content, [(content, 1.0)], opts)
    both = Objective(enc, content, [(content, 1.0)], opts, extra=extra)
    x = enc.preprocessing.to_input(content)
    total, parts = both(x)
    assert float(parts["extra"]) == pytest.approx(float(extra(content)), rel=1e-4)
    assert float(total) == pytest.approx(float(plain(x)[0] + parts["extra"]), rel=1e-4)
    out = optimize(both, content, opts)  # only the extra term pulls: towards the target
    assert float((out.rgb - target).abs().mean()) < 0.2 * float((content - target).abs().mean())


def test_pipeline_job_starts_from_its_init_image():
    enc = tiny_encoder()
    photo = Image.fromarray(pan_frames(1)[0])
    start = torch.zeros(1, 3, 24, 32)  # any size: resized to the scale's
    opts = preset("default").replace(size=None, scales=1, steps=1, style_weight=0.0)
    job = Job(photo, [(photo, 1.0)], None, lambda rgb: rgb, init=start)
    (outcomes,) = optimize_scales([job], opts, enc, torch.device("cpu"), callback=lambda e: None)
    assert outcomes[-1].rgb.shape[-2:] == (48, 64)
    assert float(outcomes[-1].rgb.mean()) < 0.05  # one step from black stays near black


# --- the command -------------------------------------------------------------------------


def test_video_keeps_rate_size_and_audio(tmp_path, capsys):
    clip = write_clip(tmp_path / "in.mp4", pan_frames(), audio=True)
    out = tmp_path / "out.mp4"
    metrics = tmp_path / "m.json"
    code, _, err = run_cli(capsys, "video", clip, PHOTO, "-o", out, *FAST, "--metrics", metrics)
    assert code == 0, err
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (64, 48)
        assert v.average_rate == 24
        assert sum(1 for _ in c.decode(v)) == 6
    assert packets(out, "audio") == packets(clip, "audio")  # copied, not re-encoded
    assert not (tmp_path / "out.mp4.frames").exists()  # removed once the video is written
    import json

    each = json.loads(metrics.read_text())["each"]
    assert len(each) == 6 and each[0]["steps"] == 6 and each[1]["steps"] == 3
    assert "extra" in each[1]["losses"] and "extra" not in each[0]["losses"]


def test_folder_in_folder_out_odd_size_long_term(tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    for i, array in enumerate(pan_frames(4, (65, 49))):
        Image.fromarray(array).save(src / f"f{i:03d}.png")
    out = tmp_path / "styled"
    argv = [*FAST[:2], "--size", "65", *FAST[4:], "--long-term", "2", "--keep-frames"]
    code, _, err = run_cli(capsys, "video", src, PHOTO, "-o", out, *argv)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(1, 5)]
    assert Image.open(out / names[0]).size == (64, 48)  # even sides
    flows = sorted(p.name for p in (tmp_path / "styled.frames" / "flow").iterdir())
    assert "000003_000001.npz" in flows  # the long-term pair
    code, _, err = run_cli(capsys, "video", src, PHOTO, "-o", out, *argv)
    assert code == 2 and "--overwrite" in err  # the frames are not silently replaced


def test_rotation_is_applied_to_the_pixels(tmp_path):
    clip = io.open_clip(write_clip(tmp_path / "r.mp4", pan_frames(2), rotation=90))
    assert clip.size == (48, 64)
    first = next(io.frames(clip, clip.size))
    assert first.size == (48, 64)
    upright = np.rot90(pan_frames(2)[0], 1)  # 90 degrees counter-clockwise
    assert np.abs(np.asarray(first, float) - upright).mean() < 12  # H.264 losses


@pytest.mark.parametrize("tag", [45, 135, -45, 180, 270])
def test_a_rotation_tag_turns_the_size_and_the_pixels_alike(tmp_path, tag):
    clip = io.open_clip(write_clip(tmp_path / "r.mp4", pan_frames(2), rotation=tag))
    first = next(io.frames(clip, clip.size))
    assert first.size == clip.size  # turned as the size says, never squeezed
    turns = io.quarter_turns(tag)
    assert clip.size == ((48, 64) if turns % 2 else (64, 48)), tag
    upright = np.rot90(pan_frames(2)[0], turns)
    assert np.abs(np.asarray(first, float) - upright).mean() < 12


def test_range_and_rate(tmp_path):
    path = write_clip(tmp_path / "c.mp4", pan_frames(10), rate=10)
    clip = io.open_clip(path, start=0.3, duration=0.5)
    assert clip.count == 5 and clip.rate == 10 and clip.start == pytest.approx(0.3)
    assert io.open_clip(path, max_frames=4).count == 4


def _nothing_written(tmp_path: Path, before: set) -> bool:
    return set(tmp_path.rglob("*")) == before


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("not a video")
    with av.open(str(tmp_path / "sound.m4a"), "w") as out:
        s = out.add_stream("aac", rate=22050)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt")
        chunk.sample_rate = 22050
        out.mux(s.encode(chunk))
        out.mux(s.encode(None))
    write_clip(tmp_path / "short.mp4", pan_frames(3))
    write_clip(tmp_path / "vfr.mp4", pan_frames(5), pts=[0, 1, 2, 6, 7])
    write_clip(tmp_path / "thin.mp4", [f[:16].copy() for f in pan_frames(2)])
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    cases = [
        ("notes.mp4", [], "not a video"),
        ("sound.m4a", [], "no video stream"),
        ("short.mp4", ["--start", "5"], "no video frames from 5 s on"),
        ("vfr.mp4", [], "variable frame rate"),
        ("thin.mp4", [], "64x16 px is too small"),
        ("nothing", [], "has no frames"),
        ("missing.mp4", [], "does not exist"),
    ]
    before = set(tmp_path.rglob("*"))
    for name, more, words in cases:
        argv = ["video", tmp_path / name, PHOTO, "-o", tmp_path / "out.mp4", *FAST, *more]
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (name, err)
        assert _nothing_written(tmp_path, before), name
    code, _, err = run_cli(capsys, "video", tmp_path / "vfr.mp4", PHOTO, "-o", tmp_path / "o.gif")
    assert code == 2 and "video suffix" in err
    code, _, err = run_cli(
        capsys, "video", tmp_path / "vfr.mp4", PHOTO, "-o", "o.mp4", "--model", "m"
    )
    assert code == 2 and "--model" in err


def test_without_the_extra_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    code, _, err = run_cli(capsys, "video", tmp_path / "x.mp4", PHOTO, "-o", tmp_path / "o.mp4")
    assert code == 2 and 'pip install "painterly[video]"' in err
    assert len(err.strip().splitlines()) == 1


def test_a_killed_run_resumes_without_redoing_frames(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", pan_frames(6))
    out = tmp_path / "out.mp4"
    store = tmp_path / "out.mp4.frames" / "frames"
    argv = [sys.executable, "-m", "painterly", "video", str(clip), str(PHOTO), "-o", str(out)]
    slow = ["--weights", "offline", "--size", "64", "--first-steps", "6", "--steps", "12"]
    child = subprocess.Popen([*argv, *slow, "--quiet"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (store / "frame_000002.png").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = sorted(store.glob("*.png"))
    assert 2 <= len(done) < 6 and not out.exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in done}
    again = subprocess.run([*argv, *slow], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--resume" in again.stderr
    again = subprocess.run(
        [*argv, *slow, "--resume", "--keep-frames"], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    for name, stamp in stamps.items():  # the finished frames were not redone
        assert (store / name).stat().st_mtime_ns == stamp
    redone = [n for n in range(1, 7) if f"frame {n} of 6 done" in again.stderr]
    assert redone == list(range(len(done) + 1, 7))
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert not list(tmp_path.glob(".*.painterly.tmp"))
    # Other options than those the frames were made with: refused, one line.
    changed = subprocess.run(
        [*argv, *slow[:-1], "5", "--resume", "--overwrite"], capture_output=True, text=True
    )
    assert changed.returncode == 2 and "other settings (options.steps differs)" in changed.stderr, (
        changed.stderr
    )
    assert os.path.exists(out)


# --------------------------------------------------------------------------- run state


@pytest.fixture
def kept_run(tmp_path, capsys):
    """A finished 3-frame run whose store was kept: (argv, store folder, painting)."""
    clip = write_clip(tmp_path / "in.mp4", pan_frames(3))
    painting = tmp_path / "painting.png"
    Image.open(PHOTO).convert("RGB").resize((64, 48)).save(painting)
    out = tmp_path / "out.mp4"
    argv = ["video", clip, painting, "-o", out, *FAST, "--keep-frames"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    return argv, tmp_path / "out.mp4.frames", painting


def test_a_painting_replaced_in_place_is_another_run(kept_run, capsys):
    argv, _, painting = kept_run
    Image.new("RGB", (64, 48), (200, 30, 30)).save(painting)  # same name, other picture
    code, _, err = run_cli(capsys, *argv, "--resume", "--overwrite")
    assert code == 2 and "styles differs" in err, err


def test_damaged_run_records_are_one_line_errors(kept_run, capsys):
    argv, store, _ = kept_run
    for garbage in ("{not json", "[]", '"text"', ""):
        (store / "run.json").write_text(garbage)
        code, _, err = run_cli(capsys, *argv, "--resume", "--overwrite")
        assert code == 2 and "run.json" in err and err.count("\n") == 1, (garbage, err)
        assert "--overwrite" in err


def test_a_frames_folder_that_is_not_painterlys_is_never_written_or_removed(tmp_path, capsys):
    clip = write_clip(tmp_path / "in.mp4", pan_frames(3))
    store = tmp_path / "out.mp4.frames"
    store.mkdir()
    (store / "notes.txt").write_text("mine")
    for flag in ("--overwrite", "--resume"):
        code, _, err = run_cli(
            capsys, "video", clip, PHOTO, "-o", tmp_path / "out.mp4", *FAST, flag
        )
        assert code == 2 and "not a painterly run folder" in err, (flag, err)
    assert [p.name for p in store.iterdir()] == ["notes.txt"]


def test_the_output_folder_cannot_be_the_input_frames_folder(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, array in enumerate(pan_frames(3)):
        Image.fromarray(array).save(frames / f"f{i:03d}.png")
    before = sorted(p.name for p in frames.iterdir())
    code, _, err = run_cli(capsys, "video", frames, PHOTO, "-o", frames, *FAST, "--overwrite")
    assert code == 2 and "holds the input frames" in err, err
    assert sorted(p.name for p in frames.iterdir()) == before


def test_video_with_the_nearest_neighbour_style_and_the_temporal_loss(tmp_path, capsys):
    clip = write_clip(tmp_path / "in.mp4", pan_frames())
    out, metrics = tmp_path / "out.mp4", tmp_path / "m.json"
    argv = ["video", clip, PHOTO, "-o", out, *FAST, "--style-loss", "nearest", "--metrics", metrics]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    import json

    each = json.loads(metrics.read_text())["each"]
    assert len(each) == 6 and "extra" in each[1]["losses"]
