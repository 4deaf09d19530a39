"""Every option of a stylisation, with its default, in one frozen dataclass.

The CLI builds its flags from these fields and the web form and report read them too, so
a default lives here and nowhere else. Presets are named instances.
"""

from __future__ import annotations

import dataclasses
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
    steps: int = field(default=300, metadata={"help": "loss evaluations (optimisation steps)"})
    weights: str = field(
        default="auto",
        metadata={"help": "auto, random, vgg19, vgg19-torchvision, vgg16 or a weights file"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 on GPUs, fp32 on CPUs), fp32, tf32 or bf16"},
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
    init: str = field(default="content", metadata={"help": "content, noise or an image path"})
    pooling: str = field(default="avg", metadata={"help": "max or avg pooling in the encoder"})
    style_stretch: bool = field(
        default=False, metadata={"help": "resize the style to exactly the output size (the book)"}
    )
    style_scale: float = field(
        default=1.0, metadata={"help": "style image's long side relative to the output's"}
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
    if o.lbfgs_restart < 0:
        raise OptionsError("--lbfgs-restart must be >= 0")
    if not o.style_layers:
        raise OptionsError("--style-layers needs at least one layer")


PRESETS: dict[str, Options] = {
    # Our default: the paper's layers with size-independent (relative) losses, average
    # pooling and L-BFGS. See README "Presets" for why.
    "default": Options(),
    # Chollet, Deep Learning with Python, 1st ed., 8.3, exactly: 400 px high, style
    # stretched to the content's size, weights 0.025 / 1.0 / 1e-4 on the book's loss
    # forms, max pooling, 20 rounds of L-BFGS of at most 20 evaluations, each round with a
    # fresh optimiser state, starting from the content image.
    "chollet": Options(
        size=None,
        height=400,
        steps=400,
        lbfgs_restart=20,
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
        pooling="avg",
        preset="gatys",
    ),
    # The default for machines without pretrained weights: tuned for the offline encoder.
    "offline": Options(weights="random", preset="offline"),
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
