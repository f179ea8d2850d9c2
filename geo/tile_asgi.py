"""An ASGI fast path for cell tiles (`/tiles/cells/{z}/{x}/{y}.pbf`).

A cell tile changes only when the grid is rebuilt, and geo.selectors keeps rendered tiles in the shared cache
under the grid's version stamp. Going through Django's whole middleware stack for a tile costs several times
more than reading it back, and Django runs every sync view of a worker in one thread, so a worker renders one
tile at a time. This wrapper answers a plain GET/HEAD of a cell tile itself, with the same body and headers as
geo.views.cell_tile: a cached tile straight from Redis (two reads: the version stamp, then the tile); a tile
not cached yet is rendered (geo.selectors.CELL_TILE_SQL, on a database connection of the fast path's own:
_TileDatabase) and cached. Anything else — a query string (`?datum=gcj02`), a bad address, a low zoom, no
version stamp yet, the cache or the database failing — goes to Django unchanged, which answers it (and
reports the failure).

Measured by bench/tiles.py (README, "Benchmarks").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import re

import psycopg
from django.conf import settings
from django.core.cache import cache

from geo.selectors import (
    CELL_TILE_MIN_ZOOM,
    CELL_TILE_SQL,
    GRID_VERSION_KEY,
    TILE_CACHE_SECONDS,
    TileAddress,
    cell_tile_key,
    cell_tile_params,
)
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


class _TileDatabase:
    """A few psycopg connections of an event loop's own for rendering cell tiles: CELL_TILE_SQL as a
    server-side prepared statement with a binary result, no parallel workers for the session (they run
    nothing else), so a tile is one round trip with no parsing or planning. At most `size` renders of the
    loop run at once, each on a connection of its own; the loop meanwhile answers cached tiles. Any error
    drops that connection (a later render opens a new one) and is raised: the fast path then hands the
    request to Django, whose pool checks its connections. bench/tiles.py (README "Cell tiles against tipg"):
    CPU per cold tile, server + database, at load 6–7: 6.7 ms through Django's database layer in a thread,
    5.6 ms here."""

    def __init__(self, size: int = 2):
        self._idle: list = []
        self._slots = asyncio.Semaphore(size)

    async def _connect(self):
        from django.db import connections

        params = connections["default"].get_connection_params()
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        await conn.execute("SET max_parallel_workers_per_gather = 0")  # see geo.selectors.cell_tile_mvt
        return conn

    async def tile(self, tile: TileAddress) -> bytes:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None or conn.closed:
                    conn = await self._connect()
                cur = await conn.execute(CELL_TILE_SQL, cell_tile_params(tile=tile), prepare=True, binary=True)
                row = await cur.fetchone()
            except BaseException:  # an error, or the request cancelled mid-query: that connection goes
                if conn is not None and not conn.closed:
                    conn.pgconn.finish()
                raise
            self._idle.append(conn)
        return bytes(row[0]) if row and row[0] else b""

    def discard(self) -> None:
        """Close the idle connections without a loop (the loop they were made on is gone)."""
        for conn in self._idle:
            if not conn.closed:
                conn.pgconn.finish()
        self._idle = []


class CellTileFastPath:
    def __init__(self, app):
        self.app = app
        self._redis = None
        self._db = None

    def close(self) -> None:
        """Close the render connection (tests; a worker's goes with its process)."""
        if self._db is not None:
            self._db[1].discard()
            self._db = None

    def _database(self) -> _TileDatabase:
        # like the Redis client: one per event loop
        loop = asyncio.get_running_loop()
        if self._db is None or self._db[0] is not loop:
            if self._db is not None:
                self._db[1].discard()
            self._db = (loop, _TileDatabase())
        return self._db[1]

    def _client(self):
        # one client (connection pool) per event loop: a uvicorn worker has one; tests make several
        loop = asyncio.get_running_loop()
        if self._redis is None or self._redis[0] is not loop:
            from redis.asyncio import from_url

            self._redis = (loop, from_url(settings.CACHES["default"]["LOCATION"]))
        return self._redis[1]

    async def _tile(self, z: int, x: int, y: int) -> bytes | None:
        if z < CELL_TILE_MIN_ZOOM or z > 22 or not (0 <= x < 1 << z and 0 <= y < 1 << z):
            return None
        tile = TileAddress(z=z, x=x, y=y)
        try:
            redis = self._client()
            version = await redis.get(cache.make_key(GRID_VERSION_KEY))
            if version is None:  # Django makes the stamp (geo.selectors.grid_version)
                return None
            version = pickle.loads(version)
            raw = await redis.get(cache.make_key(cell_tile_key(version=version, datum="wgs84", tile=tile)))
        except Exception:  # the cache unreachable: Django answers (and reports it)
            log.warning("cell tile fast path: cache read failed", exc_info=True)
            return None
        if raw is not None:
            return pickle.loads(raw)
        try:
            data = await self._database().tile(tile)
        except Exception:  # the database failing: Django answers (a 503, and reports it)
            log.warning("cell tile fast path: render failed", exc_info=True)
            return None
        # Stored as django.core.cache's Redis backend stores it (a pickle, with its expiry), through this loop's
        # client: Django's cache object is per request context under ASGI, so cache.set from here would open a
        # new Redis connection for every tile (py-spy: 40 % of a cold pass's samples).
        try:
            await redis.set(
                cache.make_key(cell_tile_key(version=version, datum="wgs84", tile=tile)),
                pickle.dumps(data, pickle.HIGHEST_PROTOCOL),
                ex=TILE_CACHE_SECONDS,
            )
        except Exception:  # not cached this time: still answered
            log.warning("cell tile fast path: cache write failed", exc_info=True)
        return data

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            # A query (?datum=gcj02, a basemap's shifted cells) is Django's: the fast path serves the plain tile.
            match = None if scope.get("query_string") else TILE_PATH.match(scope["path"])
            data = await self._tile(*map(int, match.groups())) if match else None
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
