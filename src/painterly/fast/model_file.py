"""Fast-model files: the network's weights in safetensors, never a pickle.

A pickle runs code when it is loaded; a safetensors file is a JSON header and raw
tensors, so opening a model someone sent you cannot do anything but fail or load. The
header's metadata (text only) says what the model is: a format tag, the network's width
and depth, the styles it was trained on (names and SHA-256 of their files), the
encoder, the training options and iterations, and the painterly version.

Checkpoints (:func:`save_checkpoint`) are safetensors files too, with the optimiser's
state beside the weights, so that ``painterly train --resume`` continues exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import torch

from painterly import __version__, files
from painterly.errors import ModelError
from painterly.fast.config import MAX_BLOCKS, MAX_WIDTH
from painterly.fast.network import TransformerNet, parameter_shapes
from painterly.memory import available_bytes

MODEL_FORMAT = "painterly-fast-model/1"
CHECKPOINT_FORMAT = "painterly-fast-checkpoint/1"
SUFFIX = ".safetensors"


@dataclass
class ModelInfo:
    """What a model file says about itself (its metadata, parsed)."""

    width: int
    blocks: int
    styles: list[dict]  # {"name", "sha256", "weight"} per style file
    encoder: str
    options: dict
    iterations: int
    version: str
    planned: int = 0  # the iterations training was asked for (0: not recorded)
    under_trained: str = ""  # why the model is not finished ("": it is), see train.py
    heldout: list = field(default_factory=list)  # [iteration, held-out loss] per checkpoint

    def metadata(self) -> dict[str, str]:
        """For the safetensors header and for the images a model paints."""
        return {
            "format": MODEL_FORMAT,
            "width": str(self.width),
            "blocks": str(self.blocks),
            "styles": json.dumps(self.styles),
            "encoder": self.encoder,
            "options": json.dumps(self.options, sort_keys=True),
            "iterations": str(self.iterations),
            "planned_iterations": str(self.planned or self.iterations),
            "under_trained": self.under_trained,
            "heldout": json.dumps(self.heldout),
            "painterly_version": self.version,
        }

    def image_metadata(self, model_name: str) -> dict[str, str]:
        """Text chunks of an image this model paints: its file name and its metadata."""
        return {
            "Software": f"painterly {self.version}",
            "painterly:model": model_name,
            **{f"painterly:model:{k}": v for k, v in self.metadata().items()},
        }

    def warning(self, name: str) -> str:
        """What to tell a user of model ``name`` who is about to paint with it: "" for a
        finished model."""
        if not self.under_trained:
            return ""
        return (
            f"{name} is under-trained ({self.under_trained}); its results will be poor "
            "until `painterly train ... --resume` finishes it"
        )

    @property
    def style_names(self) -> str:
        return "+".join(s["name"] for s in self.styles) or "?"


def _tensors(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    state = module.state_dict()
    return {prefix + k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save

    files.write_bytes(path, save(tensors, metadata=metadata))


def save_model(path: str | os.PathLike, net: TransformerNet, info: ModelInfo) -> Path:
    """Write ``net`` and ``info`` to ``path`` atomically."""
    path = Path(path)
    _write(path, _tensors(net), info.metadata())
    return path


def _open(path: Path, what: str):
    """``safe_open`` of ``path``; ModelError for a path that is no readable file."""
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        raise ModelError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ModelError(f"{path} is not a file; give the path of a {what} ({SUFFIX})")
    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not a readable {what} ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split())[:120] or type(err).__name__


def _metadata(fh, path: Path, tag: str, what: str) -> dict[str, str]:
    metadata = fh.metadata() or {}
    if metadata.get("format") != tag:
        raise ModelError(
            f"{path} is a safetensors file but not a painterly {what} "
            f"(no '{tag}' tag); train one with `painterly train`"
        )
    return metadata


def _read_tensors(
    fh, path: Path, what: str, expected: dict[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """The tensors of an open file, once their names, shapes and types match
    ``expected`` and their size fits in memory; each must hold finite numbers only. All
    of it is checked from the header first, so that a file claiming a huge network is
    refused before anything is allocated."""
    from safetensors import SafetensorError

    try:
        shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        dtypes = {k: fh.get_slice(k).get_dtype() for k in shapes}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not a readable {what} ({_reason(err)})") from None
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in expected if k in shapes and shapes[k] != expected[k])
    if missing or extra or wrong:
        first = (missing or extra or wrong)[0]
        kind = "lacks" if missing else "has an unexpected" if extra else "has a wrongly shaped"
        raise ModelError(
            f"{path} does not hold the weights its metadata describes ({kind} tensor {first})"
        )
    odd = sorted(k for k, dtype in dtypes.items() if dtype != "F32")
    if odd:
        raise ModelError(f"{path} has a tensor of type {dtypes[odd[0]]} ({odd[0]}); want F32")
    need = 4 * sum(math.prod(shape) for shape in shapes.values())
    have = available_bytes(torch.device("cpu"))
    if need > have:
        raise ModelError(
            f"{path} describes a network of {need / 2**30:.1f} GB, more than the "
            f"{have / 2**30:.1f} GB of memory free here"
        )
    try:
        tensors = {k: fh.get_tensor(k) for k in shapes}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not a readable {what} ({_reason(err)})") from None
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ModelError(
                f"{path} holds weights that are not finite numbers ({name}: NaN or "
                "infinity); the training that made it diverged, so train it again"
            )
    return tensors


def _text(metadata: dict[str, str], key: str) -> str:
    value = metadata[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is empty")
    return value


def _whole(metadata: dict[str, str], key: str, low: int, high: int) -> int:
    value = int(metadata[key])
    if not low <= value <= high:
        raise ValueError(f"{key} {value} is outside {low}..{high}")
    return value


def _json(metadata: dict[str, str], key: str, kind: type):
    value = json.loads(metadata[key])
    if not isinstance(value, kind):
        raise ValueError(f"{key} is not a JSON {kind.__name__}")
    return value


def _styles(raw: list) -> list[dict]:
    for item in raw:
        ok = isinstance(item, dict) and isinstance(item.get("name"), str)
        if not ok or not isinstance(item.get("weight", 1.0), int | float):
            raise ValueError("styles must be a list of {name, sha256, weight}")
    return raw


def _curve(metadata: dict[str, str]) -> list:
    """The held-out curve, [[iteration, loss], ...]; [] where none was recorded."""
    if "heldout" not in metadata:
        return []
    curve = _json(metadata, "heldout", list)
    if not all(
        isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in curve
    ):
        raise ValueError("heldout is not a list of [iteration, loss] pairs")
    return curve


def _info(metadata: dict[str, str], path: Path) -> ModelInfo:
    try:
        return ModelInfo(
            width=_whole(metadata, "width", 1, MAX_WIDTH),
            blocks=_whole(metadata, "blocks", 0, MAX_BLOCKS),
            styles=_styles(_json(metadata, "styles", list)),
            encoder=_text(metadata, "encoder"),
            options=_json(metadata, "options", dict),
            iterations=_whole(metadata, "iterations", 0, 2**62),
            version=_text(metadata, "painterly_version"),
            # Files written before these were recorded hold neither.
            planned=_whole(metadata, "planned_iterations", 0, 2**62)
            if "planned_iterations" in metadata
            else 0,
            under_trained=metadata.get("under_trained", "")[:200],
            heldout=_curve(metadata),
        )
    except (KeyError, ValueError, TypeError) as err:
        raise ModelError(f"{path} has damaged metadata ({type(err).__name__}: {err})") from None


def read_info(path: str | os.PathLike) -> ModelInfo:
    """A model file's metadata, checked, without reading its weights."""
    path = Path(path)
    with _open(path, "fast model") as fh:
        return _info(_metadata(fh, path, MODEL_FORMAT, "fast model"), path)


def load_model(path: str | os.PathLike) -> tuple[TransformerNet, ModelInfo]:
    """The network (in eval mode, frozen, on the CPU) and its metadata. Everything the
    header says is checked before the network is built: ModelError otherwise."""
    path = Path(path)
    with _open(path, "fast model") as fh:
        info = _info(_metadata(fh, path, MODEL_FORMAT, "fast model"), path)
        tensors = _read_tensors(fh, path, "fast model", parameter_shapes(info.width, info.blocks))
    net = TransformerNet(info.width, info.blocks)
    net.load_state_dict(tensors, strict=True)
    return net.eval().requires_grad_(False), info


# --- checkpoints ----------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Everything ``--resume`` needs: the weights, Adam's state, how far the run got, the
    settings it was made with (a resume must use the same) and its loss history."""

    net_state: dict[str, torch.Tensor]
    optimizer_state: dict
    iteration: int
    settings: dict
    history: list[dict]


ADAM_SLOTS = ("step", "exp_avg", "exp_avg_sq")


def save_checkpoint(
    path: str | os.PathLike,
    net: TransformerNet,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    settings: dict,
    history: list[dict],
) -> None:
    """Write a checkpoint atomically: an old one stays whole until the new one is."""
    state = optimizer.state_dict()
    tensors = _tensors(net, "model.")
    for index, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"adam.{index}.{name}"] = value.detach().cpu().contiguous().clone()
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "iteration": str(iteration),
        "param_groups": json.dumps(state["param_groups"]),
        "settings": json.dumps(settings, sort_keys=True),
        "history": json.dumps(history),
        "painterly_version": __version__,
    }
    _write(Path(path), tensors, metadata)


def _is_number(value) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_record(item) -> bool:
    """One point of the loss history: its iteration, seconds and losses, all numbers."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("iteration"), int)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item.values())
        and "seconds" in item
    )


def _checkpoint_shapes(settings: dict, param_groups: list) -> dict[str, tuple[int, ...]]:
    """What a checkpoint of these settings holds: the network's weights as ``model.*``
    and, for each parameter Adam has stepped, its three slots as ``adam.<index>.*``."""
    train = settings.get("train")
    if not isinstance(train, dict):
        raise ValueError("settings lack the training settings")
    width, blocks = train.get("width"), train.get("blocks")
    if not (isinstance(width, int) and 1 <= width <= MAX_WIDTH):
        raise ValueError(f"width {width!r} is outside 1..{MAX_WIDTH}")
    if not (isinstance(blocks, int) and 0 <= blocks <= MAX_BLOCKS):
        raise ValueError(f"blocks {blocks!r} is outside 0..{MAX_BLOCKS}")
    weights = parameter_shapes(width, blocks)
    with torch.device("meta"):
        params = [tuple(p.shape) for p in TransformerNet(width, blocks).parameters()]
    group = param_groups[0] if len(param_groups) == 1 else None
    if not isinstance(group, dict) or group.get("params") != list(range(len(params))):
        raise ValueError("param_groups do not match the network")
    betas = group.get("betas")
    numbers = [group.get(k) for k in ("lr", "eps", "weight_decay")]
    if not (isinstance(betas, list) and len(betas) == 2):
        raise ValueError("param_groups lack Adam's two betas")
    if not all(_is_number(v) and v >= 0 for v in numbers + betas):
        raise ValueError("param_groups hold settings that are not numbers of 0 or more")
    shapes = {f"model.{k}": v for k, v in weights.items()}
    for index, shape in enumerate(params):
        shapes.update({f"adam.{index}.step": (), f"adam.{index}.exp_avg": shape})
        shapes[f"adam.{index}.exp_avg_sq"] = shape
    return shapes


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """A checkpoint, with everything in it checked (ModelError: what is wrong and that
    ``--overwrite`` starts afresh)."""
    path = Path(path)
    what = "training checkpoint"
    with _open(path, what) as fh:
        metadata = _metadata(fh, path, CHECKPOINT_FORMAT, what)
        try:
            iteration = _whole(metadata, "iteration", 0, 2**62)
            settings = _json(metadata, "settings", dict)
            history = _json(metadata, "history", list)
            if not all(_is_record(h) for h in history):
                raise ValueError("history is not a list of {iteration, seconds, losses}")
            param_groups = _json(metadata, "param_groups", list)
            expected = _checkpoint_shapes(settings, param_groups)
        except (KeyError, ValueError, TypeError) as err:
            raise ModelError(
                f"{path} has damaged metadata ({type(err).__name__}: {err}); start afresh "
                "with --overwrite"
            ) from None
        # Adam keeps no slots for a run that has not stepped yet.
        if not any(k.startswith("adam.") for k in fh.keys()):  # noqa: SIM118
            expected = {k: v for k, v in expected.items() if k.startswith("model.")}
        tensors = _read_tensors(fh, path, what, expected)
    net_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("adam."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value
    return Checkpoint(
        net_state=net_state,
        optimizer_state={"state": slots, "param_groups": param_groups},
        iteration=iteration,
        settings=settings,
        history=history,
    )


# --- where models live ----------------------------------------------------------------


def models_dir() -> Path:
    """The folder ``painterly models`` lists and bare model names refer to."""
    from painterly.encoders.cache import cache_dir

    return cache_dir() / "models"


def resolve_model_path(name: str, *, for_writing: bool = False) -> Path:
    """A model path as the user gave it: a bare name without a folder or extension
    (``starry``) means ``models_dir()/starry.safetensors``; anything else is a path."""
    if os.sep in name or (os.altsep and os.altsep in name) or Path(name).suffix:
        return Path(name).expanduser()
    if not for_writing and Path(name).is_file():
        return Path(name)
    folder = models_dir()
    if for_writing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ModelError(f"cannot create {folder} ({err.strerror}); give -o a path") from None
    return folder / (name + SUFFIX)


def list_models(
    folders: Sequence[str | os.PathLike] = (),
) -> list[tuple[Path, ModelInfo | None]]:
    """Every ``*.safetensors`` in :func:`models_dir`, then in each of ``folders``, with
    its metadata (None: unreadable)."""
    out: list[tuple[Path, ModelInfo | None]] = []
    for folder in [models_dir(), *map(Path, folders)]:
        for path in sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []:
            try:
                out.append((path, read_info(path)))
            except ModelError:
                out.append((path, None))
    return out
