"""painterly: neural style transfer, from the book's method to high-resolution prints.

The core API (:func:`run`, :func:`stylize`, :func:`run_batch`, :class:`Result`) is
imported on first use, and torch with it, so that ``painterly --help`` and
``--version`` start without loading torch.
"""

__version__ = "0.1.0"

from painterly.config import PRESETS, Options  # noqa: E402
from painterly.lazy import lazy_names  # noqa: E402

_LAZY = {"Result": "api", "run": "api", "stylize": "api", "run_batch": "batch"}

__all__ = ["Options", "PRESETS", "Result", "run", "run_batch", "stylize", "__version__"]


__getattr__ = lazy_names(__name__, _LAZY)
