"""``painterly train``, ``apply``, ``models`` and ``export``: fast models (painterly.fast).

Train a feed-forward network for a style once (``train``), then paint any photo with it
in one forward pass (``apply``), list the models in the cache (``models``) or write one
as ONNX (``export``). torch is imported inside the commands, so ``--help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path

from painterly import files
from painterly.cli.common import (
    EXIT_OK,
    OVERWRITE_HELP,
    add_option_flags,
    add_settings_flags,
    check_writable,
    claim_output,
    closing_line,
    distinct_outputs,
    given_settings,
    metrics_path_of,
    parse_style,
    write_metrics,
)
from painterly.errors import OptionsError
from painterly.fast.config import (
    TRAIN_OPTIONS,
    TRAIN_STRENGTH,
    TRAIN_STYLE_LOSS,
    ApplyConfig,
    TrainConfig,
)
from painterly.files import images_in


def add_parsers(sub) -> None:
    """The four commands, on ``painterly``'s subparsers."""
    _add_train_parser(sub)

    ap = sub.add_parser("apply", help="paint photos with a fast model, one pass each")
    ap.add_argument("model", help="model file or name (see `painterly models`)")
    ap.add_argument("photos", nargs="+", metavar="PHOTO", help="photos or folders of photos")
    ap.add_argument("-o", "--output", required=True, help="output image, or folder for many")
    ap.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ap.add_argument(
        "--format", default="png", choices=("png", "jpg", "webp", "tif"), help="in a folder"
    )
    add_settings_flags(ap, ApplyConfig)

    sub.add_parser("models", help="list the fast models in the cache")

    ex = sub.add_parser("export", help="write a fast model as ONNX (dynamic height and width)")
    ex.add_argument("model", help="model file or name")
    ex.add_argument("-o", "--output", required=True, help="output file (.onnx)")
    ex.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _add_train_parser(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="train a fast model for a style: afterwards `apply` paints any photo at once",
        description="Train a feed-forward network (Johnson et al. 2016) on random crops of "
        "the photos under --images, with painterly's losses on the encoder's layers.",
    )
    tr.add_argument("styles", nargs="+", help="painting(s); PATH:WEIGHT blends several")
    tr.add_argument(
        "--images",
        required=True,
        metavar="DIR",
        help="folder of training photos, or coco: the 5,000 photos of COCO 2017 val "
        "(778 MB), downloaded into the cache on first use",
    )
    tr.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL",
        help="model file (.safetensors), or a bare name to keep it in `painterly models`",
    )
    tr.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    tr.add_argument("--resume", action="store_true", help="continue from MODEL's checkpoint")
    add_settings_flags(tr, TrainConfig)
    tr.add_argument("--preview", metavar="PHOTO", help="a held-out photo painted every N")
    tr.add_argument("--metrics", metavar="FILE.json", help="write losses and timings as JSON")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    add_option_flags(
        tr,
        only=TRAIN_OPTIONS,
        defaults={
            "strength": f"{TRAIN_STRENGTH}, or the --preset's",
            "style_loss": f"{TRAIN_STYLE_LOSS}, or the --preset's",
        },
        helps={
            "strength": "0..1: how strongly the style is applied; a network learns the "
            "photo's structure from nothing, so training's default is lighter than "
            "stylize's"
        },
    )


COMMANDS = ("train", "apply", "models", "export")


def dispatch(args: argparse.Namespace) -> int:
    return {"train": cmd_train, "apply": cmd_apply, "models": cmd_models, "export": cmd_export}[
        args.command
    ](args)


def _model_path(name: str, writing: bool = False) -> Path:
    from painterly.fast.model_file import SUFFIX, resolve_model_path

    path = resolve_model_path(name, for_writing=writing)
    if writing and path.suffix.lower() != SUFFIX:
        raise OptionsError(f"{path}: a model file ends in {SUFFIX}")
    return path


def _train_outputs(args: argparse.Namespace, specs: list[tuple[str, float]]):
    """The model, its checkpoint, the preview and the metrics file ``train`` writes,
    claimed and checked before anything slow (a resumed run's own files are its own)."""
    from painterly.fast.train import TrainFiles

    inputs = [p for p, _ in specs] + ([args.preview] if args.preview else [])
    out = TrainFiles.beside(_model_path(args.output, writing=True), bool(args.preview))
    metrics_path = metrics_path_of(args)
    outputs = [out.model, out.checkpoint] + ([out.preview] if out.preview else [])
    if args.resume:
        if not out.checkpoint.is_file():
            raise OptionsError(f"no checkpoint {out.checkpoint} to resume; start without --resume")
        for path in outputs:
            files.claims.claim(path)  # the run's own files: its claim, not a new one's
            check_writable(path)
    else:
        for path in outputs:
            claim_output(path, inputs, args.overwrite)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite or args.resume)
    distinct_outputs(outputs + ([metrics_path] if metrics_path else []))
    return out, metrics_path


def cmd_train(args: argparse.Namespace) -> int:
    from painterly.cli.common import stoppable
    from painterly.fast.train import train_model
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if hasattr(args, k)}
    if "preset" not in given:
        given.setdefault("strength", TRAIN_STRENGTH)
        given.setdefault("style_loss", TRAIN_STYLE_LOSS)
    config = TrainConfig(**given_settings(args, TrainConfig))
    specs = [parse_style(s) for s in args.styles]
    out, metrics_path = _train_outputs(args, specs)
    bar = ProgressPrinter(args.quiet, unit="it", desc="train")
    with StopSignals(bar.say) as stop:
        try:
            result = train_model(
                args.images,
                specs,
                config,
                given,
                out,
                preview_photo=args.preview,
                resume=args.resume,
                callback=stoppable(bar, stop),
                saving=stop.saving,
            )
        finally:
            bar.close()
        if metrics_path:
            with stop.saving():
                write_metrics(metrics_path, result.metrics, f"the model {out.model} is written")
    return _train_closing(args, config, result, out, stop)


def _train_closing(args, config: TrainConfig, result, out, stop) -> int:
    m = result.metrics
    if len(result.skipped) > result.skipped_before:  # more found undecodable while training
        print(f"painterly: skipped {len(result.skipped)} unreadable photo(s)", file=sys.stderr)
    if result.info.under_trained and not result.interrupted:
        print(
            f"painterly: warning: {out.model.stem} is under-trained "
            f"({result.info.under_trained}); it is saved marked so, and apply, video and "
            "the web page say so when they use it (continue with --resume)",
            file=sys.stderr,
        )
    return closing_line(
        stop,
        result.interrupted,
        f"interrupted after {m['iterations']} iterations; wrote {out.model} and "
        f"{out.checkpoint} (continue with --resume)",
        f"wrote {out.model} ({m['iterations']} iterations, {m['seconds']:.1f} s, "
        f"{m['iterations_per_s']:.3g} it/s on {m['encoder']})",
        args.quiet,
    )


def _photo_files(items: list[str]) -> list[Path]:
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = images_in(path)
            if not found:
                raise OptionsError(f"{path} has no photos (.jpg .png .webp .tif ...)")
            out += found
        else:
            out.append(path)
    return out


def cmd_apply(args: argparse.Namespace) -> int:
    from painterly.api import run_model
    from painterly.fast.model_file import load_model
    from painterly.image import check_output_path, save_image

    config = ApplyConfig(**given_settings(args, ApplyConfig))
    model = _model_path(args.model)
    photos = _photo_files(args.photos)
    inputs = [str(model), *map(str, photos)]
    out = Path(args.output)
    if out.is_dir():
        names = [out / f"{p.stem}_{model.stem}.{args.format}" for p in photos]
    elif len(photos) == 1:
        names = [out]
    else:
        raise OptionsError(f"{out} is not an existing folder; for {len(photos)} photos give one")
    outputs = [claim_output(check_output_path(n), inputs, args.overwrite) for n in names]
    distinct_outputs(outputs)
    loaded = load_model(model)
    warn_if_under_trained(model, loaded[1])
    for photo, output in zip(photos, outputs, strict=True):
        result = run_model(photo, model, loaded=loaded, **asdict(config))
        save_image(result.image, output, result.metadata)
        seconds = result.metrics["seconds"]
        print(f"painterly: wrote {output} ({seconds:.2f} s)", file=sys.stderr)
    return EXIT_OK


def warn_if_under_trained(model: Path, info=None) -> None:
    """One line on stderr before a command paints with an under-trained model (``info``:
    its metadata where the caller has read it)."""
    from painterly.fast.model_file import read_info

    warning = (info or read_info(model)).warning(model.stem)
    if warning:
        print(f"painterly: warning: {warning}", file=sys.stderr)


def cmd_models(args: argparse.Namespace) -> int:
    from painterly.fast.model_file import list_models, models_dir

    found = list_models()
    if not found:
        print(f"no models in {models_dir()}; train one with `painterly train ... -o NAME`")
    for path, info in found:
        if info is None:
            print(f"{path.stem}\t(unreadable)")
        else:
            state = f"\tUNDER-TRAINED: {info.under_trained}" if info.under_trained else ""
            print(
                f"{path.stem}\tstyles {info.style_names}\twidth {info.width}\t"
                f"{info.iterations} iterations\t{info.encoder}{state}"
            )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from painterly.fast.export import export_onnx
    from painterly.fast.model_file import load_model

    model = _model_path(args.model)
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise OptionsError(f"{out}: the ONNX file should end in .onnx")
    claim_output(out, [str(model)], args.overwrite)
    net, info = load_model(model)
    export_onnx(net, info, out)
    print(f"painterly: wrote {out} ({os.path.getsize(out) / 2**20:.1f} MB)", file=sys.stderr)
    return EXIT_OK
