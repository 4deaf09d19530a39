"""Settings declared once: each field of a settings dataclass carries its kind, range and
help, from which every way in (the CLI's flags, the web form, the Python API) parses and
checks its values.

A field made with :func:`option` carries, besides its default, a :class:`Kind` in its
metadata: what sort of value it takes (a whole number, a comma-separated list of layer
names, a memory size, ...), which values are allowed, and so how text from the command
line or JSON from the web form is turned into that value. The class checks its fields in
``__post_init__`` with :func:`check_fields`; :func:`make` parses raw values first. The
stylisation's :class:`painterly.config.Options` is one such class; training, video,
cluster, report and fast-model settings are others, declared the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import decimal
import math
import numbers
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, SupportsInt, cast

from painterly.errors import OptionsError

if TYPE_CHECKING:

    class _Settings(Protocol):
        """A dataclass, as the type checker knows one (typeshed's DataclassInstance)."""

        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


@dataclass(frozen=True)
class Kind:
    """What an option takes.

    ``name`` is one of ``int``, ``float``, ``bool``, ``str`` (free text), ``choice`` (one
    of ``choices``), ``path`` (a file, or one of ``choices``), ``layer`` (a layer name),
    ``bytes`` (a memory size such as 8G), or a comma-separated list: ``ints``,
    ``floats``, ``layers``, ``texts``; ``repeat``: a list given one item per flag
    (``--models A --models B``), for items that may hold a comma (paths). Numbers (and
    list items) must lie in ``low..high``; ``zero`` also allows 0 (meaning "automatic")
    below ``low``; ``items`` bounds a list's length.
    """

    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    zero: bool = False
    items: tuple[int, int] = (0, 64)
    repeat: bool = False

    @property
    def element(self) -> str:
        """The kind of one item of a list kind (``ints`` -> ``int``)."""
        names = {"ints": "int", "floats": "float", "layers": "layer", "texts": "str"}
        return names.get(self.name, self.name)

    @property
    def is_list(self) -> bool:
        return self.name in ("ints", "floats", "layers", "texts")


def option(default, help: str, kind: str, *, cli: bool = True, metavar: str | None = None, **spec):
    """A settings field: its default, help text and :class:`Kind` (``spec`` is the
    Kind's range and choices). ``cli=False``: a setting of the library only, which the
    command line does not offer; ``metavar``: how help names its value (default: the
    name's last word, ``--max-memory MEMORY``)."""
    metadata = {"help": help, "kind": Kind(kind, **spec), "cli": cli, "metavar": metavar}
    return field(default=default, metadata=metadata)


def like(of: type, name: str, help: str | None = None):
    """A settings field declared as field ``name`` of the settings class ``of`` is
    (default, kind, range), with its own ``help`` if given: one declaration for a
    setting two commands take."""
    f = cast("type[_Settings]", of).__dataclass_fields__[name]
    metadata = {**f.metadata, **({"help": help} if help else {})}
    return field(default=f.default, metadata=metadata)


def kind_of(name: str, of: type) -> Kind:
    """The :class:`Kind` of the option ``name`` of the settings class ``of``."""
    # ``of`` is always a settings dataclass (Options, or one whose fields use option()).
    return cast("type[_Settings]", of).__dataclass_fields__[name].metadata["kind"]


def check_fields(settings) -> None:
    """Check every field of a settings dataclass instance against its Kind (for its
    ``__post_init__``)."""
    for f in fields(settings):
        check_value(f.name, getattr(settings, f.name), type(settings))


def make(of: type, **raw):
    """An instance of the settings class ``of`` from raw values (text as typed, JSON
    numbers), each parsed with :func:`parse_value`; unknown names are refused."""
    return of(**parse_all(raw, of))


_AS_FLAGS: contextvars.ContextVar[bool] = contextvars.ContextVar("as_flags", default=False)


@contextlib.contextmanager
def named_as_flags() -> Iterator[None]:
    """Within the block, messages name options as the command line spells them
    (``--style-weight``); elsewhere (the Python API) as Options' fields do."""
    token = _AS_FLAGS.set(True)
    try:
        yield
    finally:
        _AS_FLAGS.reset(token)


def flag(name: str) -> str:
    """How messages name an option: ``--style-weight`` on the command line (within
    :func:`named_as_flags`), ``style_weight`` to a caller of the Python API."""
    return "--" + name.replace("_", "-") if _AS_FLAGS.get() else name


def show(value) -> str:
    """A value as a message shows it: short, whatever it is (1e308 is not 309 digits)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        if abs(value) < 10**20:
            return str(value)
        try:
            return f"{float(value):.6g}"
        except OverflowError:
            return f"{decimal.Decimal(value):.6g}"
    # Text as typed, quoted; escaped where it holds a newline or other control character,
    # so that the message stays one line.
    text = f"'{value}'" if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_number(value, integer: bool, label: str) -> int | float:
    """``value`` (a number, or text as typed) as an int or float; OptionsError otherwise."""
    what = "a whole number" if integer else "a number"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer and re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise OptionsError(f"{label} must be {what}, got {show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionsError(f"{label} must be {what}, got {show(value)}")
    if isinstance(value, numbers.Integral):  # exact, however large
        return int(value) if integer else _finite_float(value, label)
    if not math.isfinite(value):
        raise OptionsError(f"{label} must be a finite number, got {show(value)}")
    if integer:
        # numbers.Real promises __trunc__, not __int__; every Real that comes here (float,
        # NumPy's floats, Fraction) has __int__, and NumPy's float32 lacks __trunc__.
        if value != int(cast(SupportsInt, value)):
            raise OptionsError(f"{label} must be {what}, got {show(value)}")
        return int(cast(SupportsInt, value))
    return float(value)


def _finite_float(value: numbers.Integral, label: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise OptionsError(f"{label} must be a finite number, got {show(value)}") from None


def _in_range(value, kind: Kind, label: str) -> None:
    if kind.zero and value == 0:
        return
    low = -math.inf if kind.low is None else kind.low
    high = math.inf if kind.high is None else kind.high
    if not low <= value <= high:  # NaN fails too
        zero = "0 or " if kind.zero else ""
        raise OptionsError(
            f"{label} {show(value)} is out of range; use {zero}{show(low)} to {show(high)}"
        )


def parse_bytes(text: str) -> int:
    """``8G``, ``512M``, ``1.5GB`` -> bytes; ``0`` or ``auto`` -> 0 (use what is free)."""
    if text in ("0", "auto", ""):
        return 0
    m = re.fullmatch(r"\s*([0-9]{1,15}(?:\.[0-9]{1,15})?)\s*([KMGT]?)I?B?\s*", text.upper())
    if not m or float(m.group(1)) <= 0:
        raise OptionsError(
            f"{flag('max_memory')} {show(text)} is not a size; write it like 8G or 512M"
        )
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    return int(float(m.group(1)) * units[m.group(2)])


def _one(value, kind_name: str, kind: Kind, label: str):
    """One value (or list item) of kind ``kind_name``, parsed and checked."""
    if kind_name in ("int", "float"):
        number = parse_number(value, kind_name == "int", label)
        _in_range(number, kind, label)
        return number
    if kind_name == "bool":
        if not isinstance(value, bool):
            raise OptionsError(f"{label} must be true or false, got {show(value)}")
        return value
    if not isinstance(value, str):
        raise OptionsError(f"{label} must be text, got {show(value)}")
    value = value.strip()
    if not value:
        raise OptionsError(f"{label} needs a value")
    if kind_name == "choice" and value not in kind.choices:
        raise OptionsError(f"{label} must be one of {', '.join(kind.choices)}, got {show(value)}")
    if kind_name == "bytes":
        parse_bytes(value)
    return value


def parse_value(name: str, value, label: str | None = None, *, of: type):
    """The value of option ``name`` (a field of ``of``) from text as typed on the command
    line, JSON from the web form or a Python value: parsed into the field's type and
    checked against its :class:`Kind`. OptionsError names the option as ``label``
    (default: its flag)."""
    kind, label = kind_of(name, of), label or flag(name)
    if value is None or (isinstance(value, str) and not value.strip() and kind.nullable):
        if not kind.nullable:
            raise OptionsError(f"{label} needs a value")
        return None
    if not kind.is_list:
        return _one(value, kind.name, kind, label)
    if isinstance(value, str):
        parts = [p for p in value.split(",") if p.strip()]
        if value.strip() and not parts:
            raise OptionsError(f"{label} takes comma-separated values, got {show(value)}")
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        raise OptionsError(f"{label} takes comma-separated values, got {show(value)}")
    low, high = kind.items
    if len(parts) < low:
        raise OptionsError(f"{label} needs at least {low} value{'s' * (low > 1)}")
    if len(parts) > high:
        raise OptionsError(f"{label} takes at most {high} values, got {len(parts)}")
    element = kind.element
    if kind.name == "floats" and any(_notnumber(p) for p in parts):
        raise OptionsError(f"{label} takes comma-separated numbers, got {show(value)}")
    return tuple(_one(p, element, kind, label) for p in parts)


def _notnumber(part) -> bool:
    try:
        float(part)
    except (TypeError, ValueError):
        return True
    return isinstance(part, bool)


def check_value(name: str, value, of: type) -> None:
    """Refuse a value of option ``name`` (a field of ``of``) that is not already of its
    type and range (what ``Options(...)`` does; :func:`parse_value` turns text into such
    values)."""
    kind = kind_of(name, of)
    typed = {
        "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
    }.get(kind.element, lambda v: isinstance(v, str))
    if kind.is_list:
        wrong = not isinstance(value, tuple) or not all(typed(v) for v in value)
    else:
        wrong = value is not None and not typed(value)
    if wrong:
        raise OptionsError(
            f"{flag(name)} must be {'a tuple' if kind.is_list else 'of kind ' + kind.name}, got "
            f"{show(value)} ({of.__name__}.make parses text)"
        )
    if value is None and kind.nullable:
        return
    if parse_value(name, value, of=of) != value:
        raise OptionsError(f"{flag(name)}: {show(value)} is not in its parsed form")


def parse_all(raw: dict, of: type) -> dict:
    # ``of`` is always a settings dataclass, as in kind_of.
    unknown = set(raw) - set(cast("type[_Settings]", of).__dataclass_fields__)
    if unknown:
        raise OptionsError(f"unknown option '{sorted(unknown)[0]}'")
    return {name: parse_value(name, value, of=of) for name, value in raw.items()}
