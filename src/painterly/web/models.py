"""The fast models the web app offers beside the presets.

They are the models ``painterly models`` lists (the cache's ``models/`` folder) plus
those in the folders ``painterly serve --models DIR`` names, read again at every request
so that a model trained while the server runs shows up. The page and the job requests
name a model by its id, the file's stem (the first of that name wins, the cache's
first); no path ever comes from a request or goes out to the page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from painterly.errors import ModelError
from painterly.fast.config import MODEL_OPTIONS
from painterly.fast.model_file import ModelInfo, list_models, read_info

MODEL_FIELDS = tuple(name for name in MODEL_OPTIONS if name != "max_memory")
"""The form's fields that mean something to a fast model (painterly.fast.config's
MODEL_OPTIONS, less the memory budget, which is the server's to choose)."""


class ModelShelf:
    """The models of the cache and of ``folders``, by id."""

    def __init__(self, folders: Sequence[str | os.PathLike] = ()):
        self.folders = [Path(f) for f in folders]

    def _found(self) -> dict[str, tuple[Path, ModelInfo | None]]:
        found: dict[str, tuple[Path, ModelInfo | None]] = {}
        for path, info in list_models(self.folders):
            found.setdefault(path.stem, (path, info))
        return found

    def listing(self) -> list[dict]:
        """What the page shows of each model (a file that cannot be read is left out)."""
        return [
            {
                "id": model_id,
                "styles": [s["name"] for s in info.styles],
                "encoder": info.encoder,
                "width": info.width,
                "iterations": info.iterations,
                "version": info.version,
                "under_trained": info.under_trained,  # why it is not finished; "" if it is
            }
            for model_id, (_, info) in self._found().items()
            if info is not None
        ]

    def find(self, model_id: str) -> tuple[Path, ModelInfo]:
        """The file and metadata of ``model_id``; ModelError if there is no such model or
        its file cannot be read, naming the model by its id, never by the server's path."""
        found = self._found()
        if model_id not in found:
            usable = [m for m, (_, info) in found.items() if info is not None]
            names = ", ".join(usable) or "none; train one with `painterly train`"
            raise ModelError(f"unknown model '{model_id[:40]}'; the models here: {names}")
        path = found[model_id][0]
        try:
            return path, read_info(path)
        except ModelError as err:
            raise ModelError(str(err).replace(str(path), f"the model '{model_id}'")) from None
