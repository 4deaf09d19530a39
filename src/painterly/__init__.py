"""painterly: neural style transfer, from the book's method to high-resolution prints."""

__version__ = "0.1.0"

from painterly.api import Result, run, stylize  # noqa: E402
from painterly.batch import run_batch  # noqa: E402
from painterly.config import PRESETS, Options  # noqa: E402

__all__ = ["Options", "PRESETS", "Result", "run", "run_batch", "stylize", "__version__"]
