"""Running many stylisations across a Ray cluster (``painterly batch --ray``).

``plan`` names each output after its inputs' content and the options and keeps the
manifest of what is done; ``worker`` is what a Ray worker runs for one output;
``ray_batch`` is the driver's side (connecting, scheduling, retries). Ray itself is
imported only by ``ray_batch``, ``ray_video`` and inside the worker's functions, so
painterly without the ``ray`` extra never needs it. :class:`ClusterConfig` holds the
settings of a run on a cluster, declared like :class:`painterly.config.Options`.

From Python: ``painterly.cluster.run_batch`` (the counterpart of
:func:`painterly.batch.run_batch`) and ``painterly.cluster.stylize_clip`` (of
:func:`painterly.video.run.stylize_clip`, with the same :class:`VideoResult`), imported
with Ray on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from painterly.errors import OptionsError
from painterly.lazy import lazy_names
from painterly.settings import check_fields, flag, option


@dataclass(frozen=True)
class ClusterConfig:
    """How work is cut into tasks on a Ray cluster."""

    ray_cpus: int = option(
        1,
        "with --ray on CPUs: threads per task; GPU clusters: one GPU each",
        "int",
        low=1,
        high=1024,
    )
    ray_chunk: int = option(
        24, "with --ray: frames per chunk of a clip", "int", low=1, high=100_000
    )
    ray_overlap: int = option(
        4,
        "with --ray: frames each chunk starts early, cross-faded with the chunk before "
        "(docs/cluster.md)",
        "int",
        low=0,
        high=100_000,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.ray_overlap >= self.ray_chunk:
            raise OptionsError(f"{flag('ray_overlap')} must be less than {flag('ray_chunk')}")


_LAZY = {"run_batch": "ray_batch", "stylize_clip": "ray_video"}


__getattr__ = lazy_names(__name__, _LAZY)
