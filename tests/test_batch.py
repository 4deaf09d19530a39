"""Batched runs: several items through the encoder at once, each its own image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runcli import run_cli
from synthetic import blob, out_of_memory_once, stripes, tiny_encoder

import painterly
from painterly import losses
from painterly.errors import OptionsError
from painterly.events import Progress, Started, Stop

FAST = dict(size=64, steps=12, seed=3)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def test_losses_are_per_image_not_pooled():
    gen, target = torch.rand(2, 4, 6, 5), torch.rand(2, 4, 6, 5)
    target[1] *= 10  # pooled, the second image's energy would swamp the first's
    grams = losses.gram_mean(target)
    for fn in (
        lambda a, b, g: losses.content_loss_relative(a, b),
        lambda a, b, g: losses.style_loss_relative(a, g),
        lambda a, b, g: losses.tv_loss_relative(a),
        lambda a, b, g: losses.content_loss_book(a, b),
        lambda a, b, g: losses.style_loss_book(a, losses.gram(b), 30),
        lambda a, b, g: losses.tv_loss_book(a),
    ):
        batch = fn(gen, target, grams)
        singles = torch.cat(
            [fn(gen[i : i + 1], target[i : i + 1], grams[i : i + 1]) for i in (0, 1)]
        )
        assert batch.shape == (2,)
        torch.testing.assert_close(batch, singles)


def test_adam_batch_gives_the_images_of_single_runs():
    # Different contents and styles of very different energies: a loss pooled over the
    # batch would weigh them against each other and change both images (by up to 170 of
    # 255 levels).
    items = [(blob(), stripes()), (stripes(96, 64, 12), blob())]
    options = dict(encoder=tiny_encoder(), optimizer="adam", **FAST)
    batched = painterly.run_batch(items, **options)
    for (content, style), got in zip(items, batched, strict=True):
        alone = painterly.run(content, style, **options)
        diff = np.abs(pixels(got.image) - pixels(alone.image))
        assert diff.max() <= 2 and diff.mean() < 0.1
        assert got.metrics["batch"] == 2 and alone.metrics["steps"] == got.metrics["steps"]
        assert got.metrics["losses"]["total"] == pytest.approx(
            alone.metrics["losses"]["total"], rel=1e-3
        )
        assert len(got.metrics["history"]) == 12


def test_multi_scale_batch_has_the_asked_sizes_and_the_single_runs_images():
    items = [(blob(96, 64), stripes()), (blob(96, 64), [(stripes(), 0.5), (blob(), 0.5)])]
    options = dict(encoder=tiny_encoder(), optimizer="adam", size=80, min_size=40, steps=12)
    results = painterly.run_batch(items, scales=2, **options)
    for (content, style), result in zip(items, results, strict=True):
        assert result.image.size == (80, 53)
        assert result.metrics["scales"] == [[57, 38], [80, 53]]
        alone = painterly.run(content, style, scales=2, **options)
        assert np.abs(pixels(result.image) - pixels(alone.image)).max() <= 2


def test_lbfgs_batch_lowers_each_items_own_loss():
    items = [(blob(), stripes()), (stripes(96, 64, 12), stripes())]
    results = painterly.run_batch(items, encoder=tiny_encoder(), **FAST)
    for result in results:
        history = result.metrics["history"]
        assert history[-1]["total"] < 0.5 * history[0]["total"]
        assert result.metrics["losses"]["total"] <= history[0]["total"]
    assert results[0].metrics["losses"] != results[1].metrics["losses"]


def test_mixed_sizes_are_grouped_and_order_is_kept():
    events = []
    items = [
        (blob(96, 64), stripes()),
        (blob(64, 96), stripes()),
        (stripes(96, 64, 12), stripes()),
    ]
    results = painterly.run_batch(
        items, encoder=tiny_encoder(), callback=events.append, **{**FAST, "steps": 3}
    )
    assert [r.image.size for r in results] == [(64, 43), (43, 64), (64, 43)]
    assert [r.metrics["batch"] for r in results] == [2, 1, 2]
    assert [e.size for e in events if isinstance(e, Started)] == [(64, 43), (43, 64)]


def test_max_batch_and_forced_tiles_run_items_one_by_one():
    items = [(blob(), stripes()), (blob(), stripes())]
    common = dict(encoder=tiny_encoder(), **{**FAST, "steps": 2})
    assert [r.metrics["batch"] for r in painterly.run_batch(items, max_batch=1, **common)] == [1, 1]
    tiled = painterly.run_batch(items, tile=64, **{**common, "size": 96})
    assert [r.metrics["batch"] for r in tiled] == [1, 1]
    assert [r.image.size for r in tiled] == [(96, 64), (96, 64)]


def test_stop_keeps_the_batch_in_progress_and_skips_the_rest():
    def stop(event):
        if isinstance(event, Progress) and event.step == 2:
            raise Stop

    items = [(blob(), stripes()), (blob(), stripes()), (blob(64, 96), stripes())]
    results = painterly.run_batch(items, encoder=tiny_encoder(), callback=stop, **FAST)
    assert results[0].interrupted and results[1].interrupted and results[2] is None
    assert results[0].metrics["steps"] == 2


def test_refusals_are_clear():
    with pytest.raises(OptionsError, match="belong to one photo"):
        painterly.run_batch([(blob(), stripes())], encoder=tiny_encoder(), protect="x.png")
    with pytest.raises(OptionsError, match="item 2"):
        painterly.run_batch([(blob(), stripes()), blob()], encoder=tiny_encoder())


def test_cli_writes_one_file_per_item_and_reports_throughput(
    tmp_path, capsys, content_path, style_path
):
    tall = tmp_path / "tall.png"
    blob(64, 96).save(tall)
    out, metrics = tmp_path / "out", tmp_path / "m.json"
    out.mkdir()
    argv = ["batch", content_path, tall, "--style", style_path, "--style", style_path, tall]
    options = ["--weights", "offline", "--size", 48, "--steps", 2, "--metrics", metrics]
    code, _, err = run_cli(capsys, *argv, "-o", out, *options)
    assert code == 0, err
    assert "images/s" in err.strip().splitlines()[-1]
    names = ["content_style", "content_style+tall", "tall_style", "tall_style+tall"]
    assert {p.name for p in out.iterdir()} == {f"{n}.png" for n in names}
    assert Image.open(out / "content_style.png").size == (48, 32)
    assert Image.open(out / "tall_style+tall.png").size == (32, 48)
    m = json.loads(metrics.read_text())
    assert m["images"] == 4 and m["images_per_s"] > 0
    assert [item["batch"] for item in m["items"]] == [2, 2, 2, 2]
    # Files the user never named are not replaced without --overwrite.
    before = (out / "tall_style.png").read_bytes()
    code, _, err = run_cli(capsys, *argv, "-o", out, *options)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "tall_style.png").read_bytes() == before
    code, _, err = run_cli(capsys, *argv, "-o", out, *options, "--overwrite", "--seed", 3)
    assert code == 0, err
    assert (out / "tall_style.png").read_bytes() != before


def test_cli_bad_item_is_one_line_and_exit_2(tmp_path, capsys, content_path, style_path):
    out = tmp_path / "out"
    out.mkdir()
    cases = {
        "missing content": ([content_path, tmp_path / "nope.png", "--style", style_path], "nope"),
        "missing style": ([content_path, "--style", tmp_path / "gone.png"], "gone.png"),
        "same output twice": ([content_path, content_path, "--style", style_path], "two items"),
    }
    for name, (argv, mention) in cases.items():
        code, _, err = run_cli(capsys, "batch", *argv, "-o", out, "--weights", "offline", "--quiet")
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("painterly: error:"), (name, err)
        assert mention in lines[0], (name, lines[0])
    # A missing folder is made, but not a missing parent: a typo further up stays an error.
    deep = out / "no" / "deeper"
    code, _, err = run_cli(capsys, "batch", content_path, "--style", style_path, "-o", deep)
    assert code == 2 and f"{out / 'no'} does not exist" in err
    assert list(out.iterdir()) == []
    argv = ["batch", content_path, "--style", style_path, "-o", out / "new", "--quiet"]
    code, _, err = run_cli(capsys, *argv, "--weights", "offline", "--size", "32", "--steps", "1")
    assert code == 0, err
    assert [p.name for p in (out / "new").iterdir()] == [
        f"{Path(content_path).stem}_{Path(style_path).stem}.png"
    ]


def test_batch_reports_the_whole_run_like_stylize_and_retries_out_of_memory(monkeypatch):
    # Through the one pipeline: scale k of n and whole-run progress for a batch too ...
    events = []
    items = [(blob(96, 64), stripes()), (blob(96, 64), stripes())]
    common = dict(encoder=tiny_encoder(), size=80, min_size=40, scales=2, steps=6)
    painterly.run_batch(items, callback=events.append, **common)
    started = [(e.scale, e.scales) for e in events if isinstance(e, Started)]
    assert started == [(1, 2), (2, 2)]
    fractions = [e.run_fraction for e in events if isinstance(e, Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # ... and an item run on its own that runs out of memory is redone in tiles.
    out_of_memory_once(monkeypatch)
    events.clear()
    (result,) = painterly.run_batch(
        [(blob(128, 96), stripes())], callback=events.append, **{**common, "size": 256, "scales": 1}
    )
    notices = [e.message for e in events if isinstance(e, painterly.events.Notice)]
    assert any("retrying in 128 px tiles" in m for m in notices), notices
    assert result.image.size == (256, 192)
