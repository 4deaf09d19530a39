"""The command line: a thin shell around :func:`painterly.run`.

Flags of ``stylize`` are built from the fields of :class:`painterly.config.Options`, so
the CLI has no defaults of its own; a flag that is not given leaves the preset's value.
``main(argv)`` returns the exit code: 0 done, 2 bad input, 130 after Ctrl-C and 143
after SIGTERM (the latest image is saved first, see painterly.signals), 141 when the
reader of stdout goes away. The commands live in ``run`` (stylize, batch) and ``tools``
(weights, presets, explain, serve); what they share in ``common``.
"""

from __future__ import annotations

import argparse
import os
import sys

# OpenMP threads that spin while they wait for work take the cores from other processes
# and from each other on a busy machine; waiting passively is as fast on a quiet one
# (benchmarks/results/bench_threads_cpu.jsonl). Set before torch loads OpenMP; a value
# the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from painterly import __version__, files  # noqa: E402
from painterly.cli import fast
from painterly.cli.cluster import add_ray_flags
from painterly.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    OVERWRITE_HELP,
    Parser,
    add_option_flags,
    add_settings_flags,
    parse_style,
)
from painterly.cli.run import cmd_batch, cmd_stylize
from painterly.cli.tools import (
    add_explain_arguments,
    add_explain_options,
    cmd_explain,
    cmd_presets,
    cmd_serve,
    cmd_weights,
)
from painterly.cli.video import add_video_parser, cmd_video
from painterly.config import ONE_PHOTO, BatchConfig, StylizeConfig
from painterly.errors import PainterlyError
from painterly.settings import named_as_flags
from painterly.web.config import ServeConfig

__all__ = ["build_parser", "main", "parse_style"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="painterly", description="Neural style transfer.")
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_stylize(sub)
    _add_batch(sub)
    _add_weights(sub)
    sub.add_parser("presets", help="list the presets and what they set")
    ex = sub.add_parser(
        "explain", help="write a self-contained HTML report that shows what each loss does"
    )
    add_explain_options(ex)  # the report: painterly.report
    add_explain_arguments(ex)
    _add_serve(sub)
    fast.add_parsers(sub)  # train, apply, models, export (painterly.fast)
    add_video_parser(sub)  # `painterly video`, see cli/video.py
    return parser


def _add_stylize(sub) -> None:
    st = sub.add_parser("stylize", help="paint a photo in the style of one or more paintings")
    st.add_argument("content", help="the photo")
    st.add_argument("styles", nargs="+", help="painting(s); PATH:WEIGHT blends several")
    st.add_argument("-o", "--output", required=True, help="output image (.png .jpg .webp .tif)")
    st.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    add_option_flags(st)
    add_settings_flags(st, StylizeConfig)
    st.add_argument("--metrics", metavar="FILE.json", help="write timings and losses as JSON")
    st.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_batch(sub) -> None:
    ba = sub.add_parser(
        "batch",
        help="paint several photos (and/or with several styles) at once, batched for speed",
        description="Stylise every CONTENT with every --style; photos whose outputs have "
        "the same size go through the network together. Writes OUTDIR/CONTENT_STYLE.EXT "
        "(never over an existing file unless --overwrite) and reports images per second.",
    )
    ba.add_argument("contents", nargs="+", metavar="CONTENT", help="the photos")
    ba.add_argument(
        "--style",
        dest="styles",
        nargs="+",
        action="append",
        required=True,
        metavar="PAINTING",
        help="one style: painting(s), PATH:WEIGHT blends several; repeat for more styles",
    )
    ba.add_argument(
        "-o", "--output-dir", required=True, metavar="OUTDIR", help="folder (made if missing)"
    )
    ba.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ba.add_argument(
        "--format", default="png", choices=("png", "jpg", "webp", "tif"), help="(default: png)"
    )
    add_settings_flags(ba, BatchConfig)
    add_option_flags(ba, skip=ONE_PHOTO)
    ba.add_argument("--metrics", metavar="FILE.json", help="write timings and losses as JSON")
    ba.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_flags(ba)


def _add_weights(sub) -> None:
    w = sub.add_parser("weights", help="list, fetch, import or locate pretrained weights")
    wsub = w.add_subparsers(dest="action", required=True, parser_class=Parser)
    wsub.add_parser("list", help="known weight sets and whether they are cached")
    fetch = wsub.add_parser("fetch", help="download a weight set into the cache")
    fetch.add_argument("name")
    imp = wsub.add_parser("import", help="copy a weights file you downloaded into the cache")
    imp.add_argument("path")
    imp.add_argument("--name", help="registry name it stands for (detected from the hash)")
    wsub.add_parser("where", help="print the cache directory")


def _add_serve(sub) -> None:
    """``painterly serve``: the web app (painterly.web)."""
    serve = sub.add_parser("serve", help="open the web page: upload, paint and watch it form")
    add_settings_flags(serve, ServeConfig)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not report the
    closed pipe again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (captured output in tests)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting. Its messages name options
    by their flags."""
    with named_as_flags():
        return _main(argv)


def _out_of_memory(err: BaseException) -> bool:
    """A MemoryError, or torch's allocator refusing (a memory cap, a full GPU): where
    the pipeline cannot fall back to tiles, the run ends in one line."""
    if isinstance(err, MemoryError):
        return True
    if "torch" not in sys.modules:
        return False
    from painterly.pipeline import is_out_of_memory

    return is_out_of_memory(err)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    commands = {
        "stylize": cmd_stylize,
        "batch": cmd_batch,
        "weights": cmd_weights,
        "presets": cmd_presets,
        "explain": cmd_explain,
        "serve": cmd_serve,
        **dict.fromkeys(fast.COMMANDS, fast.dispatch),
        "video": cmd_video,
    }
    try:
        code = commands[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe is seen while it can be handled
        return code
    except BrokenPipeError:  # `painterly presets | head -1`: the reader has had enough
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except PainterlyError as err:
        print(f"painterly: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else "MemoryError"
        print(
            f"painterly: error: out of memory ({first}); try a smaller --size, a --max-memory "
            "below what this machine may use, or --tile",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except OSError as err:  # the machine's, not the user's: a full disk, a lost mount
        where = f"{err.filename}: " if err.filename else ""
        print(f"painterly: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        files.claims.release()  # the outputs are written, or the command gave up
