"""``painterly serve``: a local web page for stylising, a thin shell around painterly.run.

:func:`create_app` builds the FastAPI app (see :mod:`painterly.web.app` for its
endpoints); :func:`serve` runs it with uvicorn, on 127.0.0.1 unless told otherwise.
"""

from painterly.web.app import create_app, default_data_dir, serve
from painterly.web.limits import Limits

__all__ = ["Limits", "create_app", "default_data_dir", "serve"]
