"""The command line: a thin shell around :func:`painterly.run`.

Flags of ``stylize`` are built from the fields of :class:`painterly.config.Options`, so
the CLI has no defaults of its own; a flag that is not given leaves the preset's value.
``main(argv)`` returns the exit code: 0 done, 2 bad input, 130 interrupted (the latest
image is saved first).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
import typing
from pathlib import Path

from painterly import __version__
from painterly.config import PRESETS, Options, option_fields, preset
from painterly.errors import OptionsError, PainterlyError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"painterly: error: {message} (see --help)\n")


def _flag_type(type_name: str):
    """argparse ``type`` for a dataclass field annotation (annotations are strings here)."""
    if "tuple" in type_name:
        return lambda s: tuple(part.strip() for part in s.split(",") if part.strip())
    if "int" in type_name:
        return int
    if "float" in type_name:
        return float
    return str


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    defaults = PRESETS["default"]
    for f in option_fields():
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        shown = ",".join(value) if isinstance(value, tuple) else value
        help_text = f"{f.metadata.get('help', '')} (default: {shown})"
        if f.type == "bool":
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                type=_flag_type(str(f.type)),
                default=argparse.SUPPRESS,
                help=help_text,
                metavar=f.name.split("_")[-1].upper(),
            )


def parse_style(spec: str) -> tuple[str, float]:
    """``painting.jpg:0.7`` -> (``painting.jpg``, 0.7); a bare path weighs 1."""
    path, sep, weight = spec.rpartition(":")
    if sep and path:
        try:
            return path, float(weight)
        except ValueError:
            pass  # a colon that is part of the path
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
    return path


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
    from painterly import report

    ex = sub.add_parser(
        "explain",
        help="write a self-contained HTML report that shows what each loss does",
        conflict_handler="resolve",  # report.add_arguments replaces --size/--steps
    )
    _add_option_flags(ex)
    report.add_arguments(ex)
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
    serve.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        default=[],
        help="a host name the page may be opened by, besides the loopback names and the "
        "--host address (repeatable); other names are refused, against DNS rebinding",
    )
    # --- end serve ---
    return parser


def _write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _step_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:05d}{output.suffix}")


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
    from painterly.image import check_output_path, save_image
    from painterly.progress import ProgressPrinter

    given = _given_options(args)
    inputs = _inputs(args, given)
    output = claim_output(check_output_path(args.output), inputs, args.overwrite)
    metrics_path = _metrics_path(args)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite)
    if args.save_every < 0:
        raise OptionsError("--save-every must be >= 0")
    if args.save_every:  # another run's snapshots would be mixed with this one's
        pattern = f"{glob.escape(output.stem)}_step*{glob.escape(output.suffix)}"
        for earlier in sorted(output.parent.glob(pattern)):
            claim_output(earlier, inputs, args.overwrite)

    printer = ProgressPrinter(quiet=args.quiet)

    def on_event(event) -> None:
        printer(event)
        if getattr(event, "image", None) is not None:
            save_image(
                event.image, _step_path(output, event.step), {"painterly:step": str(event.step)}
            )

    styles = [parse_style(s) for s in args.styles]
    try:
        result = run(
            args.content, styles, callback=on_event, preview_every=args.save_every, **given
        )
    finally:
        printer.close()
    save_image(result.image, output, result.metadata)
    if metrics_path:
        _write_json_atomic(metrics_path, result.metrics)
    if result.interrupted:
        print(
            f"painterly: interrupted after {result.metrics['steps']} steps; "
            f"saved the latest image to {output}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(
            f"painterly: wrote {output} ({result.metrics['seconds']:.1f} s, "
            f"{result.metrics['ms_per_step']:.0f} ms/step)",
            file=sys.stderr,
        )
    return EXIT_OK


def _style_label(specs: list[tuple[str, float]]) -> str:
    """``a.jpg:0.7 b.jpg:0.3`` -> ``a+b``: a style's part of an output name."""
    return "+".join(Path(path.rstrip("/\\")).stem or "style" for path, _ in specs)


def _cmd_batch(args: argparse.Namespace) -> int:
    from painterly.batch import run_batch
    from painterly.image import check_output_path, save_image
    from painterly.progress import ProgressPrinter

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

    printer = ProgressPrinter(quiet=args.quiet)
    start = time.perf_counter()
    try:
        results = run_batch(items, callback=printer, max_batch=args.batch_size, **given)
    finally:
        printer.close()
    seconds = time.perf_counter() - start
    done = [(item, out, r) for item, out, r in zip(items, outputs, results, strict=True) if r]
    for _, output, result in done:
        save_image(result.image, output, result.metadata)
    if metrics_path:
        _write_json_atomic(
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
        )
    if any(r.interrupted for _, _, r in done):
        print(
            f"painterly: interrupted; saved {len(done)} of {len(items)} images to {outdir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(
            f"painterly: wrote {len(done)} image{'s' * (len(done) != 1)} to {outdir} "
            f"({seconds:.1f} s, {len(done) / seconds:.3g} images/s)",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_weights(args: argparse.Namespace) -> int:
    from painterly.encoders import weights

    if args.action == "where":
        print(weights.cache_dir() / "weights")
    elif args.action == "list":
        for row in weights.describe():
            state = row["path"] or "not cached"
            print(f"{row['name']:<20} {row['arch']:<6} {row['size_mb']:>4} MB  {state}")
            print(f"{'':<20} {row['description']} Licence: {row['licence']}")
    elif args.action == "fetch":
        if args.name not in weights.REGISTRY:
            raise OptionsError(
                f"unknown weights '{args.name}'; choose one of {', '.join(weights.REGISTRY)}"
            )
        ws = weights.REGISTRY[args.name]
        path = weights.cached_path(ws)
        if path:
            weights.verify(path, ws)
        else:
            path = weights.download(ws)
        print(path)
    elif args.action == "import":
        print(weights.import_file(args.path, args.name))
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


def _cmd_explain(args: argparse.Namespace) -> int:  # `painterly explain`, see report.py
    from painterly.report import command

    return command(args)


def _cmd_serve(args: argparse.Namespace) -> int:  # `painterly serve`, see web/app.py
    from painterly.web import serve

    serve(args.host, args.port, args.data_dir, tuple(args.allowed_host))
    return EXIT_OK


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
        return commands[args.command](args)
    except PainterlyError as err:
        print(f"painterly: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
