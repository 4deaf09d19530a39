"""The paintings that ship with painterly, for the demo, the web page's gallery and the
benchmarks: faithful photographs of public-domain works, whose sources are in the
repository's examples/SOURCES.md. :data:`PAINTINGS` lists them; :func:`path` finds one's
file by its name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Painting:
    name: str  # the file's stem
    title: str
    artist: str
    year: str
    file: str

    @property
    def path(self) -> Path:
        return FOLDER / self.file


PAINTINGS = (
    Painting(
        "van_gogh_starry_night",
        "The Starry Night",
        "Vincent van Gogh",
        "1889",
        "van_gogh_starry_night.jpg",
    ),
    Painting(
        "hokusai_great_wave",
        "The Great Wave off Kanagawa",
        "Katsushika Hokusai",
        "c. 1831",
        "hokusai_great_wave.jpg",
    ),
    Painting(
        "kandinsky_composition_vii",
        "Composition VII",
        "Wassily Kandinsky",
        "1913",
        "kandinsky_composition_vii.jpg",
    ),
)


def path(name: str) -> Path:
    """The file of the bundled painting ``name`` (KeyError for another name)."""
    for painting in PAINTINGS:
        if painting.name == name:
            return painting.path
    raise KeyError(name)
