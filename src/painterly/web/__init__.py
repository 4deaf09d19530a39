"""``painterly serve``: a local web page for stylising, a thin shell around painterly.run.

:func:`create_app` builds the FastAPI app (see :mod:`painterly.web.app` for its
endpoints); :func:`serve` runs it with uvicorn, on 127.0.0.1 unless told otherwise, as
:class:`~painterly.web.config.ServeConfig` says. The web stack is imported on first use
of these names, so that ``painterly.web.config`` stays light.
"""

from painterly.lazy import lazy_names

_LAZY = {
    "create_app": "app",
    "default_data_dir": "app",
    "serve": "app",
    "Limits": "limits",
}

__all__ = list(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
