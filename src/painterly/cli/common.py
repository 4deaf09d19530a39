"""What every command shares: exit codes, the one-line argparse, option flags built from
:class:`painterly.config.Options`, and the checks that keep the user's files safe."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import typing
from dataclasses import fields
from pathlib import Path

from painterly import files
from painterly.config import (
    PRESETS,
    Options,
    check_weight,
    option_fields,
    preset,
)
from painterly.errors import OptionsError, PainterlyError
from painterly.settings import kind_of, parse_value

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool ended by SIGPIPE


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:
        # "argument --seed: --seed 5e+20 is out of range...": the option is named once.
        message = re.sub(r"^argument (--[\w-]+): (?=\1 )", "", message)
        self.exit(EXIT_USAGE, f"painterly: error: {message} (see --help)\n")


def flag_type(name: str, label: str | None = None, of: type = Options):
    """argparse ``type`` for option ``name`` of the settings class ``of``: config's parser
    and checks of its kind. ``label`` names a flag of a command's own that takes the same
    kind of value."""

    repeat = kind_of(name, of).repeat

    def parse(text: str):
        try:
            if repeat:  # one item of the list, whole (a comma in a path is the path's)
                return parse_value(name, [text], label, of=of)[0]
            return parse_value(name, text, label, of=of)
        except OptionsError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = kind_of(name, of).name  # argparse names the type in some messages
    return parse


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_settings_flags(
    parser: argparse.ArgumentParser,
    of: type,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    defaults: dict[str, str] | None = None,
    helps: dict[str, str] | None = None,
) -> None:
    """A flag for each field of the settings dataclass ``of`` (those in ``only`` if
    given, less ``skip``; never one declared ``cli=False``), with the help, kind and
    checks its declaration gives. A flag not given leaves the field unset in the
    namespace, so that the library's default (or a preset's) holds. ``defaults`` words
    the default shown where it is not the field's own, ``helps`` a help text that says
    more than the field's."""
    for f in fields(of):
        if not f.metadata.get("cli", True) or f.name in skip or (only and f.name not in only):
            continue
        flag = "--" + f.name.replace("_", "-")
        shown = (defaults or {}).get(f.name, _shown(f.default))
        help_text = (helps or {}).get(f.name, f.metadata["help"])
        if shown not in ("", "None"):  # an empty list or no value says nothing more
            help_text += f" (default: {shown})"
        kind = kind_of(f.name, of)
        if kind.name == "bool":
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                type=flag_type(f.name, of=of),
                action="append" if kind.repeat else "store",
                default=argparse.SUPPRESS,
                help=help_text + (" (repeatable)" if kind.repeat else ""),
                metavar=f.metadata.get("metavar") or f.name.split("_")[-1].upper(),
            )


def given_settings(args: argparse.Namespace, of: type) -> dict:
    """The fields of ``of`` whose flags were given, as parsed."""
    given = {f.name: getattr(args, f.name) for f in fields(of) if hasattr(args, f.name)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}


def option_defaults() -> dict[str, str]:
    """The default of each option as help shows it: the default preset's, and the
    offline preset's beside it where that differs (it is the base without pretrained
    weights)."""
    default, offline = PRESETS["default"], PRESETS["offline"]
    shown = {}
    for f in option_fields():
        ours, theirs = getattr(default, f.name), getattr(offline, f.name)
        text = _shown(ours)
        if f.name not in ("preset", "weights") and ours != theirs:
            text += f"; {_shown(theirs)} with the offline encoder"
        shown[f.name] = text
    return shown


def add_option_flags(
    parser: argparse.ArgumentParser,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    defaults: dict[str, str] | None = None,
    helps: dict[str, str] | None = None,
) -> None:
    """The flags of :class:`painterly.config.Options` that a command takes (see
    :func:`add_settings_flags`)."""
    named = f"a named set of defaults: {', '.join(PRESETS)} (painterly presets tells each)"
    add_settings_flags(
        parser,
        Options,
        only,
        skip,
        {**option_defaults(), **(defaults or {})},
        {"preset": named, **(helps or {})},
    )


def parse_style(spec: str) -> tuple[str, float]:
    """``painting.jpg:0.7`` -> (``painting.jpg``, 0.7); a bare path weighs 1."""
    path, sep, weight = spec.rpartition(":")
    if sep and path:
        try:
            float(weight)
        except ValueError:
            return spec, 1.0  # a colon that is part of the path
        return path, check_weight(weight, f"the weight of {path}")
    return spec, 1.0


OVERWRITE_HELP = "replace output files that already exist (never an input file)"


def claim_output(path: Path, inputs: list[str], overwrite: bool) -> Path:
    """Refuse, before anything slow, to write ``path`` over one of the ``inputs`` (even
    with --overwrite) or over any existing file without --overwrite: nothing the user
    had is replaced unasked. ``inputs`` are the paths the command reads. The output is
    then this run's until the command ends: another run told to write it is refused."""
    files.claims.claim(path)
    if path.is_dir():
        raise OptionsError(f"{path} is a folder; give the output a file name")
    if path.exists():
        for item in inputs:
            if os.path.exists(item) and os.path.samefile(item, path):
                raise OptionsError(f"{path} is one of the inputs; write the result elsewhere")
        if not overwrite:
            raise OptionsError(f"{path} exists; pass --overwrite to replace it")
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    """Create and remove a temporary file beside ``path``: permissions alone do not tell
    (root may write anywhere, yet not under /proc; a read-only mount; a full inode table)."""
    if not path.parent.is_dir():
        raise OptionsError(f"cannot write {path}: {path.parent} is not an existing directory")
    probe = files.temp_path(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OptionsError(
            f"cannot write {path} ({reason}); choose another folder for the output"
        ) from None


def distinct_outputs(paths: list[Path]) -> None:
    """Refuse two outputs of one command that are the same file (the metrics written over
    the image, say): one would silently replace the other."""
    seen: dict[str, Path] = {}
    for path in paths:
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            raise OptionsError(
                f"{seen[key]} and {path} are the same file; give each output its own"
            )
        seen[key] = path


def output_folder(name: str) -> Path:
    """The folder the outputs go into, made if it is missing; its parent must exist, so
    that a typo further up the path is an error rather than a tree of new folders."""
    folder = Path(name)
    if folder.exists() and not folder.is_dir():
        raise OptionsError(f"{folder} is a file; give a folder for the outputs")
    if not folder.is_dir():
        if not folder.parent.is_dir():
            raise OptionsError(
                f"cannot make output folder {folder}: {folder.parent} does not exist"
            )
        try:
            folder.mkdir()
        except FileExistsError:
            pass  # made by another process meanwhile: as good
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise OptionsError(f"cannot make output folder {folder} ({reason})") from None
    return folder


def input_files(args: argparse.Namespace, given: dict) -> list[str]:
    """The files a command reads: photos, paintings, and any option naming a file (masks,
    --init, a weights file)."""
    contents = [args.content] if hasattr(args, "content") else list(args.contents)
    # stylize: a list of paintings; batch: a list of lists (one per --style)
    specs = [s for item in args.styles for s in ([item] if isinstance(item, str) else item)]
    paintings = [parse_style(s)[0] for s in specs]
    named = [v for v in given.values() if isinstance(v, str) and os.path.isfile(v)]
    return [*contents, *paintings, *named]


def write_metrics(path: Path, data: dict, kept: str) -> None:
    """Write the metrics JSON; a failure (a full disk) is one line, and says that the
    images, written before, are kept."""
    try:
        files.write_json(path, data)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PainterlyError(f"could not write metrics to {path} ({reason}); {kept}") from None


def given_options(args: argparse.Namespace) -> dict:
    """The option flags given on the command line, checked now, before anything slow.

    The core gets the flags themselves rather than a full Options, so that the default
    preset can give way to the offline one when there are no weights.
    """
    given = given_settings(args, Options)
    preset(given.get("preset", "default")).replace(**given)
    return given


def metrics_path_of(args: argparse.Namespace) -> Path | None:
    metrics_path = Path(args.metrics) if args.metrics else None
    if metrics_path and not (
        metrics_path.parent.is_dir() and os.access(metrics_path.parent, os.W_OK)
    ):
        raise OptionsError(
            f"cannot write metrics to {metrics_path}: its folder is missing or read-only"
        )
    return metrics_path


def stoppable(callback, stop):
    """``callback``, then the signal policy's check (painterly.signals)."""

    def both(event) -> None:
        callback(event)
        stop.check(event)

    return both


def closing_line(stop, interrupted: bool, stopped: str, done: str, quiet: bool) -> int:
    """The last line of a run on stderr and its exit code: ``stopped`` and 130/143 after
    an interruption or a signal (painterly.signals), else ``done`` (unless quiet) and 0."""
    if interrupted or stop.asked:
        print(f"painterly: {stopped}", file=sys.stderr)
        return stop.exit_code or EXIT_INTERRUPTED
    if not quiet:
        print(f"painterly: {done}", file=sys.stderr)
    return EXIT_OK


def require_extra(command: str, extra: str, modules: tuple[str, ...]) -> None:
    """Import ``modules`` (what ``pip install "painterly[extra]"`` adds); where one is
    missing, one line says which extra ``painterly command`` needs."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            if (err.name or "").split(".")[0] not in modules:
                raise  # something else is broken: show it, do not blame the extra
            raise PainterlyError(
                f"painterly {command} needs the {extra} extra ({err.name} is missing): "
                f'pip install "painterly[{extra}]"'
            ) from None
