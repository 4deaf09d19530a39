"""The page's form, from :class:`painterly.config.Options`' declarations: which fields it
shows and how (:func:`options_schema`, served as ``/api/options``), and the typed options
a job's request carries (:func:`parse_options`).

A text field reaches the core only through one of the menus :func:`_choices` offers, so
no file path can come from a request.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

import painterly
from painterly.config import PRESETS, Options, option_fields
from painterly.encoders import all_layer_names, pretrained_cached, weights_choices
from painterly.errors import OptionsError
from painterly.image import MIN_SIDE
from painterly.settings import Kind, kind_of, parse_value
from painterly.web.jobs import CURVES, TERMINAL
from painterly.web.limits import Limits
from painterly.web.models import MODEL_FIELDS
from painterly.web.uploads import ACCEPT_MIME, ACCEPTED_FORMATS, ID_RE

# What the page shows at once: the controls people reach for; the rest under "More".
MAIN_FIELDS = ("size", "steps", "weights", "seed", "strength", "style_loss", "preserve_color")
SLIDERS = ("strength",)  # 0..1, shown as a slider
"""Shown at once; every other field of Options goes under "More settings"."""


def _choices() -> dict[str, list[str]]:
    """Values of the text fields the page offers, as menus.

    A text field reaches the core only through one of these lists: ``weights`` and
    ``init`` also take file paths in the CLI, and no path may come from a request. The
    fixed lists come from :func:`form_fields`; the devices, layers and
    weight sets from this machine and the encoders. A text or list field missing here
    is not offered by the page at all.
    """
    devices = ["auto", "cpu"]
    devices += ["cuda"] if torch.cuda.is_available() else []
    devices += ["mps"] if torch.backends.mps.is_available() else []
    layers = all_layer_names()
    fixed = {f["name"]: f["choices"] for f in form_fields() if f.get("choices")}
    return {
        **fixed,
        "weights": weights_choices(),
        "device": devices,
        # VGG's names, then the offline encoder's own (VGG names also work with it).
        "content_layer": layers,
        "style_layers": layers,
    }


def form_fields() -> list[dict]:
    """Each option as a form shows it: name, kind, whether it may be empty, help, the
    choices it offers and its range. Choices that depend on the machine or the encoders
    (devices present, layer names, weight sets) are the caller's to fill in."""
    out = []
    for f in option_fields():
        kind: Kind = f.metadata["kind"]
        item = {"name": f.name, "kind": kind.name, "nullable": kind.nullable}
        item["help"] = f.metadata["help"]
        if kind.choices:
            item["choices"] = list(kind.choices)
        if kind.low is not None:
            item["min"] = 0 if kind.zero else kind.low
        if kind.high is not None:
            item["max"] = kind.high
        out.append(item)
    return out


_FORM_KIND = {"ints": "list", "floats": "list", "layers": "list", "int": "int", "float": "float"}


def _kind(f) -> str:
    """How the page shows a field: bool, int, float, list or str (a menu)."""
    kind = kind_of(f.name, Options).name
    return "bool" if kind == "bool" else _FORM_KIND.get(kind, "str")


_LABEL_WORDS = {"tv": "TV", "lbfgs": "L-BFGS"}


def field_label(name: str) -> str:
    """A field as the page labels it: ``tv_weight`` -> ``TV weight``."""
    words = [_LABEL_WORDS.get(w, w) for w in name.split("_")]
    return " ".join(words)[0].upper() + " ".join(words)[1:]


def _web_fields() -> list:
    choices = _choices()
    return [
        f
        for f in option_fields()
        if f.name != "preset" and (_kind(f) not in ("str", "list") or f.name in choices)
    ]


def options_schema(limits: Limits) -> dict:
    """What the page builds its form from: fields, presets and limits."""
    choices = _choices()
    out = []
    form = {item["name"]: item for item in form_fields()}
    for f in _web_fields():
        item = {
            "name": f.name,
            "label": field_label(f.name),
            "kind": _kind(f),
            "nullable": form[f.name]["nullable"],
            "help": form[f.name]["help"],
            "main": f.name in MAIN_FIELDS,
            "slider": f.name in SLIDERS,
        }
        item.update({k: form[f.name][k] for k in ("min", "max") if k in form[f.name]})
        if f.name in choices:
            item["choices"] = choices[f.name]
        if f.name in ("size", "height"):
            item.update(min=MIN_SIDE, max=limits.max_side)
        elif f.name == "steps":
            item.update(max=limits.max_steps)
        out.append(item)
    out.sort(key=lambda item: not item["main"])  # main fields first, in the dataclass order
    return {
        "fields": out,
        "presets": {name: _jsonable(asdict(p)) for name, p in PRESETS.items()},
        # Without cached pretrained weights a run would fall back to the offline encoder
        # (or try a download first): show its own preset, so that the form shows what runs.
        "default_preset": "default" if pretrained_cached("vgg19") else "offline",
        "model_fields": list(MODEL_FIELDS),
        "limits": asdict(limits),
        "accept": ACCEPT_MIME,
        # Constants the page shares with the server, served rather than copied:
        "formats": list(ACCEPTED_FORMATS.values()),  # the images it reads, as shown
        "terminal_statuses": list(TERMINAL),  # a job in one of these has ended
        "loss_parts": list(CURVES),  # the losses each point of a job's history carries
        "id_pattern": ID_RE.pattern,  # of upload and job ids
        "version": painterly.__version__,
    }


def _jsonable(data: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def parse_options(raw: dict[str, Any], base: Options) -> dict[str, Any]:
    """The fields of ``raw`` (JSON from the form) that differ from ``base``, typed.

    OptionsError names the field as the page labels it.
    """
    by_name = {f.name: f for f in _web_fields()}
    choices = _choices()
    changed = {}
    for name, value in raw.items():
        f = by_name.get(name)
        if f is None:
            raise OptionsError(f"unknown option '{name}'")
        label, kind = field_label(name), _kind(f)
        if value is None or value == "":
            value = parse_value(name, None, label, of=Options)  # None, or "needs a value"
        elif kind in ("bool", "int", "float"):
            if kind != "bool" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise OptionsError(f"{label} must be a number")
            value = parse_value(name, value, label, of=Options)
        elif kind == "list":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise OptionsError(f"{label} must be a list of names")
            value = parse_value(name, [v for v in items if v.strip()], label, of=Options)
            bad = [v for v in value if v not in choices[name]]
            if bad:
                raise OptionsError(f"{label}: '{bad[0]}' is not one of {', '.join(choices[name])}")
        elif not isinstance(value, str) or value not in choices[name]:
            raise OptionsError(f"{label} must be one of {', '.join(choices[name])}")
        if value != getattr(base, name):
            changed[name] = value
    return changed
