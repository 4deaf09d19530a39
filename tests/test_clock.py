"""The progress model (painterly.clock) on a clock the test turns: the share done, the
time left from measured step costs, and the whole job's events from a real batch."""

from __future__ import annotations

import pytest
from synthetic import blob, stripes, tiny_encoder

from painterly.batch import run_batch
from painterly.clock import RunClock
from painterly.events import Progress, Started


class Timer:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(clock: RunClock, timer: Timer, steps: int, step_s: float, setup_s: float = 0.0):
    """One part: ``setup_s`` before its first step, then ``steps`` steps of ``step_s``."""
    clock.begin()
    timer.now += setup_s
    for n in range(1, steps + 1):
        timer.now += step_s
        clock.advance(n)


def test_time_left_comes_from_the_step_costs_measured_at_each_size():
    # Three images of two scales; a step costs 0.1 s + 1 s per million pixels, and each
    # image's first scale waits 2 s for its set-up (reading, style targets).
    small, large = 100_000, 400_000
    cost = {small: 0.2, large: 0.5}
    parts = [(10, small), (10, large)] * 3
    timer = Timer()
    clock = RunClock(parts, timer=timer)
    assert clock.left is None and clock.fraction == 0  # nothing measured yet
    run(clock, timer, 10, cost[small], setup_s=2.0)
    run(clock, timer, 10, cost[large])
    # After the first image both sizes are measured: the rest is two images' steps and
    # their set-ups (the first part's set-up, with its one-off costs, is left out once
    # others are known; here only it is known, so it stands in).
    actual_rest = 2 * (2.0 + 10 * cost[small] + 10 * cost[large])
    assert clock.left == pytest.approx(actual_rest, rel=0.05)
    assert clock.fraction == pytest.approx(1 / 3)
    run(clock, timer, 10, cost[small], setup_s=2.0)
    assert clock.left == pytest.approx(2.0 + 10 * 0.2 + 10 * 0.5 + 10 * 0.5, rel=0.05)
    shares = []
    for _ in range(3):
        clock.begin()
        for n in range(1, 11):
            timer.now += 0.3
            clock.advance(n)
            shares.append(clock.fraction)
    assert shares == sorted(shares) and clock.fraction == pytest.approx(1.0)
    assert clock.left == pytest.approx(0.0, abs=1e-9)


def test_a_size_not_yet_measured_is_priced_from_those_that_are():
    timer = Timer()
    clock = RunClock([(5, 100), (5, 200), (5, 400)], timer=timer)
    run(clock, timer, 5, 1.0)  # 1 s a step at 100 px
    # one size known: the cost scaled by the pixels
    assert clock.cost(400) == pytest.approx(4.0)
    run(clock, timer, 5, 1.5)  # 1.5 s at 200 px: 0.5 s + 0.005 s a pixel
    assert clock.cost(400) == pytest.approx(2.5)
    assert clock.left == pytest.approx(5 * 2.5)


def test_a_part_begun_again_costs_time_but_no_work():
    timer = Timer()
    clock = RunClock([(10, 100)], timer=timer)
    clock.begin()
    for n in range(1, 6):
        timer.now += 1
        clock.advance(n)
    assert clock.fraction == pytest.approx(0.5)
    timer.now += 1
    clock.advance(1)  # redone from the start (in tiles, in fp32)
    assert clock.fraction == pytest.approx(0.1)


def test_a_batch_reports_one_job_across_its_images():
    # Three photos of two sizes (so two groups): one share that only grows over every
    # scale of every image, a label saying which image runs, and a time left once a
    # step has been measured.
    events = []
    items = [(blob(96, 64), stripes()), (blob(64, 96), stripes()), (blob(96, 64), stripes())]
    run_batch(
        items,
        encoder=tiny_encoder(),
        size=64,
        min_size=32,
        scales=2,
        steps=6,
        max_batch=1,
        callback=events.append,
    )
    shares = [e.run_fraction for e in events if isinstance(e, Progress)]
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0)
    parts = [e.part for e in events if isinstance(e, Started)]
    assert parts[0] == "image 1 of 3" and set(parts) == {f"image {i} of 3" for i in (1, 2, 3)}
    lefts = [e.run_left for e in events if isinstance(e, Progress)]
    assert lefts[0] is None and all(x is not None for x in lefts[2:])
