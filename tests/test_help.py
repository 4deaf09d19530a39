"""What ``--help`` lists, each command accepts: every option flag of a command, given at
once at its default value (the run kept tiny), is taken by a real run of it, and the
flags of one photo's regions are neither listed nor taken where many images are painted."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from PIL import Image
from synthetic import blob, stripes

from painterly.cli import build_parser, main
from painterly.config import ONE_PHOTO, PRESETS, Options
from painterly.fast.config import TrainConfig
from painterly.video import VideoConfig

# Where a default would make the run slow, or names no file: the value given instead.
SMALL = {
    "size": "48",
    "steps": "1",
    "scales": "1",
    "min_size": "32",
    "weights": "offline",
    "iterations": "1",
    "batch_size": "1",
    "crop": "32",
    "width": "4",
    "blocks": "0",
    "first_steps": "1",
    "max_frames": "2",
}


def listed_flags(command: str) -> list[str]:
    """The long flags ``painterly COMMAND --help`` lists, in order."""
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    text = sub.format_help()
    return sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text)) - {"--help"})


def as_given(
    settings: type, flags: list[str], mask: str | None = None, skip: tuple[str, ...] = ()
) -> list[str]:
    """Every field of ``settings`` that ``flags`` lists (but ``skip``), as arguments at
    its default (or SMALL's value): an empty list or None as an empty value."""
    argv = []
    base = PRESETS["default"] if settings is Options else settings()
    for f in fields(settings):
        flag = "--" + f.name.replace("_", "-")
        if flag not in flags or f.name in skip:
            continue
        value = SMALL.get(f.name, getattr(base, f.name))
        if f.name in ("mask", "protect") and mask:
            value = mask
        if f.name == "mask_styles" and mask:
            value = "#000000=0,#ffffff=0"  # both halves of the mask: the one painting
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            argv += [flag, ""]
        else:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return argv


@pytest.fixture
def images(tmp_path):
    photo, painting, mask = tmp_path / "photo.png", tmp_path / "painting.png", tmp_path / "m.png"
    blob(48, 32).save(photo)
    stripes(48, 32).save(painting)
    halves = Image.new("RGB", (48, 32))  # black left, white right
    halves.paste((255, 255, 255), (24, 0, 48, 32))
    halves.save(mask)
    return photo, painting, mask


def run_ok(capsys, argv: list) -> None:
    code = main([str(a) for a in argv])
    assert code == 0, capsys.readouterr().err


def test_stylize_takes_every_option_it_lists(tmp_path, images, capsys):
    photo, painting, mask = images
    flags = listed_flags("stylize")
    given = as_given(Options, flags, mask=str(mask))
    assert "--mask" in given and "--protect" in given and "--style-layers" in given
    run_ok(capsys, ["stylize", photo, painting, "-o", tmp_path / "o.png", "--quiet", *given])


def test_batch_takes_every_option_it_lists_and_lists_no_region_flags(tmp_path, images, capsys):
    photo, painting, mask = images
    flags = listed_flags("batch")
    for name in ONE_PHOTO:
        assert "--" + name.replace("_", "-") not in flags
    given = as_given(Options, flags)
    assert "--strength" in given and "--preset" in given
    run_ok(capsys, ["batch", photo, "--style", painting, "-o", tmp_path / "out", "--quiet", *given])
    # What it does not list, it does not take: argparse's own one line.
    code = main(
        ["batch", str(photo), "--style", str(painting), "-o", str(tmp_path / "o2")]
        + ["--mask", str(mask)]
    )
    assert code == 2 and "unrecognized arguments: --mask" in capsys.readouterr().err


def test_explain_takes_every_option_it_lists(tmp_path, images, capsys):
    photo, painting, _ = images
    flags = listed_flags("explain")
    given = as_given(Options, flags)
    given += ["--recon-size", "48", "--recon-steps", "1"]
    run_ok(capsys, ["explain", photo, painting, "-o", tmp_path / "r.html", "--quiet", *given])


def test_train_takes_every_setting_it_lists(tmp_path, images, capsys):
    photo, painting, _ = images
    folder = tmp_path / "photos"
    folder.mkdir()
    blob(48, 32).save(folder / "a.png")
    flags = listed_flags("train")
    given = as_given(TrainConfig, flags) + as_given(Options, flags)
    assert "--iterations" in given and "--content-weight" in given and "--mask" not in flags
    model = tmp_path / "m.safetensors"
    run_ok(capsys, ["train", painting, "--images", folder, "-o", model, "--quiet", *given])


def test_video_takes_every_setting_it_lists(tmp_path, images, capsys):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    photo, painting, _ = images
    clip = tmp_path / "clip"
    clip.mkdir()
    for index in range(2):
        blob(48, 32).rotate(3 * index).save(clip / f"f{index}.png")
    flags = listed_flags("video")
    for name in ONE_PHOTO:
        assert "--" + name.replace("_", "-") not in flags
    # --blend is --model's: the optimising run takes every other setting.
    given = as_given(VideoConfig, flags, skip=("blend",)) + as_given(Options, flags)
    assert "--temporal-weight" in given and "--steps" in given
    run_ok(capsys, ["video", clip, painting, "-o", tmp_path / "out", "--quiet", *given])
