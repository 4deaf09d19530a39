"""How many CPU threads torch's maths uses: ``--threads`` (Options.threads).

0 leaves PyTorch's own choice (one thread per core it may use). A number sets it for the
run and gives the previous count back afterwards, so that a library caller's, or the
web server's next job's, setting is not changed behind its back. The command line also
asks OpenMP to wait for work without spinning (painterly.cli sets OMP_WAIT_POLICY to
PASSIVE unless it is set): beside two busy processes on 2 cores, spinning threads made
a run 2.7x slower than on a quiet machine, passive ones 1.9x, about the fair share
(docs/performance.md, benchmarks/bench_threads.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Within the block, ``count`` threads for torch's CPU maths (0: as they are)."""
    if not count:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
