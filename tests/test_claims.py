"""Two runs told to write the same output: the second is refused in one line while the
first runs, and the output is free again once the first has ended, even killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from painterly.cli import main


def _stylize(content, style, out, *extra) -> list[str]:
    argv = [sys.executable, "-m", "painterly", "stylize", str(content), str(style), "-o", str(out)]
    return argv + ["--weights", "offline", "--size", "48", "--scales", "1", *extra]


def _short(argv) -> subprocess.CompletedProcess:
    """A run of two steps, to its end."""
    return subprocess.run([*argv, "--steps", "2"], capture_output=True, text=True, timeout=120)


def _running(tmp_path, argv) -> subprocess.Popen:
    """A long run, once it has claimed its output and taken its first steps."""
    proc = subprocess.Popen(
        [*argv, "--steps", "100000", "--save-every", "1", "--quiet"], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*_step*.png")):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the first run took no step in two minutes"
        time.sleep(0.05)  # polls another process's files: there is no event to wait on
    return proc


def test_a_second_run_to_the_same_new_file_is_refused(tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    first = _running(tmp_path, _stylize(content_path, style_path, out))
    try:
        again = _short(_stylize(content_path, style_path, out))
        assert again.returncode == 2, again.stderr
        assert "another painterly run is writing" in again.stderr
        assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not out.exists()  # the killed run wrote nothing; the refused one neither
    # The kernel dropped the dead run's claim: the output is free.
    done = _short(_stylize(content_path, style_path, out))
    assert done.returncode == 0, done.stderr
    assert out.exists()


def test_a_batch_into_a_folder_another_batch_is_filling_is_refused(
    tmp_path, content_path, style_path, capsys
):
    outdir = tmp_path / "out"
    outdir.mkdir()
    argv = [sys.executable, "-m", "painterly", "batch", str(content_path), "--style"]
    argv += [str(style_path), "-o", str(outdir), "--weights", "offline", "--size", "48"]
    first = subprocess.Popen([*argv, "--steps", "100000"], stderr=subprocess.PIPE)
    try:
        # Its progress bar starts once its outputs are claimed and the work has begun.
        assert first.stderr.read(1), first.communicate()[1]
        code = main(
            ["batch", str(content_path), "--style", str(style_path), "-o", str(outdir)]
            + ["--weights", "offline", "--size", "48", "--steps", "1", "--quiet"]
        )
        err = capsys.readouterr().err
        assert code == 2 and "another painterly run is writing" in err, err
        assert err.count("\n") == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not list(outdir.iterdir())
