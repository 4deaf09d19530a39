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
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from painterly import __version__, files
from painterly.errors import ModelError
from painterly.fast.network import TransformerNet

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
            "painterly_version": self.version,
        }

    def image_metadata(self, model_name: str) -> dict[str, str]:
        """Text chunks of an image this model paints: its file name and its metadata."""
        return {
            "Software": f"painterly {self.version}",
            "painterly:model": model_name,
            **{f"painterly:model:{k}": v for k, v in self.metadata().items()},
        }

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


def _read(path: Path, tag: str, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file carrying ``tag``; ModelError
    for anything else (missing, a text file, truncated, another program's file)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != tag:
                raise ModelError(
                    f"{path} is a safetensors file but not a painterly {what} "
                    f"(no '{tag}' tag); train one with `painterly train`"
                )
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())[:120] or type(err).__name__
        raise ModelError(f"{path} is not a readable {what} ({reason})") from None
    return tensors, metadata


def _info(metadata: dict[str, str], path: Path) -> ModelInfo:
    try:
        return ModelInfo(
            width=int(metadata["width"]),
            blocks=int(metadata["blocks"]),
            styles=json.loads(metadata["styles"]),
            encoder=metadata["encoder"],
            options=json.loads(metadata["options"]),
            iterations=int(metadata["iterations"]),
            version=metadata["painterly_version"],
        )
    except (KeyError, ValueError, TypeError) as err:
        raise ModelError(f"{path} has damaged metadata ({type(err).__name__}: {err})") from None


def _network(tensors: dict[str, torch.Tensor], info: ModelInfo, path: Path) -> TransformerNet:
    if not (1 <= info.width <= 1024 and 0 <= info.blocks <= 64):
        raise ModelError(f"{path} names an impossible network (width {info.width})")
    net = TransformerNet(info.width, info.blocks)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise ModelError(f"{path} does not hold the weights its metadata describes") from None
    return net.eval().requires_grad_(False)


def read_info(path: str | os.PathLike) -> ModelInfo:
    """A model file's metadata, without building the network."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        raise ModelError(f"{path} is not a readable fast model") from None
    if metadata.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path} is not a painterly fast model")
    return _info(metadata, path)


def load_model(path: str | os.PathLike) -> tuple[TransformerNet, ModelInfo]:
    """The network (in eval mode, frozen, on the CPU) and its metadata."""
    path = Path(path)
    tensors, metadata = _read(path, MODEL_FORMAT, "fast model")
    info = _info(metadata, path)
    return _network(tensors, info, path), info


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


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    tensors, metadata = _read(path, CHECKPOINT_FORMAT, "training checkpoint")
    net_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    slots: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, value in tensors.items():
            if key.startswith("adam."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value
        return Checkpoint(
            net_state=net_state,
            optimizer_state={
                "state": slots,
                "param_groups": json.loads(metadata["param_groups"]),
            },
            iteration=int(metadata["iteration"]),
            settings=json.loads(metadata["settings"]),
            history=json.loads(metadata["history"]),
        )
    except (KeyError, ValueError) as err:
        raise ModelError(f"{path} has damaged metadata ({type(err).__name__})") from None


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
    out = []
    for folder in [models_dir(), *map(Path, folders)]:
        for path in sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []:
            try:
                out.append((path, read_info(path)))
            except ModelError:
                out.append((path, None))
    return out
