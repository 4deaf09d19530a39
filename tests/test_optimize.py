"""The optimisation loop on tiny stand-in networks: budgets, presets, interruption."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from synthetic import blob, stripes, tiny_encoder

import painterly
import painterly.api
import painterly.pipeline
from painterly.config import NEEDS_PRETRAINED, PRESETS
from painterly.errors import OptionsError
from painterly.events import Notice, Progress, Started


def test_chollet_preset_is_twenty_rounds_of_at_most_twenty_evaluations(monkeypatch):
    rounds: list[list[int]] = []
    real_lbfgs = torch.optim.LBFGS

    def counting_lbfgs(params, **kwargs):
        rounds.append([])
        return real_lbfgs(params, **kwargs)

    monkeypatch.setattr(torch.optim, "LBFGS", counting_lbfgs)

    def on_event(event):
        if isinstance(event, Progress):
            rounds[-1].append(event.step)

    result = painterly.run(
        blob(48, 32),
        stripes(48, 32),
        preset="chollet",
        height=32,
        encoder=tiny_encoder(),
        callback=on_event,
    )
    assert len(rounds) == 20
    assert all(1 <= len(r) <= 20 for r in rounds)
    assert sum(len(r) for r in rounds) == result.metrics["steps"] == 400
    assert result.image.size == (48, 32)  # the book's convention: height fixed, aspect kept


def test_chollet_preset_matches_the_book():
    o = PRESETS["chollet"]
    assert (o.content_weight, o.style_weight, o.tv_weight) == (0.025, 1.0, 1e-4)
    assert o.content_layer == "block5_conv2" and o.height == 400 and o.loss_form == "book"
    assert o.style_layers == tuple(f"block{i}_conv1" for i in range(1, 6))
    assert (o.steps, o.lbfgs_restart, o.init, o.style_stretch) == (400, 20, "content", True)
    assert o.lbfgs_history == 10  # scipy's default m, which the book's fmin_l_bfgs_b uses


def test_losses_fall_with_each_optimizer():
    for optimizer in ("lbfgs", "adam"):
        result = painterly.run(
            blob(), stripes(), encoder=tiny_encoder(), size=64, steps=30, optimizer=optimizer
        )
        history = result.metrics["history"]
        assert len(history) == 30
        assert history[-1]["total"] < 0.5 * history[0]["total"], optimizer


def test_ctrl_c_keeps_the_latest_image():
    def interrupt(event):
        if isinstance(event, Progress) and event.step == 5:
            raise KeyboardInterrupt

    result = painterly.run(
        blob(), stripes(), encoder=tiny_encoder(), size=64, steps=50, callback=interrupt
    )
    assert result.interrupted and result.metrics["steps"] == 5
    assert result.image.size == (64, 43)


def test_events_arrive_in_order_and_the_core_prints_nothing(capsys):
    events = []
    painterly.run(
        blob(), stripes(), encoder=tiny_encoder(), size=64, steps=4, callback=events.append
    )
    assert isinstance(events[0], Started) and events[0].total_steps == 4
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3, 4]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("tile", [0, 64])
def test_progress_counts_the_whole_run_across_scales_and_tiles(tile):
    events = []
    painterly.run(
        blob(128, 96), stripes(), encoder=tiny_encoder(), size=128, min_size=64, steps=30,
        tile=tile, callback=events.append,
    )  # fmt: skip
    starts = [e for e in events if isinstance(e, Started)]
    progress = [e for e in events if isinstance(e, Progress)]
    # Three scales (64, 90 and 128 px); with 64 px tiles the finest runs in several.
    assert [e.scales for e in starts] == [3] * len(starts)
    assert [e.scale for e in starts][:2] == [1, 2] and starts[-1].scale == 3
    assert (len(starts) > 3) == bool(tile)
    # One bar for the whole run: the share of work done only grows, reaches 1 at the end,
    # and is not the share of steps (a finer scale's step costs more).
    shares = [e.run_fraction for e in progress]
    assert all(0 < a <= b for a, b in zip(shares, shares[1:], strict=False))
    assert shares[-1] == pytest.approx(1.0)
    coarse = starts[0].total_steps  # the 64 px scale: one optimisation, tiled or not
    assert starts[1].scale == 2 and shares[coarse - 1] < coarse / 30  # its steps are cheap
    clock = [e.run_elapsed for e in progress]
    assert all(a <= b for a, b in zip(clock, clock[1:], strict=False)) and clock[0] > 0


@pytest.mark.parametrize(
    "chosen, encoder, said",
    [
        ({}, "offline", "the offline encoder"),
        # as the web form sends it: naming the default is no choice
        ({"preset": "default"}, "offline", "the offline encoder"),
        # a control preset turns its control on the offline preset
        ({"preset": "bold"}, "offline", "the offline encoder"),
        # Options given whole name VGG19's layers: they keep its architecture, and say so
        ({"options": PRESETS["default"]}, "random-vgg19", "VGG19 with random"),
    ],
)
def test_auto_falls_back_without_weights_with_one_notice(chosen, encoder, said):
    # conftest points every registry URL at a closed loopback port.
    events = []
    result = painterly.run(
        blob(), stripes(), size=48, steps=2, scales=1, callback=events.append, **chosen
    )
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and f"using {said}" in notices[0].message
    assert result.metrics["encoder"] == encoder and result.metrics["fallback_reason"]
    assert result.metadata["painterly:weights"] == encoder
    if chosen.get("preset") == "bold":  # the offline preset's tuning, bold's strength
        settings = json.loads(result.metadata["painterly:settings"])
        assert settings["content_layer"] == PRESETS["offline"].content_layer
        assert settings["strength"] == PRESETS["bold"].strength


@pytest.mark.parametrize("name", NEEDS_PRETRAINED)
def test_a_preset_of_pretrained_features_is_refused_without_them(name):
    # Before anything slow, and saying both ways out: fetch the weights, or run offline.
    events = []
    with pytest.raises(OptionsError, match="needs VGG19's pretrained weights") as refused:
        painterly.run(blob(), stripes(), preset=name, callback=events.append)
    assert "painterly weights fetch vgg19" in str(refused.value)
    assert "preset offline" in str(refused.value) and not events
    # Asked for outright, random weights still run it (for comparison and tests).
    result = painterly.run(
        blob(),
        stripes(),
        preset=name,
        weights="random-vgg19",
        size=32,
        height=None,
        steps=1,
        scales=1,
    )
    assert result.metrics["encoder"] == "random-vgg19"


def test_time_limit_is_shared_over_the_scales_by_their_work():
    opts = painterly.api.make_options(time_limit=10.0, steps=30, size=512)
    sizes, steps = painterly.pipeline.scale_plan((512, 256), opts)
    parts = painterly.pipeline.run_parts((512, 256), opts)
    ends = painterly.pipeline.deadlines(parts, opts.time_limit, start=100.0)
    assert len(ends) == len(sizes) > 1 and ends[-1] == pytest.approx(110.0)
    work = [n * w * h for (w, h), n in zip(sizes, steps, strict=True)]
    shares = np.diff([100.0, *ends]) / 10.0
    np.testing.assert_allclose(shares, np.array(work) / sum(work))
    assert painterly.pipeline.deadlines(parts, 0, 0) == [None] * len(sizes)


def test_time_limit_ends_a_long_run_at_every_scale_with_the_asked_size():
    start, notices = time.perf_counter(), []

    def heard(event):
        if isinstance(event, Notice):
            notices.append(event.message)

    result = painterly.run(
        blob(96, 64), stripes(), encoder=tiny_encoder(), size=96, min_size=48,
        steps=1_000_000, time_limit=1.5, callback=heard,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # a million steps would take hours
    assert result.image.size == (96, 64)
    assert len(result.metrics["scales"]) == 3 and not result.interrupted
    assert 3 <= result.metrics["steps"] < 1_000_000
    # It says so: steps done of planned, in all and per scale.
    done = result.metrics["steps_per_scale"]
    said = [n for n in notices if "stopped the run short" in n]
    assert len(said) == 1 and f"{sum(done)} of 1000000 steps" in said[0], notices
    assert all(f"scale {i + 1}: {n} of " in said[0] for i, n in enumerate(done)), said


def test_a_time_limit_that_is_not_reached_says_nothing():
    notices = []
    painterly.run(
        blob(), stripes(), encoder=tiny_encoder(), size=48, steps=4, time_limit=600,
        callback=lambda e: notices.append(e) if isinstance(e, Notice) else None,
    )  # fmt: skip
    assert not [n for n in notices if "short" in n.message], notices


def test_threads_hold_for_the_run_and_are_given_back():
    import torch
    from synthetic import blob, stripes, tiny_encoder

    before, seen = torch.get_num_threads(), []

    def during(event):
        if isinstance(event, Progress):
            seen.append(torch.get_num_threads())

    wanted = 1 if before != 1 else 2
    painterly.run(
        blob(), stripes(), encoder=tiny_encoder(), size=48, steps=3, threads=wanted,
        callback=during,
    )  # fmt: skip
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before


def test_the_command_line_asks_openmp_to_wait_without_spinning():
    import os
    import subprocess
    import sys

    probe = "import os, painterly.cli; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's choice is kept
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE", out.stderr


def test_lbfgs_first_step_moves_each_value_about_one_grey_level():
    # PyTorch's first L-BFGS step is 1 in total over all values: with the relative losses
    # the line search then spent several evaluations just growing it.
    from painterly import optimize as core
    from painterly.config import Options

    target = torch.linspace(-3, 3, 600).view(1, 3, 10, 20)
    weights = torch.linspace(0.5, 2.0, 600).view(1, 3, 10, 20)
    x = torch.zeros(1, 3, 10, 20, requires_grad=True)
    points: list[torch.Tensor] = []

    def closure():
        points.append(x.detach().clone())
        x.grad = None
        loss = (weights * (x - target) ** 2).sum() * 1e-2
        loss.backward()
        return loss

    opts = Options(steps=6, size=None, height=None)
    core._run_lbfgs(x, closure, opts, [6], lambda: None, 0, lambda: None, first_step=0.5)
    first_move = (points[1] - points[0]).abs().mean()
    assert float(first_move) == pytest.approx(0.5, rel=1e-4)
    # Every later point is the optimiser's own: it converges on the quadratic.
    assert float((points[-1] - target).abs().max()) < float((points[1] - target).abs().max())
    # PyTorch's own first step, for contrast: 1 over all 600 values.
    x.data.zero_()
    points.clear()
    core._run_lbfgs(x, closure, opts, [6], lambda: None, 0, lambda: None)
    assert float((points[1] - points[0]).abs().sum()) == pytest.approx(1.0, rel=1e-3)


def test_the_first_step_reaches_a_lower_loss_in_the_same_steps(monkeypatch):
    from painterly import optimize as core

    def final_loss() -> float:
        result = painterly.run(
            blob(64, 48), stripes(64, 48), encoder=tiny_encoder(), size=64, scales=1, steps=8
        )
        return result.metrics["losses"]["total"]

    planned = final_loss()
    monkeypatch.setattr(core, "FIRST_STEP", 0.0)
    assert planned < final_loss()
