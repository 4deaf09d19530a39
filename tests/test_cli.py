"""The CLI end to end on small images with the offline encoder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image
from runcli import run_cli
from synthetic import default_sigint

from painterly.cli import parse_style
from painterly.image import read_metadata

FAST = ["--weights", "offline", "--size", "48", "--steps", "3", "--quiet"]


def test_stylize_writes_image_metadata_and_metrics(tmp_path, capsys, content_path, style_path):
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    code, _, err = run_cli(
        capsys,
        "stylize",
        content_path,
        style_path,
        "-o",
        out,
        *FAST,
        "--seed",
        5,
        "--metrics",
        metrics,
    )
    assert code == 0, err
    img = Image.open(out)
    assert img.size == (48, 32)  # long side 48, the content's 3:2 aspect kept
    meta = read_metadata(out)
    settings = json.loads(meta["painterly:settings"])
    assert settings["seed"] == 5 and settings["steps"] == 3
    assert meta["painterly:weights"] == "offline" and meta["painterly:version"]
    m = json.loads(metrics.read_text())
    for key in (
        "encoder",
        "device",
        "size",
        "steps",
        "seconds",
        "ms_per_step",
        "losses",
        "history",
    ):
        assert key in m
    assert m["size"] == [48, 32] and m["steps"] == 3 and len(m["history"]) == 3
    assert set(m["losses"]) >= {"content", "style", "tv", "total"}


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".tif"])
def test_output_format_follows_the_extension(tmp_path, capsys, content_path, style_path, ext):
    out = tmp_path / f"out{ext}"
    code, _, err = run_cli(capsys, "stylize", content_path, style_path, "-o", out, *FAST)
    assert code == 0, err
    assert Image.open(out).format == {".jpg": "JPEG", ".webp": "WEBP", ".tif": "TIFF"}[ext]


def test_height_and_blended_styles(tmp_path, capsys, content_path, style_path):
    out = tmp_path / "out.png"
    argv = ["stylize", content_path, f"{style_path}:0.7", f"{content_path}:0.3", "-o", out]
    code, _, err = run_cli(capsys, *argv, "--weights", "offline", "--height", 40, "--steps", 2)
    assert code == 0, err
    assert Image.open(out).size == (60, 40)
    assert parse_style("a:b.png") == ("a:b.png", 1.0)
    assert parse_style("x.png:0.25") == ("x.png", 0.25)


def bad_inputs(tmp_path, content_path, style_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(content_path.read_bytes()[:200])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20)).save(tiny)
    bad_weights = tmp_path / "w.h5"
    bad_weights.write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 100)
    out = tmp_path / "out.png"
    c, s = content_path, style_path
    return {
        "missing": ([tmp_path / "nope.jpg", s, "-o", out], "nope.jpg"),
        "not an image": ([text, s, "-o", out], "notes.jpg"),
        "truncated": ([c, trunc, "-o", out], "trunc.png"),
        "too small": ([tiny, s, "-o", out], "32"),
        "absurd size": ([c, s, "-o", out, "--size", "100000"], "--size"),
        "unknown layer": ([c, s, "-o", out, "--content-layer", "block5_conv22"], "block5_conv2"),
        "unknown weights": ([c, s, "-o", out, "--weights", "vgg99"], "vgg99"),
        "bad weights file": ([c, s, "-o", out, "--weights", bad_weights], "w.h5"),
        "unwritable output": ([c, s, "-o", tmp_path / "no" / "dir" / "o.png"], "o.png"),
        "unknown extension": ([c, s, "-o", tmp_path / "o.xyz"], ".xyz"),
        "unknown preset": ([c, s, "-o", out, "--preset", "picasso"], "picasso"),
        "bad number": ([c, s, "-o", out, "--steps", "many"], "steps"),
        "negative weight": ([c, s, "-o", out, "--style-weight", "-1"], "style-weight"),
    }


def test_every_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content_path, style_path):
    for name, (argv, mention) in bad_inputs(tmp_path, content_path, style_path).items():
        code, out, err = run_cli(
            capsys, "stylize", "--weights", "offline", *argv, "--steps", "1", "--quiet"
        )
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("painterly: error:"), (name, err)
        assert mention in lines[0], (name, lines[0])
        assert "Traceback" not in err


def test_failed_run_keeps_the_existing_output(tmp_path, capsys, content_path, style_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    code, _, _ = run_cli(
        capsys, "stylize", content_path, tmp_path / "missing.png", "-o", out, *FAST
    )
    assert code == 2 and out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.png", "content.png", "style.png"]
    )


def test_nothing_the_user_had_is_replaced_unasked(tmp_path, capsys, content_path, style_path):
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    out.write_bytes(b"precious")
    metrics.write_text("{}")
    snapshot = tmp_path / "snap_step00002.png"
    snapshot.write_bytes(b"an earlier run's")
    photo = content_path.read_bytes()
    refusals = {
        # an existing output, metrics file or snapshot: only with --overwrite
        "output": ([content_path, style_path, "-o", out], "--overwrite"),
        "metrics": (
            [content_path, style_path, "-o", tmp_path / "new.png", "--metrics", metrics],
            "--overwrite",
        ),
        "snapshot": (
            [content_path, style_path, "-o", tmp_path / "snap.png", "--save-every", 2],
            "--overwrite",
        ),
        # an input: never, not even with --overwrite (the photo, a painting, a mask)
        "photo": ([content_path, style_path, "-o", content_path, "--overwrite"], "inputs"),
        "painting": (
            [content_path, f"{style_path}:0.5", content_path, "-o", style_path, "--overwrite"],
            "inputs",
        ),
        "mask": (
            [
                content_path,
                style_path,
                "-o",
                content_path,
                "--protect",
                content_path,
                "--overwrite",
            ],
            "inputs",
        ),
    }
    for name, (argv, mention) in refusals.items():
        code, _, err = run_cli(capsys, "stylize", *argv, *FAST)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and mention in lines[0], (name, err)
    assert out.read_bytes() == b"precious" and metrics.read_text() == "{}"
    assert snapshot.read_bytes() == b"an earlier run's" and content_path.read_bytes() == photo
    assert not (tmp_path / "new.png").exists() and not (tmp_path / "snap.png").exists()

    code, _, err = run_cli(
        capsys,
        "stylize",
        content_path,
        style_path,
        "-o",
        out,
        *FAST,
        "--overwrite",
        "--metrics",
        metrics,
    )
    assert code == 0, err
    assert Image.open(out).size == (48, 32) and json.loads(metrics.read_text())["steps"] == 3

    # batch and explain follow the same rule
    code, _, err = run_cli(
        capsys,
        "batch",
        content_path,
        "--style",
        style_path,
        "-o",
        tmp_path,
        "--format",
        "png",
        *FAST,
        "--overwrite",
        "--metrics",
        content_path,
    )
    assert code == 2 and "inputs" in err and content_path.read_bytes() == photo
    report = tmp_path / "r.html"
    report.write_text("mine")
    code, _, err = run_cli(
        capsys, "explain", content_path, style_path, "-o", report, "--weights", "offline", "--quiet"
    )
    assert code == 2 and "--overwrite" in err and report.read_text() == "mine"


def test_presets_and_weights_listing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path))
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0 and "chollet" in out and "gatys" in out and "offline" in out
    code, out, _ = run_cli(capsys, "weights", "list")
    assert code == 0 and "vgg19" in out and "not cached" in out
    code, out, _ = run_cli(capsys, "weights", "where")
    assert code == 0 and str(tmp_path) in out


def test_ctrl_c_saves_the_latest_image_and_exits_cleanly(tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    cmd = [
        sys.executable,
        "-m",
        "painterly",
        "stylize",
        str(content_path),
        str(style_path),
        "-o",
        str(out),
        "--weights",
        "offline",
        "--size",
        "48",
        "--steps",
        "100000",
        "--save-every",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("out_step*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert Image.open(out).size == (48, 32)


def test_console_script_and_module_run(tmp_path):
    env = {**os.environ, "PAINTERLY_CACHE": str(tmp_path)}
    for cmd in (["painterly"], [sys.executable, "-m", "painterly"]):
        done = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env=env)
        assert done.returncode == 0 and done.stdout.startswith("painterly ")
