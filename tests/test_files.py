"""The one atomic writer: whole files or none, and no temporary files left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from painterly import files


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_writer(path, "w") as f:
        f.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.json"
    files.write_json(path, {"a": 1})
    assert path.read_text().strip() == '{\n "a": 1\n}'
    assert os.listdir(tmp_path) == ["out.json"]


def test_temporary_files_of_dead_processes_are_swept_on_the_next_write(tmp_path):
    # A child process opens a temporary file and is killed before it can rename it.
    code = (
        "import os, sys; from painterly import files; "
        "p = files.temp_path(__import__('pathlib').Path(sys.argv[1])); p.write_text('x'); "
        "print(p, flush=True); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "img.png")], capture_output=True, text=True
    )
    left = tmp_path / proc.stdout.strip()
    assert left.exists()
    live = files.temp_path(tmp_path / "other.png")  # this process is alive: kept
    live.write_text("y")
    stranger = tmp_path / ".notes.tmp"  # not ours: kept
    stranger.write_text("z")
    files.write_bytes(tmp_path / "img.png", b"png")
    assert not left.exists()
    assert live.exists() and stranger.exists()
    assert (tmp_path / "img.png").read_bytes() == b"png"
