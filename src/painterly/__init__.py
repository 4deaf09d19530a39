"""painterly: neural style transfer, from the book's method to high-resolution prints."""

__version__ = "0.1.0"

from painterly.api import Result, run, stylize  # noqa: E402
from painterly.config import PRESETS, Options  # noqa: E402

__all__ = ["Options", "PRESETS", "Result", "run", "stylize", "__version__"]
