"""The one core API: images in, image out. The CLI, web app and report all call this.

It reads the files it is given, resolves options and the encoder, sizes the images,
runs the optimiser and returns a :class:`Result`. It writes nothing and prints nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, cast

import torch
from PIL import Image
from torch.nn import functional as F

from painterly import __version__
from painterly.config import (
    CONTROL_PRESETS,
    NEEDS_PRETRAINED,
    Options,
    preset,
    preset_on_offline,
)
from painterly.controls import prepare as prepare_controls
from painterly.encoders import (
    Encoder,
    Fallback,
    arch_of,
    canonical_layer,
    deepest,
    load_encoder,
    resolve_weights,
)
from painterly.errors import OptionsError
from painterly.events import Callback, Notice, Started, ignore
from painterly.image import load_image, resize, to_image, to_tensor
from painterly.optimize import Outcome
from painterly.pipeline import Job, optimize_scales, output_size, scale_plan
from painterly.settings import flag

if TYPE_CHECKING:
    from painterly.fast.model_file import ModelInfo
    from painterly.fast.network import TransformerNet

ImageLike = str | os.PathLike | Image.Image
StyleSpec = ImageLike | tuple[ImageLike, float]


@dataclass
class Result:
    image: Image.Image
    metrics: dict
    metadata: dict[str, str] = field(default_factory=dict)  # for the output file's text chunks
    interrupted: bool = False


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; ``cpu`` never touches CUDA."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError("--device cuda asked for, but PyTorch sees no CUDA GPU here")
        return torch.device("cuda")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise OptionsError("--device mps asked for, but this machine has no MPS device")
        return torch.device("mps")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_options(
    options: Options | None = None, *, weights_resolved: str | None = None, **overrides
) -> Options:
    """The options of a run: a base plus single-field ``overrides``.

    The base is ``options`` if given, else the preset named by ``preset=`` (default
    ``default``). On the offline encoder (``weights_resolved`` is ``offline``) the
    default preset gives way to the ``offline`` one, tuned for that encoder, and a
    control preset (``bold``, say) turns its control on that one; fields the caller set
    still win.
    """
    unknown = set(overrides) - set(Options.__dataclass_fields__)
    if unknown:
        raise OptionsError(f"unknown option '{sorted(unknown)[0]}'")
    name = overrides.get("preset", options.preset if options else "default")
    base = options or preset(name)
    if weights_resolved == "offline" and options is None and _follows_the_encoder(name):
        base = preset_on_offline(name)
    to_nearest = overrides.get("style_loss", base.style_loss) == "nearest" != base.style_loss
    if ("style_layers" in overrides or to_nearest) and "style_layer_weights" not in overrides:
        # The base's weights are for its own layers and for the moment losses (gram,
        # meancov: the offline preset's lighter deep levels answer their dark specks);
        # other layers, or nearest neighbours, weigh the levels equally.
        overrides = {**overrides, "style_layer_weights": ()}
    return base.replace(**overrides) if overrides else base


def _follows_the_encoder(name: str) -> bool:
    """Whether the preset ``name`` is the default or one of its controls, which run on
    the offline encoder's own tuning when that is the encoder (``preset="default"``, as
    the web form sends it, counts as no choice)."""
    return name == "default" or name in CONTROL_PRESETS


def _needs_pretrained(options: Options | None, overrides: dict, fallback: Fallback) -> None:
    """Refuse, before anything slow, a preset that reproduces a published method on
    VGG19's pretrained features when those cannot be had."""
    name = overrides.get("preset", options.preset if options else "default")
    if name in NEEDS_PRETRAINED:
        why = fallback.reason if fallback.corrupt else "not cached, and no download worked"
        raise OptionsError(
            f"{flag('preset')} {name} needs VGG19's pretrained weights ({why}); fetch them "
            f"with `painterly weights fetch vgg19`, or choose {flag('preset')} offline (or "
            f"{flag('weights')} random-vgg19 to run it on random weights)"
        )


def _check_image(item, what: str) -> None:
    """Refuse, in words, what is neither a path nor a PIL image (a caller's mistake that
    would otherwise surface as a TypeError deep inside)."""
    if not isinstance(item, str | os.PathLike | Image.Image):
        raise OptionsError(f"{what} must be a file path or a PIL image, got {type(item).__name__}")


def _as_image(item: ImageLike) -> Image.Image:
    _check_image(item, "the photo")
    return item.convert("RGB") if isinstance(item, Image.Image) else load_image(item)


def _style_list(style: StyleSpec | Sequence[StyleSpec]) -> list[tuple[ImageLike, float]]:
    """(image, path or folder, weight) pairs; controls.prepare checks and loads them."""
    items = style if isinstance(style, list | tuple) and not _is_weighted(style) else [style]
    pairs = [item if _is_weighted(item) else (item, 1.0) for item in items]
    for image, _ in pairs:
        _check_image(image, "a painting")
    # _check_image has refused every pair whose first item is not a path or an image.
    return cast(list[tuple[ImageLike, float]], pairs)


def _is_weighted(item) -> TypeGuard[tuple[object, float]]:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], int | float)


def prepare_inputs(content: ImageLike, style: StyleSpec | Sequence[StyleSpec], opts: Options):
    """Read the content and styles and apply the artistic controls (controls.prepare):
    the content and (image, weight) styles the optimiser sees, the masks and ``finish``."""
    return prepare_controls(_as_image(content), _style_list(style), opts)


def _canonical_layers(opts: Options, arch: str) -> Options:
    """Layer names as ``arch`` spells them (the offline encoder has its own)."""
    return opts.replace(
        content_layer=canonical_layer(opts.content_layer, arch),
        style_layers=tuple(canonical_layer(n, arch) for n in opts.style_layers),
    )


def run(
    content: ImageLike,
    style: StyleSpec | Sequence[StyleSpec],
    options: Options | None = None,
    *,
    callback: Callback = ignore,
    preview_every: int = 0,
    progress_every: int = 1,
    encoder: Encoder | None = None,
    **overrides,
) -> Result:
    """Stylise ``content`` with one or more styles and return a :class:`Result`.

    ``style`` is an image, a path, a ``(image, weight)`` pair or a list of these; several
    styles are blended by their weights. ``options`` (or a ``preset=`` name) gives the
    defaults and keyword ``overrides`` change single fields. Pass a loaded ``encoder`` to
    reuse it across calls. Progress events come every ``progress_every`` steps (each one
    reads the losses back from the device), previews every ``preview_every`` steps.
    """
    # Validate the options and read the images before anything slow (a download).
    asked = make_options(options, **overrides)
    content_img, styles, guide, finish = prepare_inputs(content, style, asked)
    opts, encoder, device, fallback_reason = resolve_run(
        options, overrides, callback, encoder, asked=asked
    )
    job = model_start(Job(content_img, styles, guide, finish), opts, device)
    (outcomes,) = optimize_scales(
        [job],
        opts,
        encoder,
        device,
        callback=callback,
        preview_every=preview_every,
        progress_every=progress_every,
    )
    out_size = output_size(content_img.size, opts)
    return make_result(outcomes, opts, encoder, device, out_size, finish, fallback_reason)


def model_start(job: Job, opts: Options, device: torch.device) -> Job:
    """With ``init="model:NAME"``, the job starting from the fast model's painting of
    the photo at the first scale's size (painterly.fast); else the job as it is."""
    if not opts.init.startswith("model:"):
        return job
    from painterly.fast.apply import paint_with_model

    sizes, _ = scale_plan(output_size(job.content.size, opts), opts)
    photo = to_tensor(resize(job.content, sizes[0])).to(device)
    return replace(job, init=paint_with_model(opts.init.removeprefix("model:"), photo))


def resolve_run(
    options: Options | None,
    overrides: dict,
    callback: Callback,
    encoder: Encoder | None,
    *,
    progress: bool = True,
    asked: Options | None = None,
) -> tuple[Options, Encoder, torch.device, str | None]:
    """The options, encoder and device of a run, and why ``auto`` fell back (or None).

    ``auto`` weights that cannot be had fall back to the offline encoder, with one
    Notice; with a named preset, to a random VGG19, whose layer names the preset uses.
    ``progress`` shows a download's progress bar on stderr. ``asked`` is
    ``make_options(options, **overrides)`` where the caller has it already.
    """
    asked = asked or make_options(options, **overrides)
    weights = asked.weights
    fallback_reason = None
    if encoder is not None:
        weights = encoder.name
        encoder.to(resolve_device(asked.device))
    else:
        weights, fallback = resolve_weights(weights, progress=progress)
        fallback_reason = fallback.reason if fallback else None
        instead = "the offline encoder"
        if fallback:
            _needs_pretrained(options, overrides, fallback)
        if fallback and options is not None:
            # Options given whole name VGG's layers: keep them, on VGG19's architecture.
            weights = "random-vgg19"
            instead = "VGG19 with random weights, as these options name VGG19's layers"
        if fallback:
            callback(Notice(fallback.notice(instead)))
    opts = make_options(options, weights_resolved=weights, **overrides).replace(weights=weights)
    opts = _canonical_layers(opts, encoder.arch if encoder is not None else arch_of(weights))
    device = resolve_device(opts.device)
    if encoder is None:
        upto = deepest((opts.content_layer, *opts.style_layers), arch_of(weights))
        encoder = load_encoder(
            weights,
            upto=upto,
            pooling=opts.pooling,
            seed=opts.seed,
            device=device,
            progress=progress,
        )
    return opts, encoder, device, fallback_reason


def make_result(
    outcomes: Sequence[Outcome],
    opts: Options,
    encoder: Encoder,
    device: torch.device,
    out_size: tuple[int, int],
    finish,
    fallback_reason: str | None,
) -> Result:
    """The :class:`Result` of one image from the outcomes of its scales, coarse to fine;
    ``finish`` (from controls.prepare) turns the last one's pixels into the output."""
    outcome = outcomes[-1]
    steps_done = sum(o.steps for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    history = [{**h, "scale": i} for i, o in enumerate(outcomes) for h in o.history]
    metrics = {
        "encoder": encoder.name,
        "device": str(device),
        "size": list(out_size),
        "steps": steps_done,
        "seconds": round(seconds, 3),
        "ms_per_step": round(1000 * seconds / max(steps_done, 1), 2),
        "losses": {k: outcome.final[k] for k in ("content", "style", "tv", "total")},
        "history": history,
        "scales": [list(o.rgb.shape[-1:-3:-1]) for o in outcomes],
        "steps_per_scale": [o.steps for o in outcomes],
        "seconds_per_scale": [round(o.seconds, 3) for o in outcomes],
        "interrupted": outcome.interrupted,
        "precision": outcome.precision,
        "precision_per_scale": [o.precision for o in outcomes],
        "fallback_reason": fallback_reason,
        "version": __version__,
    }
    settings = asdict(opts)
    metadata = {
        "Software": f"painterly {__version__}",
        "painterly:settings": json.dumps(settings, sort_keys=True),
        "painterly:weights": encoder.name,
        "painterly:seed": str(opts.seed),
        "painterly:version": __version__,
    }
    rgb = outcome.rgb
    if rgb.shape[-2:] != (out_size[1], out_size[0]):  # interrupted at a coarse scale
        rgb = F.interpolate(rgb, size=(out_size[1], out_size[0]), mode="bicubic").clamp(0, 1)
    return Result(to_image(finish(rgb)), metrics, metadata, outcome.interrupted)


def stylize(
    content: ImageLike,
    style: StyleSpec | Sequence[StyleSpec],
    options: Options | None = None,
    **overrides,
) -> Image.Image:
    """Stylise ``content`` and return the image: ``painterly.stylize("photo.jpg", "art.jpg")``."""
    return run(content, style, options, **overrides).image


def run_model(
    photo: str | os.PathLike,
    model: str | os.PathLike,
    *,
    size: int | None = None,
    height: int | None = None,
    preserve_color: str = "none",
    device: str = "auto",
    tile: int = 0,
    max_memory: str = "auto",
    loaded: tuple[TransformerNet, ModelInfo] | None = None,
    callback: Callback = ignore,
) -> Result:
    """``photo`` painted by the model file ``model`` (painterly.fast), as a :class:`Result`
    (image, metrics, the model's metadata for the output file): what ``painterly apply``
    and the web app's jobs with a fast model run. ``size`` (long side) or ``height``
    (which wins) resize the photo first, as they size a ``stylize`` result; ``tile`` and
    ``max_memory`` as in :class:`painterly.fast.config.ApplyConfig`. ``loaded``: the
    (network, ModelInfo) that ``load_model(model)`` gave a caller painting many photos,
    so that the file is read once."""
    from painterly.fast.apply import paint
    from painterly.fast.model_file import load_model

    model = Path(model)
    start = time.perf_counter()
    net, info = loaded or load_model(model)
    img = load_image(photo)
    out_size = output_size(img.size, preset("default").replace(size=size, height=height))
    if out_size != img.size:
        img = resize(img, out_size)
    where = resolve_device(device)
    if info.under_trained:
        callback(Notice(info.warning(model.stem)))
    callback(Started(total_steps=0, size=out_size, encoder=info.encoder, device=str(where)))
    painted = paint(
        net, img, device=where, tile=tile, max_memory=max_memory, preserve_color=preserve_color
    )
    seconds = time.perf_counter() - start
    metrics = {
        "model": model.stem,
        "encoder": info.encoder,
        "device": str(where),
        "size": list(out_size),
        "seconds": round(seconds, 3),
        "losses": {},
    }
    return Result(painted, metrics, info.image_metadata(model.name))
