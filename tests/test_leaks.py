"""A server runs for weeks: one run must leave nothing behind in the process.

Counts the tensors Python can still reach and the resident memory after many tiny runs
of :func:`painterly.run`, whose memory estimate probes the network with autograd hooks
on every run; and the probe alone on the offline encoder (the one a fresh install uses).
"""

from __future__ import annotations

import gc
import os
import warnings

import pytest
import torch
from synthetic import blob, stripes, tiny_encoder

import painterly
from painterly.encoders import load_encoder
from painterly.encoders.offline import LAYER_NAMES
from painterly.memory import step_estimator

RUNS = 12
RSS_GROWTH_MB = 80  # over RUNS runs after warm-up; the leak this guards against was ~25/run


def rss_mb() -> float | None:
    """This process's resident memory: psutil where installed, else /proc; None if
    neither is there (the RSS half of the test is then skipped)."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return psutil.Process().memory_info().rss / 2**20
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return None


def live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on torch's deprecated aliases warns
        warnings.simplefilter("ignore", FutureWarning)
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def test_the_memory_probe_leaves_no_tensors_behind():
    encoder = load_encoder("offline")
    step_estimator(encoder.net, LAYER_NAMES, 5)
    before = live_tensors()
    for _ in range(5):
        assert step_estimator(encoder.net, LAYER_NAMES, 5)(256, 256) > 0
    assert live_tensors() == before


def test_many_runs_in_one_process_keep_memory_flat():
    content, style, encoder = blob(), stripes(), tiny_encoder()

    def one_run():
        result = painterly.run(content, style, encoder=encoder, size=64, steps=3, seed=1)
        assert result.image.size == (64, 43)

    for _ in range(3):  # warm-up: thread pools, allocator arenas, lazily built kernels
        one_run()
    tensors, rss = live_tensors(), rss_mb()
    for _ in range(RUNS):
        one_run()
    assert live_tensors() - tensors <= 2, "tensors outlive their run"
    if rss is None:
        pytest.skip("no way to read this process's resident memory here")
    grown = rss_mb() - rss
    assert grown < RSS_GROWTH_MB, f"RSS grew {grown:.0f} MB over {RUNS} runs"
