"""painterly video --model: a fast model per frame, steadied by the flow. An untrained
tiny network stands in for a trained one (it paints a fixed texture-like transform, which
is all the steadying needs); the clips are test_video's panning clips, with noise added
to each frame so that the network's per-frame output flickers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.cli import main
from painterly.image import read_metadata

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from synthetic import tiny_model  # noqa: E402
from test_video import PHOTO, packets, pan_frames, write_clip  # noqa: E402

from painterly.video import flow, io, temporal  # noqa: E402
from painterly.video.fast_model import paint_clip  # noqa: E402
from painterly.video.run import FrameStore  # noqa: E402


@pytest.fixture
def model(tmp_path) -> Path:
    return tiny_model(tmp_path / "m.safetensors", style="stripes", seed=3)


SIZE = (128, 96)  # DIS needs some room: at 64x48 its flow of the pan is 20 % short


def noisy_frames(n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        np.clip(f.astype(np.int16) + rng.integers(-12, 13, f.shape), 0, 255).astype(np.uint8)
        for f in pan_frames(n, SIZE)
    ]


def folder_clip(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    src = tmp_path / "frames"
    src.mkdir()
    for i, array in enumerate(frames):
        Image.fromarray(array).save(src / f"{i:03d}.png")
    return src


def warp_error(frames: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """Lai et al.'s warping error of ``frames`` along the flow of the clean input frames."""
    errors = []
    for k in range(1, len(frames)):
        f = flow.flow(inputs[k], inputs[k - 1])
        mask = flow.reliable(f, flow.flow(inputs[k - 1], inputs[k]))
        errors.append(temporal.warping_error(frames[k], frames[k - 1], f, mask))
    return float(np.mean(errors))


def as_arrays(paths) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in paths]


def test_video_with_a_model_keeps_audio_and_steadies_the_frames(tmp_path, capsys, model):
    frames = noisy_frames()
    clip = write_clip(tmp_path / "in.mp4", frames, audio=True)
    out = tmp_path / "out.mp4"
    code = main(["video", str(clip), "-o", str(out), "--model", str(model), "--quiet"])
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(frames)
    assert packets(out, "audio") == packets(clip, "audio")
    assert not (tmp_path / "out.mp4.frames").exists()

    # The same clip as folders of frames, steadied and not: the flow cuts the flicker.
    src = folder_clip(tmp_path, frames)
    runs = {}
    for name, blend in (("steady", []), ("per_frame", ["--blend", "0"])):
        folder = tmp_path / name
        argv = ["video", str(src), "-o", str(folder), "--model", str(model), "--quiet", *blend]
        assert main(argv) == 0, capsys.readouterr().err
        runs[name] = as_arrays(sorted(folder.glob("frame_*.png")))
    clean = [f.astype(np.float32) / 255 for f in pan_frames(len(frames), SIZE)]
    steady, per_frame = warp_error(runs["steady"], clean), warp_error(runs["per_frame"], clean)
    assert steady < 0.5 * per_frame, (steady, per_frame)
    # The first frame is the model's own output in both; later ones differ.
    assert np.array_equal(runs["steady"][0], runs["per_frame"][0])
    assert not np.array_equal(runs["steady"][-1], runs["per_frame"][-1])
    text = read_metadata(tmp_path / "steady" / "frame_000001.png")
    assert text["painterly:model:encoder"] == "offline"
    assert json.loads(text["painterly:model:styles"])[0]["name"] == "stripes"


def test_a_stopped_model_run_resumes_to_the_same_frames(tmp_path, model):
    clip = io.open_clip(folder_clip(tmp_path, noisy_frames(6)), fps=24)
    whole = paint_clip(clip, model, FrameStore(tmp_path / "whole"))
    asked = []

    def stop_after_three() -> bool:
        asked.append(1)
        return len(asked) > 3

    store = FrameStore(tmp_path / "cut")
    cut = paint_clip(clip, model, store, should_stop=stop_after_three)
    assert cut.interrupted and len(cut.frames) == 3
    assert sorted(p.name for p in store.frames.iterdir()) == [
        f"frame_{i:06d}.png" for i in range(1, 4)
    ]
    stamps = {p.name: p.stat().st_mtime_ns for p in store.frames.iterdir()}
    with pytest.raises(Exception, match="--resume"):
        paint_clip(clip, model, store)
    resumed = paint_clip(clip, model, store, resume=True)
    assert not resumed.interrupted
    for name, stamp in stamps.items():
        assert (store.frames / name).stat().st_mtime_ns == stamp
    for a, b in zip(whole.frames, resumed.frames, strict=True):  # as if never stopped
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    with pytest.raises(Exception, match="blend differs"):
        paint_clip(clip, model, store, resume=True, blend=0.5)


def test_model_mistakes_are_one_line(tmp_path, capsys, model):
    src = folder_clip(tmp_path, pan_frames(3))
    out = str(tmp_path / "out.mp4")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    cases = [
        ([str(PHOTO), "--model", str(model)], "carries its own style"),
        (["--model", str(model), "--steps", "5"], "--steps is for optimising"),
        (["--model", str(model), "--weights", "offline"], "--weights is for optimising"),
        ([str(PHOTO), "--blend", "0.5"], "--blend is for --model"),
        ([], "give at least one painting"),
        (["--model", str(broken)], "broken.safetensors"),
        (["--model", str(tmp_path / "missing.safetensors")], "missing"),
    ]
    for extra, message in cases:
        code = main(["video", str(src), *extra, "-o", out])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (extra, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code = main(["video", str(src), "-o", out, "--model", str(model), "--blend", "1"])
    assert code == 2 and "--blend" in capsys.readouterr().err
    assert not Path(out).exists() and not (tmp_path / "out.mp4.frames").exists()
