"""Fast-model files and training checkpoints that are not what they claim: every one is
refused in one line before anything is built from it (a huge claimed network, odd
metadata, wrong tensors, weights that are not finite), and a listing of models goes on
past a bad one. A property test mutates the headers of real files: the answer is a
loaded model or a ModelError, never another exception."""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import blob, stripes, tiny_model

from painterly.cli import main
from painterly.errors import ModelError
from painterly.fast import model_file
from painterly.fast.network import make_network

TINY = ["--width", "4", "--blocks", "1", "--crop", "32", "--batch-size", "2", "--quiet"]


def header_of(path) -> tuple[dict, bytes]:
    """A safetensors file's JSON header and the bytes after it."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def write_with(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def with_metadata(src, dst, **changes):
    """A copy of ``src`` whose metadata has ``changes`` (None: the key removed)."""
    header, data = header_of(src)
    meta = header["__metadata__"]
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    write_with(dst, header, data)
    return dst


def refusal(capsys, *argv) -> str:
    """The one-line error of a command that must refuse (exit 2)."""
    return refusal_with(capsys, 2, *argv)


def refusal_with(capsys, code: int, *argv) -> str:
    """The one-line error of a command that must end with exit ``code``."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def model(tmp_path):
    return tiny_model(tmp_path / "good.safetensors")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    blob().save(path)
    return path


def test_a_huge_claimed_network_is_refused_before_memory_grows(tmp_path, model, photo, capsys):
    bomb = with_metadata(model, tmp_path / "bomb.safetensors", width="1024", blocks="64")
    big = with_metadata(model, tmp_path / "big.safetensors", width="256", blocks="32")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    err = refusal(capsys, "apply", bomb, photo, "-o", tmp_path / "o.png")
    assert "damaged metadata" in err and "width 1024" in err
    # Within the bounds, but the tensors are a tiny network's: the shapes say so.
    err = refusal(capsys, "apply", big, photo, "-o", tmp_path / "o.png")
    assert "does not hold the weights its metadata describes" in err
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 200 * 1024, f"memory grew by {grown / 1024:.0f} MB"  # 256/32 is 2.4 GB
    for bad in (bomb, big):
        with pytest.raises(ModelError):
            model_file.load_model(bad)


def test_weights_that_are_not_finite_are_refused(tmp_path, photo, capsys):
    net = make_network(4, 1, 0)
    with torch.no_grad():
        net.stem[1].weight[0, 0, 0, 0] = float("nan")
    info = model_file.read_info(tiny_model(tmp_path / "ref.safetensors"))
    bad = model_file.save_model(tmp_path / "nan.safetensors", net, info)
    err = refusal(capsys, "apply", bad, photo, "-o", tmp_path / "o.png")
    assert "not finite" in err and not (tmp_path / "o.png").exists()
    err = refusal(
        capsys,
        "stylize",
        photo,
        photo,
        "-o",
        tmp_path / "s.png",
        "--weights",
        "offline",
        "--init",
        f"model:{bad}",
    )
    assert "not finite" in err


def test_a_model_with_odd_styles_is_left_out_of_every_listing(tmp_path, model, capsys):
    cache_models = model_file.models_dir()
    cache_models.mkdir(parents=True)
    tiny_model(cache_models / "fine.safetensors")
    for i, styles in enumerate(['"a string"', "[1, 2]", '[{"weight": 1}]', "{}", "null"]):
        with_metadata(model, cache_models / f"odd{i}.safetensors", styles=styles)
    capsys.readouterr()
    assert main(["models"]) == 0
    out = capsys.readouterr()
    assert "fine" in out.out and "Traceback" not in out.err
    for i in range(5):
        assert f"odd{i}" in out.out + out.err  # named, as unreadable

    from painterly.web.models import ModelShelf

    assert [m["id"] for m in ModelShelf().listing()] == ["fine"]


def test_a_folder_or_a_device_is_not_called_missing(tmp_path, photo, capsys):
    err = refusal(capsys, "apply", tmp_path, photo, "-o", tmp_path / "o.png")
    assert "is not a file" in err
    err = refusal(capsys, "apply", "/dev/zero", photo, "-o", tmp_path / "o.png")
    assert "does not exist" not in err


# --------------------------------------------------------------------------- checkpoints


@pytest.fixture
def trained(tmp_path):
    """A model trained for 2 iterations with a checkpoint beside it: (argv, checkpoint)."""
    style, photos = tmp_path / "style.png", tmp_path / "photos"
    stripes().save(style)
    photos.mkdir()
    blob().save(photos / "a.png")
    out = tmp_path / "m.safetensors"
    argv = ["train", str(style), "--images", str(photos), "-o", str(out), *TINY]
    argv += ["--weights", "offline"]
    assert main([*argv, "--iterations", "2", "--save-every", "1"]) == 0
    return argv, out.with_suffix(".ckpt")


CHECKPOINT_DAMAGE = {
    "settings": ["[]", '{"train": 5}', '{"train": {"width": 99999, "blocks": 1}}', "nope"],
    "history": ['{"a": 1}', '[{"iteration": "x"}]', "[1, 2]"],
    "param_groups": ["[]", '[{"params": [0]}]', '"x"'],
    "iteration": ["-1", "many"],
}


def test_hand_edited_checkpoints_are_one_line_errors_on_resume(trained, capsys):
    argv, ckpt = trained
    original = ckpt.read_bytes()
    for key, values in CHECKPOINT_DAMAGE.items():
        for value in values:
            with_metadata(ckpt, ckpt, **{key: value})
            err = refusal(capsys, *argv, "--iterations", "4", "--resume")
            assert str(ckpt) in err and "--overwrite" in err, (key, value, err)
            ckpt.write_bytes(original)
    # Wrong tensor shapes: one weight swapped for another's.
    header, data = header_of(ckpt)
    names = [k for k in header if k.startswith("model.") and k.endswith("weight")]
    header[names[0]], header[names[1]] = header[names[1]], header[names[0]]
    write_with(ckpt, header, data)
    err = refusal(capsys, *argv, "--iterations", "4", "--resume")
    assert "wrongly shaped" in err or "does not hold" in err
    ckpt.write_bytes(original)
    assert main([*argv, "--iterations", "3", "--resume"]) == 0  # the real one resumes


def test_a_checkpoint_with_weights_that_are_not_finite_is_not_resumed(trained, capsys):
    argv, ckpt = trained
    header, data = header_of(ckpt)
    name = next(k for k in header if k.startswith("model.") and k.endswith("weight"))
    start, _ = header[name]["data_offsets"]
    data = data[:start] + struct.pack("<f", float("inf")) + data[start + 4 :]
    write_with(ckpt, header, data)
    assert "not finite" in refusal(capsys, *argv, "--iterations", "4", "--resume")


# --------------------------------------------------------------------------- fuzzing

METADATA_KEYS = ["width", "blocks", "styles", "encoder", "options", "iterations", "format"]
values = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["[]", "{}", "null", "1e400", "NaN", '[{"name": 3}]', '"x"', "-0"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(METADATA_KEYS), values, max_size=3))
def test_any_metadata_gives_a_model_or_a_model_error(tmp_path_factory, changes):
    folder = tmp_path_factory.mktemp("fuzz")
    src = tiny_model(folder / "src.safetensors")
    bad = with_metadata(src, folder / "bad.safetensors", **changes)
    for read in (model_file.read_info, model_file.load_model):
        try:
            read(bad)
        except ModelError as err:
            assert "\n" not in str(err)


CHECKPOINT_KEYS = ["settings", "history", "param_groups", "iteration", "format"]
json_text = st.one_of(
    values,
    st.sampled_from(['{"train": {}}', '[{"params": []}]', '[{"iteration": 1}]', "[[]]"]),
)


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    """A real checkpoint of a 2-iteration run, made once for the property test."""
    folder = tmp_path_factory.mktemp("ckpt")
    stripes().save(folder / "style.png")
    (folder / "photos").mkdir()
    blob().save(folder / "photos" / "a.png")
    out = folder / "m.safetensors"
    argv = ["train", str(folder / "style.png"), "--images", str(folder / "photos")]
    assert main([*argv, "-o", str(out), *TINY, "--weights", "offline", "--iterations", "2"]) == 0
    return out.with_suffix(".ckpt")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(CHECKPOINT_KEYS), json_text, max_size=3))
def test_any_checkpoint_metadata_gives_a_checkpoint_or_a_model_error(
    tmp_path_factory, checkpoint_file, changes
):
    bad = with_metadata(checkpoint_file, tmp_path_factory.mktemp("c") / "x.ckpt", **changes)
    try:
        model_file.load_checkpoint(bad)
    except ModelError as err:
        assert "\n" not in str(err)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 4000), flips=st.lists(st.integers(0, 4000), max_size=4))
def test_any_damaged_bytes_give_a_model_or_a_model_error(tmp_path_factory, cut, flips):
    folder = tmp_path_factory.mktemp("bytes")
    raw = bytearray(tiny_model(folder / "src.safetensors").read_bytes())
    for at in flips:
        raw[at % len(raw)] ^= 0x5A
    bad = folder / "bad.safetensors"
    bad.write_bytes(bytes(raw[: max(1, len(raw) - cut)]))
    try:
        model_file.load_model(bad)
    except ModelError as err:
        assert "\n" not in str(err)


# --------------------------------------------------------------------------- training


def test_training_settings_out_of_range_are_one_line_errors(trained, capsys):
    argv, _ = trained
    for bad in (["--seed", "-1"], ["--seed", "1e23"], ["--batch-size", "100000000"]):
        err = refusal(capsys, *argv, "--iterations", "1", "--overwrite", *bad)
        assert bad[0] in err, err


def test_an_output_that_is_a_folder_is_refused_before_training(trained, tmp_path, capsys):
    argv, _ = trained
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    at = argv.index("-o") + 1
    argv = [*argv[:at], str(folder), *argv[at + 1 :]]
    err = refusal(capsys, *argv, "--iterations", "1", "--overwrite")
    assert "is a folder" in err and folder.is_dir()


def test_resuming_with_other_photos_is_refused(trained, tmp_path, capsys):
    argv, _ = trained
    other = tmp_path / "other"
    other.mkdir()
    stripes(80, 80, 10).save(other / "x.png")
    at = argv.index("--images") + 1
    argv = [*argv[:at], str(other), *argv[at + 1 :]]
    err = refusal(capsys, *argv, "--iterations", "4", "--resume")
    assert "photos differ" in err


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last(trained, tmp_path):
    """A real write that fails: the file size limit (RLIMIT_FSIZE) stops the checkpoint
    write half-way, as a full disk would (Python ignores SIGXFSZ, so write() fails)."""
    argv, ckpt = trained
    before = ckpt.read_bytes()
    limit = len(before) // 2

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run(
        [sys.executable, "-m", "painterly", *argv, "--iterations", "4", "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert "cannot write the checkpoint" in run.stderr and "--resume" in run.stderr
    assert ckpt.read_bytes() == before  # the last checkpoint is whole
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".painterly.tmp")]


def test_running_out_of_memory_where_tiles_cannot_help_is_one_line(
    tmp_path, model, photo, capsys, monkeypatch
):
    """torch's CPU allocator under a memory cap raises a RuntimeError; a fast model that
    paints in one piece has no smaller tiles to fall back on."""
    import painterly.fast.apply as apply

    def refuse(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")

    monkeypatch.setattr(apply, "paint_tensor", refuse)
    err = refusal_with(capsys, 1, "apply", model, photo, "-o", tmp_path / "o.png")
    assert err.startswith("painterly: error: out of memory") and "--size" in err
    assert not (tmp_path / "o.png").exists()


# --- under-trained models -------------------------------------------------------------


def test_a_run_cut_short_is_marked_under_trained_and_every_user_says_so(trained, tmp_path, capsys):
    argv, _ = trained
    model = tmp_path / "m.safetensors"
    painted = tmp_path / "painted.png"
    blob().save(tmp_path / "photo.png")
    # Complete: nothing is said.
    assert model_file.read_info(model).under_trained == ""
    capsys.readouterr()
    assert main(["apply", str(model), str(tmp_path / "photo.png"), "-o", str(painted)]) == 0
    assert "under-trained" not in capsys.readouterr().err

    # A time limit far short of the plan: saved, marked, and said at every use.
    cut = [*argv, "--iterations", "1000000", "--time-limit", "1", "--overwrite"]
    assert main(cut) == 0
    err = capsys.readouterr().err
    assert "under-trained (stopped after" in err and "of 1000000 iterations" in err, err
    info = model_file.read_info(model)
    assert info.under_trained.startswith("stopped after") and info.planned == 1_000_000
    argv_apply = ["apply", str(model), str(tmp_path / "photo.png"), "-o", str(painted)]
    assert main([*argv_apply, "--overwrite"]) == 0
    assert "warning: m is under-trained (stopped after" in capsys.readouterr().err

    from painterly.web.models import ModelShelf

    listed = ModelShelf([tmp_path]).listing()
    assert [m["under_trained"] for m in listed if m["id"] == "m"] == [info.under_trained]


def test_a_loss_that_has_not_fallen_marks_a_finished_run_under_trained():
    from painterly.fast.train import JUDGE_AFTER, MIN_DROP, under_trained

    flat = [{"total": 1.0}] * JUDGE_AFTER
    falling = [{"total": 1.0 - 0.9 * i / JUDGE_AFTER} for i in range(JUDGE_AFTER)]
    barely = [{"total": 1.0 - (MIN_DROP / 2) * i / JUDGE_AFTER} for i in range(JUDGE_AFTER)]
    assert "fell only 0%" in under_trained(JUDGE_AFTER, JUDGE_AFTER, flat)
    assert under_trained(JUDGE_AFTER, JUDGE_AFTER, falling) == ""
    assert "fell only" in under_trained(JUDGE_AFTER, JUDGE_AFTER, barely)
    assert under_trained(3, 3, flat[:3]) == ""  # too short to judge by its loss
    assert under_trained(7, 2000, flat[:7]) == "stopped after 7 of 2000 iterations"


def test_a_model_file_without_the_record_reads_as_finished(model, tmp_path):
    old = with_metadata(
        model, tmp_path / "old.safetensors", planned_iterations=None, under_trained=None
    )
    info = model_file.read_info(old)
    assert info.under_trained == "" and info.planned == 0 and info.warning("old") == ""


def test_training_is_scored_on_held_out_photos_at_every_checkpoint(tmp_path, capsys):
    style, photos = tmp_path / "style.png", tmp_path / "photos"
    stripes().save(style)
    photos.mkdir()
    for i in range(20):
        blob(48 + i, 48).save(photos / f"{i:02d}.png")
    out, metrics = tmp_path / "m.safetensors", tmp_path / "m.json"
    argv = ["train", str(style), "--images", str(photos), "-o", str(out), *TINY]
    argv += ["--weights", "offline", "--iterations", "4", "--save-every", "2"]
    assert main([*argv, "--metrics", str(metrics)]) == 0
    m = json.loads(metrics.read_text())
    assert [p.rsplit("/", 1)[-1] for p in m["heldout_photos"]] == ["09.png", "19.png"]
    assert m["photos"] == 18  # the held-out photos are not trained on
    assert [it for it, _ in m["heldout"]] == [2, 4] and all(v > 0 for _, v in m["heldout"])
    assert model_file.read_info(out).heldout == m["heldout"]


def test_a_held_out_loss_that_has_not_fallen_marks_the_model():
    from painterly.fast.train import JUDGE_AFTER, under_trained

    falling = [{"total": 1.0 - 0.9 * i / JUDGE_AFTER} for i in range(JUDGE_AFTER)]
    flat_curve = [[50, 1.0], [100, 0.95], [JUDGE_AFTER, 0.9]]
    good_curve = [[50, 1.0], [100, 0.6], [JUDGE_AFTER, 0.4]]
    assert "held-out loss fell only 10%" in under_trained(
        JUDGE_AFTER, JUDGE_AFTER, falling, flat_curve
    )
    assert under_trained(JUDGE_AFTER, JUDGE_AFTER, falling, good_curve) == ""
