"""A local basemap from an MBTiles file (SQLite), for intranets without a tile server.

MBTiles stores rows in TMS order (y counted from the south), so XYZ `y` is flipped on read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "pbf": "application/vnd.mapbox-vector-tile",
}


@dataclass(frozen=True)
class MBTilesMetadata:
    ext: str
    min_zoom: int | None
    max_zoom: int | None
    attribution: str


def _connect(path: str) -> contextlib.closing[sqlite3.Connection]:
    # Read-only and immutable: no journal files next to the tiles, safe from many workers at once.
    uri = Path(path).absolute().as_uri() + "?mode=ro&immutable=1"
    return contextlib.closing(sqlite3.connect(uri, uri=True))


@functools.lru_cache(maxsize=4)
def _metadata(path: str, mtime: float) -> MBTilesMetadata:
    with _connect(path) as conn:
        meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())

    def as_int(key: str) -> int | None:
        try:
            return int(meta[key])
        except (KeyError, ValueError):
            return None

    ext = (meta.get("format") or "png").lower()
    return MBTilesMetadata(
        ext="jpg" if ext == "jpeg" else ext,
        min_zoom=as_int("minzoom"),
        max_zoom=as_int("maxzoom"),
        attribution=meta.get("attribution", ""),
    )


def mbtiles_metadata(path: str) -> MBTilesMetadata:
    return _metadata(path, os.path.getmtime(path))


def mbtiles_tile(path: str, *, z: int, x: int, y: int) -> bytes | None:
    """The tile at XYZ address z/x/y, or None if the file has none there."""
    tms_y = (1 << z) - 1 - y
    with _connect(path) as conn:
        row = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?", (z, x, tms_y)
        ).fetchone()
    return bytes(row[0]) if row else None
