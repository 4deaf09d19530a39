"""One signal policy for command-line runs: the first SIGINT or SIGTERM stops after the
step and saves, a second stops at once and still saves, a third quits without saving;
no temporary file is ever left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from PIL import Image
from synthetic import default_sigint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(tmp_path, content_path, style_path, size=160):
    out = tmp_path / "out.png"
    cmd = [sys.executable, "-m", "painterly", "stylize", str(content_path), str(style_path)]
    cmd += ["-o", str(out), "--weights", "offline", "--size", str(size), "--scales", "1"]
    cmd += ["--steps", "100000", "--save-every", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("out_step*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    return proc, out


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_after_the_step_and_saves(tmp_path, content_path, style_path, sig, code):
    proc, out = _start(tmp_path, content_path, style_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and signal.Signals(sig).name in err
    assert "saved the latest image" in err
    assert Image.open(out).size == (160, 107)
    assert not _leftovers(tmp_path)


def test_a_second_ctrl_c_still_saves(tmp_path, content_path, style_path):
    proc, out = _start(tmp_path, content_path, style_path, size=320)
    proc.send_signal(signal.SIGINT)
    heard = proc.stderr.readline()  # the first signal is taken: send the second
    assert "stopping after this step" in heard, heard
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = heard + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert Image.open(out).size == (320, 213)
    assert not _leftovers(tmp_path)


def test_a_third_signal_quits_without_a_traceback_or_a_temporary_file(
    tmp_path, content_path, style_path
):
    proc, out = _start(tmp_path, content_path, style_path, size=320)
    for _ in range(3):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not _leftovers(tmp_path)
    if out.exists():  # the third came after the save: then the image is whole
        assert Image.open(out).size == (320, 213)


def test_the_policy_step_by_step():
    from painterly.events import Progress, Started, Stop
    from painterly.signals import StopSignals

    said = []
    progress = Progress(1, 10, {"total": 1.0}, 0.1)
    # A long step: the second signal interrupts it at once.
    stop = StopSignals(said.append)
    stop.check(progress)  # nothing asked yet: the run goes on
    stop._handle(signal.SIGTERM, None)
    stop.check(Started(10, (8, 8), "tiny", "cpu"))  # only a step's end stops the run
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)
    assert stop.exit_code == 143 and not stop.aborted
    # A short step: the run stopped at its end, so the second signal waits for the save.
    stop = StopSignals(said.append)
    stop._handle(signal.SIGINT, None)
    with pytest.raises(Stop):
        stop.check(progress)
    stop._handle(signal.SIGINT, None)
    with stop.saving(), pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)  # the third quits
    assert stop.aborted and stop.exit_code == 130 and len(said) == 5
    assert said[-2:] == [
        "SIGINT: saving the latest image (a third time: quit without saving)",
        "SIGINT: quitting without saving",
    ]
