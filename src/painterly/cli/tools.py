"""``painterly weights``, ``presets``, ``explain`` and ``serve``: thin shells around the
weights cache, the presets, the report (painterly.report) and the web app (painterly.web)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from painterly.cli.common import (
    EXIT_OK,
    add_option_flags,
    add_settings_flags,
    claim_output,
    given_settings,
    require_extra,
)
from painterly.config import CONTROL_PRESETS, PRESET_ABOUT, PRESETS, Options, option_fields
from painterly.errors import OptionsError, PainterlyError
from painterly.report import REPORT_SIZE, REPORT_STEPS, ReportConfig


def add_explain_options(parser: argparse.ArgumentParser) -> None:
    """The Options flags of ``painterly explain``, with the report's own size and steps."""
    add_option_flags(parser, defaults={"size": f"{REPORT_SIZE}", "steps": f"{REPORT_STEPS}"})


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``painterly explain`` besides the Options flags (:func:`add_explain_options`)."""
    parser.add_argument("content", help="the photo")
    parser.add_argument("style", help="the painting")
    parser.add_argument("-o", "--output", required=True, help="report file (.html)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the report file if it exists"
    )
    add_settings_flags(parser, ReportConfig)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


BUILT_IN_ENCODERS = (
    (
        "offline",
        "offline",
        "a fixed encoder designed to stylise without pretrained weights "
        "(what `auto` runs when no VGG19 is cached); nothing to download",
    ),
    (
        "random-vgg19",
        "vgg19",
        "VGG19's architecture with random weights, for comparison and tests; no download",
    ),
)


def _wrapped(text: str) -> str:
    return textwrap.fill(text, 96, initial_indent=" " * 4, subsequent_indent=" " * 4)


def cmd_weights(args: argparse.Namespace) -> int:
    from painterly.encoders import cache
    from painterly.encoders.registry import registry_entry

    if args.action == "where":
        print(cache.cache_dir() / "weights")
    elif args.action == "list":
        for row in cache.describe():
            state = row["path"] or f"not cached: painterly weights fetch {row['name']}"
            print(f"{row['name']:<18} {row['arch']:<8} {row['size_mb']:>5} MB  {state}")
            print(_wrapped(f"{row['description'].rstrip('.')}. Licence: {row['licence']}"))
        for name, arch, about in BUILT_IN_ENCODERS:
            print(f"{name:<18} {arch:<8} built in  always here")
            print(_wrapped(about))
    elif args.action == "fetch":
        ws = registry_entry(args.name)
        print(cache.checked_path(ws) or cache.download(ws))
    elif args.action == "import":
        print(cache.import_file(args.path, args.name))
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    base = Options()
    for name, opts in PRESETS.items():
        changed = {
            f.name: getattr(opts, f.name)
            for f in option_fields()
            if f.name != "preset" and getattr(opts, f.name) != getattr(base, f.name)
        }
        print(textwrap.fill(f"{name:<12} {PRESET_ABOUT[name]}", 96, subsequent_indent=" " * 13))
        if changed:
            shown = ", ".join(
                f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                for k, v in changed.items()
            )
            print(textwrap.fill(shown, 96, initial_indent=" " * 13, subsequent_indent=" " * 13))
    print(
        f"\n{', '.join(CONTROL_PRESETS)} turn their control on the offline preset where the "
        "offline encoder runs."
    )
    return EXIT_OK


def check_report_path(path: str | os.PathLike) -> Path:
    """Refuse a report path that cannot be written, before the slow part."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise OptionsError(f"{path}: the report is an HTML file; give a name ending in .html")
    if path.is_dir():
        raise OptionsError(f"{path} is a directory; give a file name such as report.html")
    parent = path.parent
    if not parent.is_dir():
        raise OptionsError(f"cannot write {path}: {parent} is not an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionsError(f"cannot write {path}: directory {parent} is not writable")
    return path


def cmd_explain(args: argparse.Namespace) -> int:
    from painterly.files import write_text
    from painterly.progress import ProgressPrinter
    from painterly.report import explain

    given = given_settings(args, Options)
    output = check_report_path(args.output)
    claim_output(output, [args.content, args.style], args.overwrite)
    printer = ProgressPrinter(quiet=args.quiet)

    def on_stage(number: int, total: int, what: str) -> None:
        printer.close()
        if not args.quiet:
            counter = f"[{number}/{total}] " if number else ""
            print(f"painterly: {counter}{what}", file=sys.stderr, flush=True)

    try:
        report = explain(
            args.content,
            args.style,
            **given_settings(args, ReportConfig),
            callback=printer,
            on_stage=on_stage,
            progress=not args.quiet,
            **given,
        )
    finally:
        printer.close()
    try:
        write_text(output, report.html)
    except OSError as exc:
        raise PainterlyError(f"could not write {output} ({exc.strerror or exc})") from None
    if not args.quiet:
        size_kb = len(report.html.encode("utf-8")) / 1024
        print(
            f"painterly: wrote {output} ({size_kb:.0f} KB, {report.seconds:.0f} s)",
            file=sys.stderr,
        )
    return EXIT_OK


# What ``pip install "painterly[web]"`` adds; ``painterly serve`` needs all of them.
WEB_MODULES = ("fastapi", "uvicorn", "starlette", "pydantic", "h11")


def cmd_serve(args: argparse.Namespace) -> int:  # `painterly serve`, see web/app.py
    require_extra("serve", "web", WEB_MODULES)
    # PyTorch and the web stack take seconds to load (more on a first run, which
    # compiles them): tell a person at a terminal that something is happening.
    if sys.stderr.isatty():
        print("painterly: starting the web app...", file=sys.stderr, flush=True)
    from painterly.web.app import serve
    from painterly.web.config import ServeConfig

    serve(ServeConfig(**given_settings(args, ServeConfig)))
    return EXIT_OK
