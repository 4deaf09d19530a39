"""How ``painterly serve`` listens and what it offers: :class:`ServeConfig`, declared like
every settings class (painterly.settings), free of the web stack so that the CLI builds
its flags without importing it."""

from __future__ import annotations

from dataclasses import dataclass

from painterly.settings import check_fields, option


@dataclass(frozen=True)
class ServeConfig:
    """Where the page is served and what it offers besides the cache's fast models."""

    host: str = option("127.0.0.1", "address to listen on", "str", metavar="HOST")
    port: int = option(8000, "port to listen on (0: any free)", "int", low=0, high=65535)
    data_dir: str | None = option(
        None,
        "where uploads and results go (default: $PAINTERLY_DATA/web, else "
        "~/.local/share/painterly/web)",
        "str",
        nullable=True,
        metavar="DIR",
    )
    models: tuple[str, ...] = option(
        (),
        "a folder of fast models to offer beside the presets, besides those "
        "`painterly models` lists",
        "texts",
        repeat=True,
        metavar="DIR",
    )
    allowed_host: tuple[str, ...] = option(
        (),
        "a host name the page may be opened by, besides the loopback names and the "
        "--host address; other names are refused, against DNS rebinding",
        "texts",
        repeat=True,
        metavar="NAME",
    )

    def __post_init__(self) -> None:
        check_fields(self)
