"""Property: whatever the bytes of the images and whatever the numbers on the command line,
``painterly stylize`` ends with exit code 0, or 2 and one line on stderr; never a
traceback, never exit code 1.

Runs are in-process (``painterly.cli.main``) on 48 px images, one step, offline weights.
Values that would be accepted but make a long run (a large --size, many steps) are
skipped: the property is about refusals, and each run must stay well under a second.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from synthetic import blob, stripes

from painterly.cli import main
from painterly.config import Options
from painterly.errors import OptionsError
from painterly.settings import parse_value

FAST = ["--weights", "random", "--size", "48", "--steps", "1", "--quiet"]
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    blob(48, 32).save(buffer, format=fmt)
    return buffer.getvalue()


IMAGES = {".png": _encoded("PNG"), ".jpg": _encoded("JPEG")}


def run(argv_of) -> tuple[int, str]:
    """Run the CLI in a fresh folder; ``argv_of(folder)`` gives the arguments."""
    with tempfile.TemporaryDirectory() as folder:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([str(a) for a in argv_of(Path(folder))])
    return code, err.getvalue()


def assert_clean(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("painterly: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err, err


@st.composite
def damaged(draw) -> tuple[str, bytes]:
    """A small PNG or JPEG, truncated, with bytes flipped, or noise."""
    suffix = draw(st.sampled_from(sorted(IMAGES)))
    data = bytearray(IMAGES[suffix])
    how = draw(st.sampled_from(["truncate", "flip", "both", "noise"]))
    if how == "noise":
        return suffix, draw(st.binary(max_size=2048))
    if how in ("flip", "both"):
        for _ in range(draw(st.integers(1, 8))):
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.integers(0, 255))
    if how in ("truncate", "both"):
        data = data[: draw(st.integers(0, len(data)))]
    return suffix, bytes(data)


@SETTINGS
@given(photo=damaged(), painting=damaged(), which=st.sampled_from(["photo", "painting", "both"]))
def test_damaged_images_never_give_a_traceback(photo, painting, which):
    def argv(folder: Path):
        content, style = folder / f"photo{photo[0]}", folder / f"painting{painting[0]}"
        content.write_bytes(photo[1] if which != "painting" else IMAGES[photo[0]])
        style.write_bytes(painting[1] if which != "photo" else IMAGES[painting[0]])
        return ["stylize", content, style, "-o", folder / "out.png", *FAST]

    assert_clean(*run(argv))


NUMERIC = [
    "size",
    "height",
    "steps",
    "seed",
    "time_limit",
    "scales",
    "scale_steps",
    "min_size",
    "tile",
    "content_weight",
    "style_weight",
    "tv_weight",
    "learning_rate",
    "lbfgs_restart",
    "lbfgs_history",
    "style_scale",
    "strength",
    "style_layer_weights",
    "style_blend",
    "max_memory",
]

SPECIAL = ["nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "0", "-0", "", " ", ",", "1,"]

values = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=12),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.floats(allow_nan=True, allow_infinity=True).map(str), max_size=6).map(",".join),
)


def _costly(name: str, text: str) -> bool:
    """Whether ``--name text`` is accepted and would make the run long."""
    try:
        value = parse_value(name, text, of=Options)
    except OptionsError:
        return False
    if value is None:
        return name == "size"  # no --size: the photo's own size, which is small too
    limits = {"size": 64, "height": 64, "steps": 3, "min_size": 64, "style_scale": 2}
    if name == "scale_steps":
        return sum(value) > 3
    return name in limits and value > limits[name]


@SETTINGS
@given(
    options=st.lists(st.tuples(st.sampled_from(NUMERIC), values), min_size=1, max_size=3),
    weight=st.one_of(st.none(), values),
)
@example(options=[("size", ":\n")], weight=None)  # a newline in the value: still one line
def test_any_numbers_on_the_command_line_never_give_a_traceback(options, weight):
    assume(not any(_costly(name, text) for name, text in options))
    assume(not any("\0" in text for _, text in options) and "\0" not in str(weight))

    def argv(folder: Path):
        content, style = folder / "photo.png", folder / "painting.png"
        blob(48, 32).save(content)
        stripes().save(style)
        spec = str(style) if weight is None else f"{style}:{weight}"
        flags = [f"--{name.replace('_', '-')}={text}" for name, text in options]
        return ["stylize", content, spec, "-o", folder / "out.png", *FAST, *flags]

    assert_clean(*run(argv))
