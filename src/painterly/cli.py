"""The command line: a thin shell around :func:`painterly.run`.

Flags of ``stylize`` are built from the fields of :class:`painterly.config.Options`, so
the CLI has no defaults of its own; a flag that is not given leaves the preset's value.
``main(argv)`` returns the exit code: 0 done, 2 bad input, 130 interrupted (the latest
image is saved first).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time
import typing
from pathlib import Path

from painterly import __version__, files
from painterly.config import (
    PRESETS,
    Options,
    check_weight,
    kind_of,
    option_fields,
    parse_value,
    preset,
)
from painterly.errors import OptionsError, PainterlyError
from painterly.report import REPORT_SIZE, REPORT_STEPS

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool ended by SIGPIPE


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:
        # "argument --seed: --seed 5e+20 is out of range...": the option is named once.
        message = re.sub(r"^argument (--[\w-]+): (?=\1 )", "", message)
        self.exit(EXIT_USAGE, f"painterly: error: {message} (see --help)\n")


def _flag_type(name: str):
    """argparse ``type`` for option ``name``: config's parser and checks of its kind."""

    def parse(text: str):
        try:
            return parse_value(name, text)
        except OptionsError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = kind_of(name).name  # argparse names the type in some messages
    return parse


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    defaults = PRESETS["default"]
    for f in option_fields():
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        shown = ",".join(value) if isinstance(value, tuple) else value
        help_text = f"{f.metadata.get('help', '')} (default: {shown})"
        if kind_of(f.name).name == "bool":
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                type=_flag_type(f.name),
                default=argparse.SUPPRESS,
                help=help_text,
                metavar=f.name.split("_")[-1].upper(),
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
    had is replaced unasked. ``inputs`` are the paths the command reads."""
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


def _inputs(args: argparse.Namespace, given: dict) -> list[str]:
    """The files a command reads: photos, paintings, and any option naming a file (masks,
    --init, a weights file)."""
    contents = [args.content] if hasattr(args, "content") else list(args.contents)
    # stylize: a list of paintings; batch: a list of lists (one per --style)
    specs = [s for item in args.styles for s in ([item] if isinstance(item, str) else item)]
    paintings = [parse_style(s)[0] for s in specs]
    named = [v for v in given.values() if isinstance(v, str) and os.path.isfile(v)]
    return [*contents, *paintings, *named]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="painterly", description="Neural style transfer.")
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    st = sub.add_parser("stylize", help="paint a photo in the style of one or more paintings")
    st.add_argument("content", help="the photo")
    st.add_argument("styles", nargs="+", help="painting(s); PATH:WEIGHT blends several")
    st.add_argument("-o", "--output", required=True, help="output image (.png .jpg .webp .tif)")
    st.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    _add_option_flags(st)
    st.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N steps as OUTPUT_stepN.ext",
    )
    st.add_argument("--metrics", metavar="FILE.json", help="write timings and losses as JSON")
    st.add_argument("--quiet", action="store_true", help="no progress bar")

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
    ba.add_argument("-o", "--output-dir", required=True, metavar="OUTDIR", help="existing folder")
    ba.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ba.add_argument(
        "--format", default="png", choices=("png", "jpg", "webp", "tif"), help="(default: png)"
    )
    ba.add_argument(
        "--batch-size",
        type=int,
        default=0,
        metavar="N",
        help="at most N images at once (default 0: as many as fit in memory)",
    )
    _add_option_flags(ba)
    ba.add_argument("--metrics", metavar="FILE.json", help="write timings and losses as JSON")
    ba.add_argument("--quiet", action="store_true", help="no progress bar")

    w = sub.add_parser("weights", help="list, fetch, import or locate pretrained weights")
    wsub = w.add_subparsers(dest="action", required=True, parser_class=_Parser)
    wsub.add_parser("list", help="known weight sets and whether they are cached")
    fetch = wsub.add_parser("fetch", help="download a weight set into the cache")
    fetch.add_argument("name")
    imp = wsub.add_parser("import", help="copy a weights file you downloaded into the cache")
    imp.add_argument("path")
    imp.add_argument("--name", help="registry name it stands for (detected from the hash)")
    wsub.add_parser("where", help="print the cache directory")

    sub.add_parser("presets", help="list the presets and what they set")

    # --- `painterly explain`: the HTML report (implemented in painterly.report) ---
    ex = sub.add_parser(
        "explain",
        help="write a self-contained HTML report that shows what each loss does",
        conflict_handler="resolve",  # _add_explain_arguments replaces --size/--steps
    )
    _add_option_flags(ex)
    _add_explain_arguments(ex)
    # --- end explain ---

    # --- `painterly serve`: the web app (implemented in painterly.web) ---
    serve = sub.add_parser("serve", help="open the web page: upload, paint and watch it form")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: 8000; 0: any free)"
    )
    serve.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where uploads and results go (default: $PAINTERLY_DATA/web, else "
        "~/.local/share/painterly/web)",
    )
    # --- end serve ---
    return parser


def _add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``painterly explain``, added after the Options flags; ``--size`` and
    ``--steps`` replace theirs (the parser resolves conflicts) to show the report's own
    defaults."""
    parser.add_argument("content", help="the photo")
    parser.add_argument("style", help="the painting")
    parser.add_argument("-o", "--output", required=True, help="report file (.html)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the report file if it exists"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=argparse.SUPPRESS,
        metavar="SIZE",
        help=f"long side of the stylisation in px (default: {REPORT_SIZE})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=argparse.SUPPRESS,
        metavar="STEPS",
        help=f"steps of the stylisation (default: {REPORT_STEPS})",
    )
    parser.add_argument(
        "--recon-size",
        type=int,
        metavar="PX",
        help="long side of each reconstruction in px (default: two thirds of --size)",
    )
    parser.add_argument(
        "--recon-steps",
        type=int,
        metavar="N",
        help="L-BFGS steps of each reconstruction (default: half of --steps)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _write_metrics(path: Path, data: dict, kept: str) -> None:
    """Write the metrics JSON; a failure (a full disk) is one line, and says that the
    images, written before, are kept."""
    try:
        files.write_json(path, data)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PainterlyError(f"could not write metrics to {path} ({reason}); {kept}") from None


def _step_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:05d}{output.suffix}")


def _is_step_path(output: Path, path: Path) -> bool:
    """Whether ``path`` is the name of one of ``output``'s --save-every snapshots."""
    folder = os.path.realpath(output.parent)
    name = re.escape(output.stem) + r"_step\d{5,}" + re.escape(output.suffix)
    return os.path.realpath(path.parent) == folder and re.fullmatch(name, path.name) is not None


def _given_options(args: argparse.Namespace) -> dict:
    """The option flags given on the command line, checked now, before anything slow.

    The core gets the flags themselves rather than a full Options, so that the default
    preset can give way to the offline one when there are no weights.
    """
    given = {f.name: getattr(args, f.name) for f in option_fields() if hasattr(args, f.name)}
    preset(given.get("preset", "default")).replace(**given)
    return given


def _metrics_path(args: argparse.Namespace) -> Path | None:
    metrics_path = Path(args.metrics) if args.metrics else None
    if metrics_path and not (
        metrics_path.parent.is_dir() and os.access(metrics_path.parent, os.W_OK)
    ):
        raise OptionsError(
            f"cannot write metrics to {metrics_path}: its folder is missing or read-only"
        )
    return metrics_path


def _cmd_stylize(args: argparse.Namespace) -> int:
    from painterly.api import run
    from painterly.events import Notice
    from painterly.image import check_output_path, save_image
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = _given_options(args)
    inputs = _inputs(args, given)
    output = claim_output(check_output_path(args.output), inputs, args.overwrite)
    metrics_path = _metrics_path(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    if args.save_every < 0:
        raise OptionsError("--save-every must be >= 0")
    distinct_outputs([output, metrics_path] if metrics_path else [output])
    if args.save_every:  # another run's snapshots would be mixed with this one's
        pattern = f"{glob.escape(output.stem)}_step*{glob.escape(output.suffix)}"
        for earlier in sorted(output.parent.glob(pattern)):
            claim_output(earlier, inputs, args.overwrite)
        if metrics_path and _is_step_path(output, metrics_path):
            raise OptionsError(f"{metrics_path} is where a --save-every snapshot goes")

    printer = ProgressPrinter(quiet=args.quiet)
    failed_snapshots: list[int] = []

    def on_event(event) -> None:
        printer(event)
        if getattr(event, "image", None) is None or failed_snapshots:
            return
        step_path = _step_path(output, event.step)
        try:
            save_image(event.image, step_path, {"painterly:step": str(event.step)})
        except PainterlyError as err:  # a snapshot is a by-product: the run goes on
            failed_snapshots.append(event.step)
            printer(Notice(f"{err}; no more snapshots this run"))

    styles = [parse_style(s) for s in args.styles]
    with StopSignals(printer.say) as stop:
        try:
            result = run(
                args.content,
                styles,
                callback=_stoppable(on_event, stop),
                preview_every=args.save_every,
                **given,
            )
        finally:
            printer.close()
        if stop.aborted:
            raise KeyboardInterrupt
        with stop.saving():
            save_image(result.image, output, result.metadata)
            if metrics_path:
                _write_metrics(metrics_path, result.metrics, f"the image {output} is written")
    if result.interrupted or stop.asked:
        print(
            f"painterly: interrupted after {result.metrics['steps']} steps; "
            f"saved the latest image to {output}",
            file=sys.stderr,
        )
        return stop.exit_code or EXIT_INTERRUPTED
    if not args.quiet:
        print(
            f"painterly: wrote {output} ({result.metrics['seconds']:.1f} s, "
            f"{result.metrics['ms_per_step']:.0f} ms/step)",
            file=sys.stderr,
        )
    return EXIT_OK


def _stoppable(callback, stop):
    """``callback``, then the signal policy's check (painterly.signals)."""

    def both(event) -> None:
        callback(event)
        stop.check(event)

    return both


def _style_label(specs: list[tuple[str, float]]) -> str:
    """``a.jpg:0.7 b.jpg:0.3`` -> ``a+b``: a style's part of an output name."""
    return "+".join(Path(path.rstrip("/\\")).stem or "style" for path, _ in specs)


def _cmd_batch(args: argparse.Namespace) -> int:
    from painterly.batch import run_batch
    from painterly.image import check_output_path, save_image
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = _given_options(args)
    inputs = _inputs(args, given)
    metrics_path = _metrics_path(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    outdir = Path(args.output_dir)
    if not outdir.is_dir():
        raise OptionsError(f"output folder {outdir} does not exist; create it first")
    if args.batch_size < 0:
        raise OptionsError("--batch-size must be 0 (as many as fit) or more")
    styles = [[parse_style(s) for s in specs] for specs in args.styles]
    items, outputs = [], []
    for content in args.contents:
        for specs in styles:
            name = f"{Path(content).stem}_{_style_label(specs)}.{args.format}"
            output = claim_output(check_output_path(outdir / name), inputs, args.overwrite)
            if output in outputs:
                raise OptionsError(
                    f"two items would both write {output}; give the inputs different file names"
                )
            items.append((content, specs))
            outputs.append(output)
    distinct_outputs([*outputs, metrics_path] if metrics_path else outputs)

    printer = ProgressPrinter(quiet=args.quiet)
    start = time.perf_counter()
    with StopSignals(printer.say) as stop:
        try:
            results = run_batch(
                items, callback=_stoppable(printer, stop), max_batch=args.batch_size, **given
            )
        finally:
            printer.close()
        if stop.aborted:
            raise KeyboardInterrupt
        with stop.saving():
            seconds = time.perf_counter() - start
            done = [(i, out, r) for i, out, r in zip(items, outputs, results, strict=True) if r]
            for _, output, result in done:
                save_image(result.image, output, result.metadata)
    if metrics_path:
        _write_metrics(
            metrics_path,
            {
                "images": len(done),
                "seconds": round(seconds, 3),
                "images_per_s": round(len(done) / seconds, 4),
                "items": [
                    {"content": c, "style": s, "output": str(o), **r.metrics}
                    for (c, s), o, r in done
                ],
            },
            f"the {len(done)} images in {outdir} are written",
        )
    if any(r.interrupted for _, _, r in done) or stop.asked:
        print(
            f"painterly: interrupted; saved {len(done)} of {len(items)} images to {outdir}",
            file=sys.stderr,
        )
        return stop.exit_code or EXIT_INTERRUPTED
    if not args.quiet:
        print(
            f"painterly: wrote {len(done)} image{'s' * (len(done) != 1)} to {outdir} "
            f"({seconds:.1f} s, {len(done) / seconds:.3g} images/s)",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_weights(args: argparse.Namespace) -> int:
    from painterly.encoders import cache
    from painterly.encoders.registry import registry_entry

    if args.action == "where":
        print(cache.cache_dir() / "weights")
    elif args.action == "list":
        for row in cache.describe():
            state = row["path"] or "not cached"
            print(f"{row['name']:<20} {row['arch']:<6} {row['size_mb']:>4} MB  {state}")
            print(f"{'':<20} {row['description']} Licence: {row['licence']}")
    elif args.action == "fetch":
        ws = registry_entry(args.name)
        print(cache.checked_path(ws) or cache.download(ws))
    elif args.action == "import":
        print(cache.import_file(args.path, args.name))
    return EXIT_OK


def _cmd_presets(args: argparse.Namespace) -> int:
    base = Options()
    for name, opts in PRESETS.items():
        changed = {
            f.name: getattr(opts, f.name)
            for f in option_fields()
            if f.name != "preset" and getattr(opts, f.name) != getattr(base, f.name)
        }
        desc = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the defaults"
        print(f"{name:<12} {desc}")
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


def _cmd_explain(args: argparse.Namespace) -> int:
    from painterly.files import write_text
    from painterly.progress import ProgressPrinter
    from painterly.report import explain

    given = {f.name: getattr(args, f.name) for f in option_fields() if hasattr(args, f.name)}
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
            recon_size=args.recon_size,
            recon_steps=args.recon_steps,
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
WEB_MODULES = ("fastapi", "uvicorn", "starlette", "pydantic")


def _cmd_serve(args: argparse.Namespace) -> int:  # `painterly serve`, see web/app.py
    try:
        from painterly.web import serve
    except ImportError as err:
        if (err.name or "").split(".")[0] not in WEB_MODULES:
            raise
        raise PainterlyError(
            f"painterly serve needs the web extra ({err.name} is missing): "
            'pip install "painterly[web]"'
        ) from None

    serve(args.host, args.port, args.data_dir)
    return EXIT_OK


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
    """Run the CLI; returns the exit code instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    commands = {
        "stylize": _cmd_stylize,
        "batch": _cmd_batch,
        "weights": _cmd_weights,
        "presets": _cmd_presets,
        "explain": _cmd_explain,
        "serve": _cmd_serve,
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
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
