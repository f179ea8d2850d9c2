"""An ASGI fast path for cached cell tiles (`/tiles/cells/{z}/{x}/{y}.pbf`).

A cell tile changes only when the grid is rebuilt, and geo.selectors.cell_tile_cached keeps rendered tiles in
the shared cache under the grid's version stamp. Once a tile is there, going through Django's whole
middleware stack and a thread hop to read it back costs several times more than the read: this wrapper
answers a GET/HEAD for a cached tile straight from Redis (two reads: the version stamp, then the tile), with
the same body and headers as geo.views.cell_tile. Anything else — a tile not cached yet, a bad address, a
low zoom, the cache unreachable — goes to Django unchanged, which renders, caches and answers it.

Measured by bench/tiles.py (README, "Benchmarks").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import re

from django.conf import settings
from django.core.cache import cache

from geo.selectors import CELL_TILE_MIN_ZOOM, GRID_VERSION_KEY, TileAddress, cell_tile_key
from gridmgmt.asgi_headers import response_headers

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"^/tiles/cells/(\d{1,2})/(\d{1,7})/(\d{1,7})\.pbf$")
# The view's own headers; the middleware's come from gridmgmt.asgi_headers (see tests/geo/test_tiles.py).
STATIC_HEADERS = [
    (b"content-type", b"application/vnd.mapbox-vector-tile"),
    (b"cache-control", b"public, max-age=3600"),
]


def tile_etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


class CellTileFastPath:
    def __init__(self, app):
        self.app = app
        self._redis = None

    def _client(self):
        # one client (connection pool) per event loop: a uvicorn worker has one; tests make several
        loop = asyncio.get_running_loop()
        if self._redis is None or self._redis[0] is not loop:
            from redis.asyncio import from_url

            self._redis = (loop, from_url(settings.CACHES["default"]["LOCATION"]))
        return self._redis[1]

    async def _cached(self, z: int, x: int, y: int) -> bytes | None:
        if z < CELL_TILE_MIN_ZOOM or z > 22 or not (0 <= x < 1 << z and 0 <= y < 1 << z):
            return None
        try:
            redis = self._client()
            version = await redis.get(cache.make_key(GRID_VERSION_KEY))
            if version is None:
                return None
            key = cell_tile_key(version=pickle.loads(version), datum="wgs84", tile=TileAddress(z=z, x=x, y=y))
            raw = await redis.get(cache.make_key(key))
        except Exception:  # the cache unreachable: Django answers (and reports it)
            log.warning("cell tile fast path: cache read failed", exc_info=True)
            return None
        return None if raw is None else pickle.loads(raw)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            # A query (?datum=gcj02, a basemap's shifted cells) is Django's: the fast path serves the plain tile.
            match = None if scope.get("query_string") else TILE_PATH.match(scope["path"])
            data = await self._cached(*map(int, match.groups())) if match else None
            if data is not None:
                etag = tile_etag(data).encode()
                headers = {k.lower(): v for k, v in scope.get("headers") or []}
                fresh = etag in [t.strip() for t in headers.get(b"if-none-match", b"").split(b",")]
                body = b"" if fresh or scope["method"] == "HEAD" else data
                await send(
                    {
                        "type": "http.response.start",
                        "status": 304 if fresh else 200,
                        "headers": [
                            *STATIC_HEADERS,
                            *response_headers(scope, headers),
                            (b"etag", etag),
                            (b"content-length", str(0 if fresh else len(data)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
