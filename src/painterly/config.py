"""Every option of a stylisation, with its default, in one frozen dataclass.

The CLI builds its flags from these fields and the web form and report read them too, so
a default lives here and nowhere else. Presets are named instances.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from painterly.errors import OptionsError

BOOK_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

MAX_SIDE = 16384  # refuse before allocating: beyond this a run cannot finish on any machine


@dataclass(frozen=True)
class Options:
    """Options of one stylisation. ``help`` metadata becomes the CLI's help text."""

    size: int | None = field(
        default=512, metadata={"help": "long side of the output in px (aspect ratio kept)"}
    )
    height: int | None = field(
        default=None, metadata={"help": "output height in px instead of --size (the book's way)"}
    )
    steps: int = field(
        default=300, metadata={"help": "loss evaluations (optimisation steps), all scales"}
    )
    time_limit: float = field(
        default=0.0,
        metadata={
            "help": "stop after this many seconds, shared out over the scales; the best "
            "image so far is the result (0: no limit, run all --steps)"
        },
    )
    scales: int = field(
        default=0, metadata={"help": "coarse-to-fine scales (0: from --min-size up; 1: single)"}
    )
    scale_steps: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "comma-separated steps per scale, coarse to fine, e.g. 100,60,40 "
            "(instead of --steps and --scales; empty: --steps shared out)"
        },
    )
    min_size: int = field(default=256, metadata={"help": "long side of the coarsest scale in px"})
    max_memory: str = field(
        default="auto",
        metadata={"help": "memory a step may use, e.g. 8G (auto: most of what is free)"},
    )
    tile: int = field(
        default=0,
        metadata={"help": "tile side in px for scales beyond memory (0: chosen from --max-memory)"},
    )
    weights: str = field(
        default="auto",
        metadata={"help": "auto, random, vgg19, vgg19-torchvision, vgg16 or a weights file"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 where fast: GPUs, bf16 CPUs; else fp32), fp32, tf32 or bf16"},
    )
    cuda_graph: bool = field(
        default=True, metadata={"help": "replay each step as a CUDA graph on GPUs"}
    )
    seed: int = field(default=0, metadata={"help": "seed for noise and the offline encoder"})
    content_weight: float = field(default=1.0, metadata={"help": "weight of the content loss"})
    style_weight: float = field(default=1e4, metadata={"help": "weight of the style loss"})
    tv_weight: float = field(default=5.0, metadata={"help": "weight of the total-variation loss"})
    content_layer: str = field(
        default="block4_conv2", metadata={"help": "layer whose activations keep the photo"}
    )
    style_layers: tuple[str, ...] = field(
        default=BOOK_STYLE_LAYERS,
        metadata={"help": "comma-separated layers whose Grams carry style"},
    )
    loss_form: str = field(
        default="relative", metadata={"help": "relative (size-independent) or book (Chollet's)"}
    )
    optimizer: str = field(default="lbfgs", metadata={"help": "lbfgs or adam"})
    learning_rate: float = field(default=0.02, metadata={"help": "Adam step in 0..1 pixel units"})
    lbfgs_restart: int = field(
        default=0, metadata={"help": "fresh L-BFGS state every N steps (0: never; the book: 20)"}
    )
    lbfgs_history: int = field(
        default=25,
        metadata={"help": "past steps L-BFGS remembers for its curvature (the book's scipy: 10)"},
    )
    init: str = field(
        default="content",
        metadata={"help": "content, noise, style-colors (noise in the style's colours) or a path"},
    )
    pooling: str = field(default="avg", metadata={"help": "max or avg pooling in the encoder"})
    style_stretch: bool = field(
        default=False, metadata={"help": "resize the style to exactly the output size (the book)"}
    )
    style_scale: float = field(
        default=1.0, metadata={"help": "style image's long side relative to the output's"}
    )
    strength: float = field(
        default=0.5,
        metadata={"help": "0..1: how strongly the style is applied (0.5: the preset's balance)"},
    )
    style_layer_weights: tuple[float, ...] = field(
        default=(), metadata={"help": "comma-separated weight per style layer (empty: all equal)"}
    )
    style_blend: tuple[float, ...] = field(
        default=(), metadata={"help": "comma-separated weight per style (empty: PATH:WEIGHT or 1)"}
    )
    preserve_color: str = field(
        default="none",
        metadata={"help": "none, luminance (keep the photo's colours) or histogram"},
    )
    color_only: bool = field(
        default=False, metadata={"help": "take only the painting's colours, keep the photo's"}
    )
    mask: str | None = field(
        default=None, metadata={"help": "image whose colours choose a style per region"}
    )
    mask_styles: str | None = field(
        default=None, metadata={"help": "mask colour to style index, e.g. '#ff0000=0,#0000ff=1'"}
    )
    protect: str | None = field(
        default=None, metadata={"help": "grey image: white keeps the photo (faces, text)"}
    )
    preset: str = field(default="default", metadata={"help": "named set of defaults"})

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes) -> Options:
        return dataclasses.replace(self, **changes)


def _check(o: Options) -> None:
    """Refuse values that cannot work, with a message that says what to do."""
    choices = {
        "loss_form": ("relative", "book"),
        "optimizer": ("lbfgs", "adam"),
        "pooling": ("max", "avg"),
        "device": ("auto", "cpu", "cuda", "mps"),
        "precision": ("auto", "fp32", "tf32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(o, name) not in allowed:
            raise OptionsError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}")
    for name in ("size", "height"):
        value = getattr(o, name)
        if value is not None and not 32 <= value <= MAX_SIDE:
            raise OptionsError(f"--{name} {value} is out of range; use 32 to {MAX_SIDE} px")
    if o.steps < 1 or o.steps > 1_000_000:
        raise OptionsError(f"--steps {o.steps} is out of range; use 1 to 1000000")
    for name in ("content_weight", "style_weight", "tv_weight", "learning_rate", "style_scale"):
        if not getattr(o, name) >= 0:  # also catches NaN
            raise OptionsError(f"--{name.replace('_', '-')} must be a number >= 0")
    if not 0.05 <= o.style_scale <= 8:
        raise OptionsError("--style-scale must be between 0.05 and 8")
    if not o.time_limit >= 0:
        raise OptionsError("--time-limit must be a number of seconds >= 0 (0: no limit)")
    if o.scale_steps:
        _parse_scale_steps(o)
    if not 0 <= o.scales <= 12:
        raise OptionsError("--scales must be between 0 (automatic) and 12")
    if not 32 <= o.min_size <= MAX_SIDE:
        raise OptionsError(f"--min-size must be between 32 and {MAX_SIDE}")
    parse_bytes(o.max_memory)  # raises OptionsError for a malformed size
    if o.tile and not 64 <= o.tile <= MAX_SIDE:
        raise OptionsError(f"--tile must be 0 (automatic) or between 64 and {MAX_SIDE}")
    if o.lbfgs_restart < 0:
        raise OptionsError("--lbfgs-restart must be >= 0")
    if not 1 <= o.lbfgs_history <= 100:
        raise OptionsError("--lbfgs-history must be between 1 and 100")
    if not o.style_layers:
        raise OptionsError("--style-layers needs at least one layer")
    _check_controls(o)


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``8G``, ``512M``, ``1.5GB`` -> bytes; ``0`` or ``auto`` -> 0 (use what is free)."""
    if text in ("0", "auto", ""):
        return 0
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)I?B?\s*", text.upper())
    if not m or float(m.group(1)) <= 0:
        raise OptionsError(f"--max-memory '{text}' is not a size; write it like 8G or 512M")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_floats(text: str | Sequence, flag: str) -> tuple[float, ...]:
    """``"1,0.5"`` (or a sequence) -> (1.0, 0.5); OptionsError naming ``flag`` otherwise."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = tuple(float(p) for p in parts if str(p).strip())
    except ValueError:
        raise OptionsError(f"{flag} takes comma-separated numbers, got '{text}'") from None
    if any(not v >= 0 for v in values):
        raise OptionsError(f"{flag} weights must be numbers >= 0, got '{text}'")
    return values


def _parse_scale_steps(o: Options) -> None:
    """``--scale-steps 100,60,40``: whole numbers >= 1 (api.scale_plan uses them)."""
    parts = o.scale_steps.split(",") if isinstance(o.scale_steps, str) else o.scale_steps
    try:
        steps = tuple(int(str(p).strip()) for p in parts if str(p).strip())
    except ValueError:
        steps = ()
    if not steps or min(steps) < 1 or len(steps) > 12:
        raise OptionsError(
            "--scale-steps takes 1 to 12 whole numbers >= 1 separated by commas, "
            f"got '{','.join(str(p) for p in parts)}'"
        )
    object.__setattr__(o, "scale_steps", steps)


def _check_controls(o: Options) -> None:
    """The artistic controls (issue 6); see color.py, controls.py and masks.py."""
    if o.preserve_color not in ("none", "luminance", "histogram"):
        raise OptionsError("--preserve-color must be one of none, luminance, histogram")
    if o.color_only and o.preserve_color == "luminance":
        raise OptionsError(
            "--color-only with --preserve-color luminance would return the photo; pick one"
        )
    if not 0 <= o.strength <= 1:  # also catches NaN
        raise OptionsError(f"--strength {o.strength} is out of range; use 0 to 1")
    for name in ("style_layer_weights", "style_blend"):
        flag = "--" + name.replace("_", "-")
        object.__setattr__(o, name, parse_floats(getattr(o, name), flag))
    if o.style_layer_weights and len(o.style_layer_weights) != len(o.style_layers):
        raise OptionsError(
            f"--style-layer-weights has {len(o.style_layer_weights)} weights for "
            f"{len(o.style_layers)} style layers; give one per layer"
        )
    if o.style_layer_weights and not sum(o.style_layer_weights) > 0:
        raise OptionsError("--style-layer-weights needs at least one weight above 0")
    if (o.mask or o.protect) and o.loss_form == "book":
        raise OptionsError("--mask and --protect need --loss-form relative")


PRESETS: dict[str, Options] = {
    # Our default: the paper's layers with size-independent (relative) losses, average
    # pooling and L-BFGS. See README "Presets" for why.
    "default": Options(),
    # For people, not papers: the default with one control turned (issue 6).
    "subtle": Options(strength=0.3, preset="subtle"),  # style weight x0.15: a light touch
    "bold": Options(strength=0.75, preset="bold"),  # style weight x10: the painting takes over
    "keep-colors": Options(preserve_color="luminance", preset="keep-colors"),  # photo's colours
    # Chollet, Deep Learning with Python, 1st ed., 8.3, exactly: 400 px high, style
    # stretched to the content's size, weights 0.025 / 1.0 / 1e-4 on the book's loss
    # forms, max pooling, 20 rounds of L-BFGS of at most 20 evaluations, each round with a
    # fresh optimiser state remembering 10 steps (scipy's default), from the content image.
    "chollet": Options(
        size=None,
        height=400,
        steps=400,
        scales=1,
        lbfgs_restart=20,
        lbfgs_history=10,
        content_weight=0.025,
        style_weight=1.0,
        tv_weight=1e-4,
        content_layer="block5_conv2",
        loss_form="book",
        pooling="max",
        style_stretch=True,
        preset="chollet",
    ),
    # Gatys, Ecker and Bethge (2015/2016): content at conv4_2, each layer's Gram
    # normalised by its own size, no TV, average pooling.
    "gatys": Options(
        content_layer="block4_conv2",
        tv_weight=0.0,
        steps=500,
        scales=1,
        pooling="avg",
        preset="gatys",
    ),
    # The default for machines without pretrained weights: tuned for the offline encoder
    # (encoders/random.py, docs/offline-encoder.md). Style from its five levels; content
    # from its colour-blind luminance branch at full size, which lets the painting's
    # palette in while keeping edges; content 3 : style 1e3 keeps the photo readable even
    # for a painting far from it (a night photo as Hokusai's bright Great Wave).
    "offline": Options(
        weights="random",
        content_layer="luma1",
        style_layers=("level1", "level2", "level3", "level4", "level5"),
        content_weight=3.0,
        style_weight=1e3,
        steps=200,
        preset="offline",
    ),
}


def preset(name: str) -> Options:
    """The preset called ``name``; OptionsError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise OptionsError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}") from None


def option_fields():
    """The dataclass fields, in order, for building CLIs and forms."""
    return fields(Options)
