"""``painterly serve``: a local web page for stylising, a thin shell around painterly.run.

:func:`create_app` builds the FastAPI app (see :mod:`painterly.web.app` for its
endpoints); :func:`serve` runs it with uvicorn, on 127.0.0.1 unless told otherwise, as
:class:`~painterly.web.config.ServeConfig` says. The web stack is imported on first use
of these names, so that ``painterly.web.config`` stays light.
"""

import importlib

_LAZY = {
    "create_app": "app",
    "default_data_dir": "app",
    "serve": "app",
    "Limits": "limits",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"painterly.web.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'painterly.web' has no attribute {name!r}")
