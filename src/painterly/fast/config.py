"""How a fast model is trained (:class:`TrainConfig`) and applied (:class:`ApplyConfig`),
declared like :class:`painterly.config.Options` (each field's default, help and kind in
one place, from which ``painterly train`` and ``apply`` build their flags and checks), and
which of Options' fields training takes. Free of torch, so that ``painterly --help``
stays light."""

from __future__ import annotations

from dataclasses import dataclass, replace

from painterly.config import MAX_SEED, Options
from painterly.settings import check_fields, like, option

DEFAULT_WIDTH = 32  # the paper's
SMALL_WIDTH = 16  # about 4x fewer operations: the CPU variant
DEFAULT_BLOCKS = 5
MAX_WIDTH = 256  # the largest network that training makes and that a model file may name
MAX_BLOCKS = 32
MAX_BATCH = 256  # crops per iteration: more only fills the memory
CPU_BATCH = 2  # the 30-minute CPU recipe's (docs/fast-models.md)
GPU_BATCH = 4  # the paper's

# Options fields that mean something to training (the losses and the encoder).
TRAIN_OPTIONS = (
    "preset",
    "weights",
    "device",
    "content_weight",
    "style_weight",
    "tv_weight",
    "strength",
    "content_layer",
    "style_layers",
    "style_loss",
    "style_layer_weights",
    "threads",
    "style_blend",
    "style_scale",
    "pooling",
)
# A network starts from nothing and must learn to keep the photo's structure, which
# optimisation (started from the photo) keeps for free: trained at the presets' 0.5 it
# painted coarse colour fields; at 0.3 its edges follow the photo (docs/fast-models.md).
TRAIN_STRENGTH = 0.3
# Training's objective, unless --style-loss or a --preset says otherwise: the Gram loss,
# at which TRAIN_STRENGTH was measured. (The offline preset's meancov paints more in
# optimisation; a network trained toward it is a choice, --style-loss meancov.)
TRAIN_STYLE_LOSS = "gram"


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (the losses are in :class:`painterly.config.Options`)."""

    iterations: int = option(2000, "training iterations", "int", low=1, high=10**9)
    batch_size: int = option(
        0,
        f"crops per iteration (0: {CPU_BATCH} on a CPU, {GPU_BATCH} on a GPU)",
        "int",
        low=1,
        high=MAX_BATCH,
        zero=True,
    )
    # MIN_SIDE (painterly.image): the encoder's deepest level needs a few pixels
    crop: int = option(256, "side of the training crops in px", "int", low=32, high=4096)
    width: int = option(
        0,
        f"channels of the first layer (0: {SMALL_WIDTH} on a CPU, {DEFAULT_WIDTH} on a GPU, "
        "the paper's; 8: faster still)",
        "int",
        low=1,
        high=MAX_WIDTH,
        zero=True,
    )
    blocks: int = option(DEFAULT_BLOCKS, "residual blocks", "int", low=0, high=MAX_BLOCKS)
    learning_rate: float = option(1e-3, "Adam's step size", "float", low=1e-9, high=1)
    seed: int = option(
        0, "seed of the starting weights and of the crops", "int", low=0, high=MAX_SEED
    )
    time_limit: float = option(
        0.0, "stop after this many seconds (0: no limit)", "float", low=0, high=1e9
    )
    save_every: int = option(
        200,
        "checkpoint (and preview) every N iterations (0: only at the end)",
        "int",
        low=0,
        high=10**9,
    )
    jitter: float = option(
        2.0,
        "a crop covers 1/jitter .. all of a photo's short side",
        "float",
        low=1,
        high=16,
        cli=False,
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def for_device(self, device_type: str) -> TrainConfig:
        """This config with the sizes left at 0 chosen for the device: the 30-minute CPU
        recipe of docs/fast-models.md on a CPU, the paper's network and batch elsewhere."""
        on_cpu = device_type == "cpu"
        return replace(
            self,
            width=self.width or (SMALL_WIDTH if on_cpu else DEFAULT_WIDTH),
            batch_size=self.batch_size or (CPU_BATCH if on_cpu else GPU_BATCH),
        )


# The stylize options that mean something to a fast model: the output's size and how the
# pass runs (ApplyConfig's fields); the model carries the style, encoder and losses.
MODEL_OPTIONS = ("size", "height", "tile", "max_memory", "device", "preserve_color")


@dataclass(frozen=True)
class ApplyConfig:
    """How a model paints a photo (painterly.fast.apply)."""

    tile: int = like(Options, "tile", "tile side in px (0: from --max-memory)")
    max_memory: str = like(
        Options, "max_memory", "memory a pass may use, e.g. 2G (auto: most of what is free)"
    )
    device: str = like(Options, "device")
    preserve_color: str = like(Options, "preserve_color")

    def __post_init__(self) -> None:
        check_fields(self)
