"""The one core API: images in, image out. The CLI, web app and report all call this.

It reads the files it is given, resolves options and the encoder, sizes the images,
runs the optimiser and returns a :class:`Result`. It writes nothing and prints nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from PIL import Image

from painterly import __version__
from painterly.config import Options, preset
from painterly.encoders import Encoder, load_encoder, resolve_weights
from painterly.encoders.vgg import layer_names, resolve_layer
from painterly.errors import OptionsError
from painterly.events import Callback, Notice, ignore
from painterly.image import MIN_SIDE, fit_size, load_image, resize, to_image, to_tensor
from painterly.optimize import Objective, optimize

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
    ``default``). When the default preset meets the offline encoder (``weights_resolved``
    is ``random``), the ``offline`` preset, tuned for that encoder, is the base instead;
    fields the caller set still win.
    """
    unknown = set(overrides) - set(Options.__dataclass_fields__)
    if unknown:
        raise OptionsError(f"unknown option '{sorted(unknown)[0]}'")
    name = overrides.get("preset", options.preset if options else "default")
    base = options or preset(name)
    if weights_resolved == "random" and "preset" not in overrides and options is None:
        base = preset("offline")
    return base.replace(**overrides) if overrides else base


def _as_image(item: ImageLike) -> Image.Image:
    return item.convert("RGB") if isinstance(item, Image.Image) else load_image(item)


def _style_list(style: StyleSpec | Sequence[StyleSpec]) -> list[tuple[Image.Image, float]]:
    items = style if isinstance(style, list | tuple) and not _is_weighted(style) else [style]
    out = []
    for item in items:
        img, weight = item if _is_weighted(item) else (item, 1.0)
        if not weight >= 0:
            raise OptionsError(f"style weight {weight} must be >= 0")
        out.append((_as_image(img), float(weight)))
    if not out or sum(w for _, w in out) <= 0:
        raise OptionsError("at least one style image with a weight above 0 is needed")
    return out


def _is_weighted(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], int | float)


def _style_size(style: Image.Image, out_size: tuple[int, int], opts: Options) -> tuple[int, int]:
    if opts.style_stretch:
        return out_size
    w, h = fit_size(*style.size, round(max(out_size) * opts.style_scale))
    grow = MIN_SIDE / min(w, h)  # keep a thin or small style usable by the network
    return (round(w * grow), round(h * grow)) if grow > 1 else (w, h)


def output_size(content_size: tuple[int, int], opts: Options) -> tuple[int, int]:
    """(w, h) of the output: ``height`` wins over ``size``; neither keeps the photo's size."""
    if opts.height:
        return fit_size(*content_size, height_px=opts.height)
    if opts.size:
        return fit_size(*content_size, long_side=opts.size)
    return content_size


def _init_rgb(opts: Options, content: torch.Tensor, seed: int) -> torch.Tensor:
    if opts.init == "content":
        return content
    if opts.init == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(content.shape, generator=gen).to(content.device)
        return noise
    img = resize(load_image(opts.init), (content.shape[-1], content.shape[-2]))
    return to_tensor(img).to(content.device)


def _canonical_layers(opts: Options) -> Options:
    return opts.replace(
        content_layer=resolve_layer(opts.content_layer),
        style_layers=tuple(resolve_layer(n) for n in opts.style_layers),
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
    weights = make_options(options, **overrides).weights
    content_img = _as_image(content)
    styles = _style_list(style)
    fallback_reason = None
    if encoder is not None:
        weights = encoder.name
        encoder.net.to(resolve_device(make_options(options, **overrides).device))
    else:
        weights, fallback_reason = resolve_weights(weights)
        if fallback_reason:
            callback(
                Notice(
                    "pretrained VGG19 weights are not cached and could not be downloaded; "
                    "using the offline encoder. For the real ones run `painterly weights "
                    "fetch vgg19`, or download them yourself and `painterly weights import FILE`"
                )
            )
    opts = make_options(options, weights_resolved=weights, **overrides).replace(weights=weights)
    opts = _canonical_layers(opts)
    device = resolve_device(opts.device)
    if encoder is None:
        upto = max((opts.content_layer, *opts.style_layers), key=_layer_order)
        encoder = load_encoder(
            weights, upto=upto, pooling=opts.pooling, seed=opts.seed, device=device
        )

    out_size = output_size(content_img.size, opts)
    content_t = to_tensor(resize(content_img, out_size)).to(device)
    style_ts = [
        (to_tensor(resize(img, _style_size(img, out_size, opts))).to(device), w)
        for img, w in styles
    ]
    init = _init_rgb(opts, content_t, opts.seed)

    torch.manual_seed(opts.seed)
    objective = Objective(encoder, content_t, style_ts, opts)
    outcome = optimize(
        objective,
        init,
        opts,
        callback=callback,
        preview_every=preview_every,
        progress_every=progress_every,
        device_name=str(device),
    )
    metrics = {
        "encoder": encoder.name,
        "device": str(device),
        "size": list(out_size),
        "steps": outcome.steps,
        "seconds": round(outcome.seconds, 3),
        "ms_per_step": round(1000 * outcome.seconds / max(outcome.steps, 1), 2),
        "losses": {k: outcome.final[k] for k in ("content", "style", "tv", "total")},
        "history": outcome.history,
        "interrupted": outcome.interrupted,
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
    return Result(to_image(outcome.rgb), metrics, metadata, outcome.interrupted)


def _layer_order(name: str) -> int:
    return layer_names("vgg19").index(name)


def stylize(
    content: ImageLike,
    style: StyleSpec | Sequence[StyleSpec],
    options: Options | None = None,
    **overrides,
) -> Image.Image:
    """Stylise ``content`` and return the image: ``painterly.stylize("photo.jpg", "art.jpg")``."""
    return run(content, style, options, **overrides).image
