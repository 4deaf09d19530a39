"""Errors that reach the user as one line on stderr and exit code 2.

Everything the user can get wrong (a missing file, an unknown layer, a bad weight file)
raises a subclass of :class:`PainterlyError` with a message that says what was wrong and
what to do. The CLI is the one place that turns them into exit codes.
"""


class PainterlyError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ImageError(PainterlyError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(PainterlyError):
    """A weight set is unknown, missing, corrupt or of the wrong layout."""


class OptionsError(PainterlyError):
    """An option has a value that cannot work (unknown layer, absurd size, ...)."""


class ModelError(PainterlyError):
    """A fast-model file is missing, corrupt, truncated or not one of painterly's."""
