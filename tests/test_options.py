"""Options: one parser and one set of checks (config.py) for the CLI, the web form and the
Python API; and the CLI's outputs: never two of them the same file, never a surprise."""

from __future__ import annotations

import ast
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from runcli import run_cli

import painterly
from painterly import config, files, settings
from painterly.cli import main
from painterly.config import MAX_SEED, Options
from painterly.errors import OptionsError

FAST = ["--weights", "random", "--size", "48", "--steps", "1", "--quiet"]
SRC = Path(config.__file__).parent


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("painterly: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


# --------------------------------------------------------------------------- config


def ours(module: str) -> set[str]:
    tree = ast.parse((SRC / module).read_text())
    return {
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("painterly")
    }


def test_settings_and_config_import_nothing_above_them():
    assert ours("settings.py") == {"painterly.errors"}
    assert ours("config.py") == {"painterly.errors", "painterly.settings"}


def test_options_check_values_they_are_given_and_make_parses_text():
    with pytest.raises(OptionsError, match="Options.make parses text"):
        Options(scale_steps="100,60")
    # The Python API names options as fields; the command line (tests/test_cli) as flags.
    with pytest.raises(OptionsError, match="^size must be of kind int"):
        Options(size=512.0)
    opts = Options.make(scale_steps="100, 60,40", style_blend="1,0.5", seed="7", size="")
    assert opts.scale_steps == (100, 60, 40) and opts.style_blend == (1.0, 0.5)
    assert opts.seed == 7 and opts.size is None
    # replace parses too, and returns a new Options: the old one is as it was.
    other = opts.replace(style_layer_weights="1,0,0,0,0", learning_rate="0.5")
    assert other.style_layer_weights == (1.0, 0, 0, 0, 0) and other.learning_rate == 0.5
    assert opts.style_layer_weights == () and opts.learning_rate == 0.02


def test_every_field_has_a_kind_and_its_default_passes_its_own_parser():
    for f in config.option_fields():
        kind = f.metadata["kind"]
        assert isinstance(kind, settings.Kind) and f.metadata["help"], f.name
        assert settings.parse_value(f.name, f.default, of=Options) == f.default, f.name
    from painterly.web.form import form_fields

    schema = {item["name"]: item for item in form_fields()}
    assert schema["optimizer"]["choices"] == ["lbfgs", "adam"]
    assert schema["seed"]["min"] == 0 and schema["seed"]["max"] == MAX_SEED
    assert schema["tile"]["min"] == 0  # 0 means "automatic" below the range 64..


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("seed", 2**63, "use 0 to 9223372036854775807"),
        ("seed", -1, "-1 is out of range"),
        ("size", 1e308, "size 1e+308 is out of range"),
        ("size", 10**400, "size 1.00000e+400 is out of range"),
        ("style_weight", "inf", "finite"),
        ("content_weight", float("nan"), "finite"),
        ("tv_weight", "-inf", "finite"),
        ("style_weight", "1e13", "use 0 to 1e+12"),
        ("learning_rate", "inf", "finite"),
        ("time_limit", "inf", "finite"),
        ("style_blend", "1e308,1e308", "out of range"),
        ("style_layer_weights", "1,nan,1,1,1", "finite"),
        ("steps", True, "whole number"),
        ("steps", "3.5", "whole number"),
        ("tile", 32, "use 0 or 64 to 16384"),
        ("max_memory", "9" * 40, "not a size"),
    ],
)
def test_numbers_are_finite_and_in_range_and_shown_compactly(name, value, words):
    with pytest.raises(OptionsError) as caught:
        Options.make(**{name: value})
    message = str(caught.value)
    assert words in message and len(message) < 120 and "\n" not in message, message


def test_messages_name_fields_in_python_and_flags_on_the_command_line(capsys):
    with pytest.raises(OptionsError) as caught:
        Options.make(style_weight="x")
    assert str(caught.value).startswith("style_weight must be a number")
    assert main(["stylize", "a.png", "b.png", "-o", "c.png", "--style-weight", "x"]) == 2
    assert "--style-weight must be a number" in capsys.readouterr().err


def test_the_largest_seed_runs():
    result = painterly.run(
        Image.new("RGB", (48, 32), "white"),
        Image.new("RGB", (48, 32), "black"),
        weights="random",
        size=48,
        steps=1,
        seed=MAX_SEED,
    )
    assert result.image.size == (48, 32)


def test_blend_weights_are_checked_the_same_in_the_cli_and_the_api(content_path, style_path):
    for weight in (float("inf"), -1.0, 1e300):
        with pytest.raises(OptionsError, match="use a number from 0 to 1e\\+12|finite"):
            painterly.run(content_path, [(style_path, weight)], weights="random", size=48, steps=1)


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "extra",
    [
        ["--seed", str(2**63)],
        ["--seed", str(2**70)],
        ["--style-weight", "inf"],
        ["--content-weight", "inf"],
        ["--tv-weight", "nan"],
        ["--learning-rate", "inf", "--optimizer", "adam"],
        ["--style-weight", "1e308"],
        ["--size", "1e308"],
    ],
)
def test_absurd_numbers_on_the_command_line_are_one_line(
    tmp_path, capsys, content_path, style_path, extra
):
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "stylize", content_path, style_path, "-o", out, *FAST, *extra)
    one_line_error(code, err, extra[0])
    assert "0000000" not in err and not out.exists()


@pytest.mark.parametrize("styles", [["{s}:inf"], ["{s}:nan"], ["{s}:1e308", "{s}:1e308"]])
def test_absurd_blend_weights_are_one_line(tmp_path, capsys, content_path, style_path, styles):
    out = tmp_path / "out.png"
    specs = [s.format(s=style_path) for s in styles]
    code, _, err = run_cli(capsys, "stylize", content_path, *specs, "-o", out, *FAST)
    one_line_error(code, err, "weight of")
    assert not out.exists()


def test_an_output_and_the_metrics_cannot_be_one_file(tmp_path, capsys, content_path, style_path):
    out = tmp_path / "x.png"
    argv = ["stylize", content_path, style_path, "-o", out, *FAST]
    code, _, err = run_cli(capsys, *argv, "--metrics", out)
    one_line_error(code, err, "same file")
    code, _, err = run_cli(capsys, *argv, "--metrics", tmp_path / "." / "x.png")
    one_line_error(code, err, "same file")
    code, _, err = run_cli(
        capsys, *argv, "--save-every", "1", "--metrics", tmp_path / "x_step00001.png"
    )
    one_line_error(code, err, "--save-every snapshot")
    assert sorted(os.listdir(tmp_path)) == ["content.png", "style.png"]


def test_batch_metrics_cannot_be_one_of_its_images(tmp_path, capsys, content_path, style_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    code, _, err = run_cli(
        capsys,
        "batch",
        content_path,
        "--style",
        style_path,
        "-o",
        outdir,
        "--metrics",
        outdir / "content_style.png",
        *FAST,
    )
    one_line_error(code, err, "same file")
    assert os.listdir(outdir) == []


def _fill(folder: Path) -> None:
    """Fill the file system of ``folder`` up to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a tiny tmpfs that is full (we run as root where mounting is allowed)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        _fill(folder)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("how", ["tmpfs", "fake"])
def test_a_full_disk_under_the_metrics_is_one_line_and_keeps_the_image(
    tmp_path, capsys, content_path, style_path, monkeypatch, request, how
):
    if how == "tmpfs":
        metrics = request.getfixturevalue("full_disk") / "m.json"
    else:
        metrics = tmp_path / "m.json"
        monkeypatch.setattr(files, "write_json", _enospc)
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        capsys, "stylize", content_path, style_path, "-o", out, *FAST, "--metrics", metrics
    )
    one_line_error(code, err, "could not write metrics", "No space left", "is written")
    assert Image.open(out).size == (48, 32) and not metrics.exists()

    outdir = tmp_path / "batch"
    outdir.mkdir()
    argv = ["batch", content_path, "--style", style_path, "-o", outdir, "--metrics", metrics]
    code, _, err = run_cli(capsys, *argv, *FAST)
    one_line_error(code, err, "could not write metrics", "No space left")
    assert os.listdir(outdir) == ["content_style.png"]


def test_explain_never_writes_over_its_input(tmp_path, capsys, style_path):
    photo = tmp_path / "photo.html"  # a PNG by content: readable as the photo
    Image.new("RGB", (48, 32), "white").save(photo, format="PNG")
    before = photo.read_bytes()
    code, _, err = run_cli(
        capsys, "explain", photo, style_path, "-o", photo, "--overwrite", "--quiet"
    )
    one_line_error(code, err, "is one of the inputs")
    assert photo.read_bytes() == before


def test_an_output_folder_that_takes_no_files_is_refused_before_the_run(
    capsys, content_path, style_path
):
    code, _, err = run_cli(capsys, "stylize", content_path, style_path, "-o", "/proc/out.png")
    one_line_error(code, err, "/proc/out.png")


def test_a_failed_snapshot_warns_once_and_the_run_goes_on(
    tmp_path, capsys, content_path, style_path
):
    out = tmp_path / "out.png"
    (tmp_path / "out_step00001.png").mkdir()  # where the first snapshot would go
    fast = [a if a != "1" else "3" for a in FAST]  # three steps
    code, _, err = run_cli(
        capsys, "stylize", content_path, style_path, "-o", out, *fast, "--save-every", "1",
        "--overwrite",
    )  # fmt: skip
    assert code == 0, err
    assert err.count("warning") == 1 and "no more snapshots" in err, err
    assert Image.open(out).size == (48, 32)


def test_a_closed_pipe_ends_quietly():
    """``painterly presets | head -c 20``: no traceback, the exit code of SIGPIPE."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "painterly", "presets"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err
    shell = subprocess.run(
        f"{sys.executable} -m painterly presets | head -c 20",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(shell.stdout) == 20 and "Traceback" not in shell.stderr, shell.stderr


def test_metrics_and_images_are_written_by_the_one_writer(
    tmp_path, capsys, content_path, style_path, monkeypatch
):
    written = []
    real = files.atomic_writer

    def spy(path, mode="wb"):
        written.append(Path(path).name)
        return real(path, mode)

    monkeypatch.setattr(files, "atomic_writer", spy)
    monkeypatch.setattr("painterly.image.atomic_writer", spy)
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(
        capsys, "stylize", content_path, style_path, "-o", out, *FAST, "--metrics", metrics
    )
    assert code == 0, err
    assert written == ["out.png", "m.json"] and json.loads(metrics.read_text())["steps"] == 1


def test_a_repeatable_flag_keeps_each_item_whole():
    from painterly.cli import build_parser
    from painterly.cli.common import given_settings
    from painterly.web.config import ServeConfig

    args = build_parser().parse_args(["serve", "--models", "a,b", "--models", "c"])
    assert ServeConfig(**given_settings(args, ServeConfig)).models == ("a,b", "c")
    assert (
        ServeConfig(**given_settings(build_parser().parse_args(["serve"]), ServeConfig)).models
        == ()
    )


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["stylize", "a.png", "b.png", "-o", "c.png", "--save-every", "-1"], "--save-every"),
        (["batch", "a.png", "--style", "b.png", "-o", "d", "--batch-size", "-1"], "--batch-size"),
        (["serve", "--port", "70000"], "--port"),
    ],
)
def test_command_settings_are_checked_by_their_declarations(capsys, argv, flag):
    code, _, err = run_cli(capsys, *argv)
    one_line_error(code, err, flag, "out of range")


def test_other_style_layers_drop_the_presets_layer_weights():
    from painterly.api import make_options

    offline = make_options(weights_resolved="offline")
    assert len(offline.style_layer_weights) == len(offline.style_layers)
    mine = make_options(weights_resolved="offline", style_layers=("level1", "level2"))
    assert mine.style_layer_weights == ()  # equal weights, not the preset's five
    both = make_options(style_layers=("level1", "level2"), style_layer_weights=(1, 0.5))
    assert both.style_layer_weights == (1, 0.5)
    # The preset's lighter deep levels answer the moment losses' specks (meancov, its own,
    # and gram); nearest neighbours weigh the levels evenly.
    assert offline.style_loss == "meancov"
    assert make_options(weights_resolved="offline", style_loss="nearest").style_layer_weights == ()
    gram = make_options(weights_resolved="offline", style_loss="gram")
    assert gram.style_loss == "gram"
    assert gram.style_layer_weights == offline.style_layer_weights
