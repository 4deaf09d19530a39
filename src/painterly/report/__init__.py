"""``painterly explain``: one self-contained HTML page that shows what each loss does.

It answers the question learners ask of this method, "what exactly is being penalised,
and why activations rather than weights?", with pictures made by the same core API as
every other consumer (:func:`painterly.run`, called once per picture with one encoder
loaded up front):

* the loss curves of one stylisation, per term and per style layer, on a log scale;
* images reconstructed from noise out of one layer's content representation alone
  (Gatys et al. 2016, Fig. 1: shallow layers keep the pixels, deep ones the layout), and
  out of the style representation of growing sets of layers (textures at growing scales);
* the Gram matrices of one layer for photo, painting and result, and a few feature maps of
  the content layer, as heat maps.

Everything goes into one HTML string: images as base64 PNG data URIs, charts as inline SVG,
inline CSS, no script and no outside URL, so the file opens anywhere offline. Nothing here
touches the network's weights; the report says so, and shows why.

Modules: :mod:`~painterly.report.runs` (:func:`explain`: the runs),
:mod:`~painterly.report.page` (the HTML, from the prose in ``templates/``),
:mod:`~painterly.report.charts` (SVG) and :mod:`~painterly.report.colors` (heat maps).
This module holds the report's defaults and imports the rest (and torch) on first use, so
that the CLI can show them in ``--help`` without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from painterly.config import MAX_SIDE, MAX_STEPS
from painterly.lazy import lazy_names
from painterly.settings import check_fields, option

# Defaults of the report, chosen so that the whole page takes a few minutes on two CPU
# cores: the stylisation runs at REPORT_SIZE px for REPORT_STEPS steps, each of the 11
# reconstructions (default layers) at two thirds of that size for half as many steps.
# --size, --steps, --recon-size and --recon-steps change them.
REPORT_SIZE = 192
REPORT_STEPS = 200


@dataclass(frozen=True)
class ReportConfig:
    """The report's own settings (the stylisation's are :class:`~painterly.config.Options`).
    None: derived from the stylisation's size and steps."""

    recon_size: int | None = option(
        None,
        "long side of each reconstruction in px (default: two thirds of --size)",
        "int",
        low=32,
        high=MAX_SIDE,
        nullable=True,
    )
    recon_steps: int | None = option(
        None,
        "L-BFGS steps of each reconstruction (default: half of --steps)",
        "int",
        low=1,
        high=MAX_STEPS,
        nullable=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)


# Reconstructions weigh their one loss term by this. The losses are in network-input units
# (0..255 for the Caffe weights), where a relative loss of weight 1 has a gradient so small
# (|g|_1 ~ 0.02) that L-BFGS's first step (of length |g|) barely moves the noise, and the
# curvature it then estimates from float32 differences is noise: the loss stalls. A large
# weight gives a normal first step (|g|_1 > 1, which L-BFGS normalises); past it L-BFGS is
# invariant to the scale, so the value itself does not matter.
RECON_WEIGHT = 1e6

_LAZY = {
    "Report": "runs",
    "explain": "runs",
    "SECTIONS": "page",
    "log_chart_svg": "charts",
    "pipeline_svg": "charts",
    "DIVERGING": "colors",
    "VIRIDIS": "colors",
    "color_bar": "colors",
    "data_uri": "colors",
    "heatmap": "colors",
}

__all__ = ["RECON_WEIGHT", "REPORT_SIZE", "REPORT_STEPS", *_LAZY]


__getattr__ = lazy_names(__name__, _LAZY)
