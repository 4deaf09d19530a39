"""``painterly train``, ``apply``, ``models`` and ``export``: fast models (painterly.fast).

Train a feed-forward network for a style once (``train``), then paint any photo with it
in one forward pass (``apply``), list the models in the cache (``models``) or write one
as ONNX (``export``). torch is imported inside the commands, so ``--help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
    flag_type,
    given_settings,
    metrics_path_of,
    parse_style,
    write_metrics,
)
from painterly.errors import OptionsError
from painterly.fast.config import TRAIN_OPTIONS, TRAIN_STRENGTH, TrainConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def add_parsers(sub) -> None:
    """The four commands, on ``painterly``'s subparsers."""
    tr = sub.add_parser(
        "train",
        help="train a fast model for a style: afterwards `apply` paints any photo at once",
        description="Train a feed-forward network (Johnson et al. 2016) on random crops of "
        "the photos under --images, with painterly's losses on the encoder's layers.",
    )
    tr.add_argument("styles", nargs="+", help="painting(s); PATH:WEIGHT blends several")
    tr.add_argument("--images", required=True, metavar="DIR", help="folder of training photos")
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
        defaults={"strength": f"{TRAIN_STRENGTH}, or the --preset's"},
        helps={
            "strength": "0..1: how strongly the style is applied; a network learns the "
            "photo's structure from nothing, so training's default is lighter than "
            "stylize's"
        },
    )

    ap = sub.add_parser("apply", help="paint photos with a fast model, one pass each")
    ap.add_argument("model", help="model file or name (see `painterly models`)")
    ap.add_argument("photos", nargs="+", metavar="PHOTO", help="photos or folders of photos")
    ap.add_argument("-o", "--output", required=True, help="output image, or folder for many")
    ap.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    ap.add_argument(
        "--format", default="png", choices=("png", "jpg", "webp", "tif"), help="in a folder"
    )
    ap.add_argument(
        "--preserve-color",
        type=flag_type("preserve_color"),
        default="none",
        help="none, luminance (keep the photo's colours) or histogram",
    )
    ap.add_argument(
        "--tile",
        type=flag_type("tile"),  # stylize's tile: 0, or 64 px and more
        default=0,
        help="tile side in px (0: from --max-memory)",
    )
    ap.add_argument(
        "--max-memory",
        type=flag_type("max_memory"),
        default="auto",
        help="memory a pass may use, e.g. 2G (auto: most of what is free)",
    )
    ap.add_argument("--device", type=flag_type("device"), default="auto", help="auto, cpu, cuda")

    sub.add_parser("models", help="list the fast models in the cache")

    ex = sub.add_parser("export", help="write a fast model as ONNX (dynamic height and width)")
    ex.add_argument("model", help="model file or name")
    ex.add_argument("-o", "--output", required=True, help="output file (.onnx)")
    ex.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


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
    inputs = [p for p, _ in specs] + ([args.preview] if args.preview else [])
    model = _model_path(args.output, writing=True)
    checkpoint = model.with_suffix(".ckpt")
    preview_out = model.with_name(model.stem + ".preview.jpg")
    metrics_path = metrics_path_of(args)
    outputs = [model, checkpoint] + ([preview_out] if args.preview else [])
    if args.resume:
        if not checkpoint.is_file():
            raise OptionsError(f"no checkpoint {checkpoint} to resume; start without --resume")
        for path in outputs:
            files.claims.claim(path)  # the run's own files: its claim, not a new one's
            check_writable(path)
    else:
        for path in outputs:
            claim_output(path, inputs, args.overwrite)
    if metrics_path:
        claim_output(metrics_path, inputs, args.overwrite or args.resume)
    distinct_outputs(outputs + ([metrics_path] if metrics_path else []))
    return model, checkpoint, preview_out, metrics_path


def cmd_train(args: argparse.Namespace) -> int:
    from painterly.api import resolve_run
    from painterly.cli.common import stoppable
    from painterly.events import Preview
    from painterly.fast import model_file
    from painterly.fast import train as training
    from painterly.image import save_image
    from painterly.progress import ProgressPrinter
    from painterly.signals import StopSignals

    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if hasattr(args, k)}
    if "preset" not in given:
        given.setdefault("strength", TRAIN_STRENGTH)
    config = TrainConfig(**given_settings(args, TrainConfig))
    specs = [parse_style(s) for s in args.styles]
    model, checkpoint, preview_out, metrics_path = _train_outputs(args, specs)

    photos = training.Photos(args.images, config.crop, config.jitter)
    preview = training.preview_photo(args.preview, 512) if args.preview else None
    bar = ProgressPrinter(args.quiet, unit="it", desc="train")
    opts, encoder, device, _ = resolve_run(None, given, bar, None)
    styles = training.style_tensors(specs, opts, config.crop)
    records = training.style_records(specs)
    skipped_first = len(photos.skipped)
    if skipped_first:
        bar.say(f"skipping {len(photos.skipped)} unreadable file(s) under {args.images}")
    if preview is not None:
        every = f"every {config.save_every} iterations" if config.save_every else "at the end"
        bar.say(f"a preview of {args.preview} goes to {preview_out} {every}")

    def on_event(event) -> None:
        bar(event)
        if isinstance(event, Preview):
            save_image(event.image, preview_out, {"painterly:iteration": str(event.step)})

    with StopSignals(bar.say) as stop:
        try:
            result = training.train(
                photos,
                styles,
                records,
                config,
                opts,
                encoder,
                device,
                checkpoint=checkpoint,
                resume=args.resume,
                preview=preview,
                callback=stoppable(on_event, stop),
            )
        finally:
            bar.close()
        if stop.aborted:
            raise KeyboardInterrupt
        with stop.saving():
            model_file.save_model(model, result.net, result.info)
            if preview is not None:
                painted = training.paint(result.net, preview, "cpu")
                save_image(
                    painted, preview_out, {"painterly:iteration": str(result.info.iterations)}
                )
            if metrics_path:
                write_metrics(metrics_path, result.metrics, f"the model {model} is written")
    m = result.metrics
    if len(result.skipped) > skipped_first:  # more found undecodable while training
        print(f"painterly: skipped {len(result.skipped)} unreadable photo(s)", file=sys.stderr)
    if not result.interrupted and m["iterations"] < config.iterations:
        print(
            f"painterly: warning: --time-limit stopped training after {m['iterations']} of "
            f"{config.iterations} iterations; the model may be under-trained (continue "
            "with --resume)",
            file=sys.stderr,
        )
    return closing_line(
        stop,
        result.interrupted,
        f"interrupted after {m['iterations']} iterations; wrote {model} and {checkpoint} "
        "(continue with --resume)",
        f"wrote {model} ({m['iterations']} iterations, {m['seconds']:.1f} s, "
        f"{m['iterations_per_s']:.3g} it/s on {m['encoder']})",
        args.quiet,
    )


def _photo_files(items: list[str]) -> list[Path]:
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise OptionsError(f"{path} has no photos (.jpg .png .webp .tif ...)")
            out += found
        else:
            out.append(path)
    return out


def cmd_apply(args: argparse.Namespace) -> int:
    from painterly.api import resolve_device
    from painterly.fast.apply import paint
    from painterly.fast.model_file import load_model
    from painterly.image import check_output_path, load_image, save_image

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
    net, info = load_model(model)
    device = resolve_device(args.device)
    metadata = info.image_metadata(model.name)
    for photo, output in zip(photos, outputs, strict=True):
        start = time.perf_counter()
        img = paint(
            net,
            load_image(photo),
            device=device,
            tile=args.tile,
            max_memory=args.max_memory,
            preserve_color=args.preserve_color,
        )
        save_image(img, output, metadata)
        print(f"painterly: wrote {output} ({time.perf_counter() - start:.2f} s)", file=sys.stderr)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from painterly.fast.model_file import list_models, models_dir

    found = list_models()
    if not found:
        print(f"no models in {models_dir()}; train one with `painterly train ... -o NAME`")
    for path, info in found:
        if info is None:
            print(f"{path.stem}\t(unreadable)")
        else:
            print(
                f"{path.stem}\tstyles {info.style_names}\twidth {info.width}\t"
                f"{info.iterations} iterations\t{info.encoder}"
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
