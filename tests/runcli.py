"""The one way the tests run the command line in-process."""

from __future__ import annotations

from typing import NamedTuple

from painterly.cli import main


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(capsys, *argv) -> Ran:
    """``painterly ARGV`` (each argument as text), its exit code and what it printed."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)
