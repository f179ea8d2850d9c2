"""An ASGI fast path for cell tiles (`/tiles/cells/{z}/{x}/{y}.pbf`).

A cell tile changes only when the grid is rebuilt, and geo.selectors keeps rendered tiles in the shared cache
under the grid's version stamp. Going through Django's whole middleware stack for a tile costs several times
more than reading it back, and Django runs every sync view of a worker in one thread, so a worker renders one
tile at a time. This wrapper answers a plain GET/HEAD of a cell tile itself, with the same body and headers as
geo.views.cell_tile: a cached tile from the worker's memory (_TileMemory, keyed by the grid's version stamp,
which the worker reads from Redis at most every settings.TILE_VERSION_SECONDS, so a rebuild shows that late at
most) or else from Redis; a tile not cached yet is rendered (geo.selectors.CELL_TILE_SQL, on a database
connection of the fast path's own: _TileDatabase) and cached. Anything else — a query string
(`?datum=gcj02`), a bad address, a low zoom, no version stamp yet, the cache or the database failing — goes to
Django unchanged, which answers it (and reports the failure).

Measured by bench/tiles.py (README, "Benchmarks").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import re
import time
from collections import OrderedDict

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


class _TileMemory:
    """The worker's most recently served tiles with their ETags, least recently used dropped past `max_bytes`.
    Keys carry the grid's version stamp: after a rebuild the tiles of the older version are never served and
    age out. A hit costs no Redis read (the stamp is trusted for TILE_VERSION_SECONDS), no unpickling and no
    hash: bench/tiles.py (README, "Cell tiles against tipg")."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024, max_entries: int = 100_000):
        self.max_bytes = max_bytes
        # Empty tiles (outside the grid, any address up to z22) weigh nothing by their bytes: without a count
        # limit a crawl of such addresses would grow the worker without bound.
        self.max_entries = max_entries
        self.size = 0
        self._entries: OrderedDict[tuple, tuple[bytes, bytes]] = OrderedDict()

    def get(self, key: tuple) -> tuple[bytes, bytes] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, data: bytes) -> tuple[bytes, bytes]:
        """Remember `data` under `key` (a tile kept already — two requests rendered it at once — stays)."""
        if (entry := self._entries.get(key)) is not None:
            return entry
        entry = self._entries[key] = (data, tile_etag(data).encode())
        self.size += len(data)
        while self.size > self.max_bytes or len(self._entries) > self.max_entries:
            _, (old, _) = self._entries.popitem(last=False)
            self.size -= len(old)
        return entry


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
        self._memory = _TileMemory()
        self._version: tuple[float, str] | None = None  # (when read, the grid's version stamp)

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

    async def _tile(self, z: int, x: int, y: int) -> tuple[bytes, bytes, str | None] | None:
        """(tile, its ETag, the cache key to store it under once answered — None when it came from a cache), or
        None for Django to answer."""
        if z < CELL_TILE_MIN_ZOOM or z > 22 or not (0 <= x < 1 << z and 0 <= y < 1 << z):
            return None
        tile = TileAddress(z=z, x=x, y=y)
        try:
            redis = self._client()
            now = time.monotonic()
            if self._version is not None and now - self._version[0] < settings.TILE_VERSION_SECONDS:
                version = self._version[1]
            else:
                stamp = await redis.get(cache.make_key(GRID_VERSION_KEY))
                if stamp is None:  # Django makes the stamp (geo.selectors.grid_version)
                    return None
                version = pickle.loads(stamp)
                self._version = (now, version)
            remembered = self._memory.get((version, z, x, y))
            if remembered is not None:
                return (*remembered, None)
            key = cache.make_key(cell_tile_key(version=version, datum="wgs84", tile=tile))
            raw = await redis.get(key)
        except Exception:  # the cache unreachable: Django answers (and reports it)
            log.warning("cell tile fast path: cache read failed", exc_info=True)
            return None
        if raw is not None:
            return (*self._memory.put((version, z, x, y), pickle.loads(raw)), None)
        try:
            data = await self._database().tile(tile)
        except Exception:  # the database failing: Django answers (a 503, and reports it)
            log.warning("cell tile fast path: render failed", exc_info=True)
            return None
        return (*self._memory.put((version, z, x, y), data), key)

    async def _store(self, key: str, data: bytes) -> None:
        """A rendered tile into the shared cache, for the other workers, after it was answered. Stored as
        django.core.cache's Redis backend stores it (a pickle, with its expiry), through this loop's client:
        Django's cache object is per request context under ASGI, so cache.set from here would open a new Redis
        connection for every tile (py-spy: 40 % of a cold pass's samples)."""
        try:
            await self._client().set(key, pickle.dumps(data, pickle.HIGHEST_PROTOCOL), ex=TILE_CACHE_SECONDS)
        except Exception:  # not cached this time: it was answered all the same
            log.warning("cell tile fast path: cache write failed", exc_info=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            # A query (?datum=gcj02, a basemap's shifted cells) is Django's: the fast path serves the plain tile.
            match = None if scope.get("query_string") else TILE_PATH.match(scope["path"])
            found = await self._tile(*map(int, match.groups())) if match else None
            if found is not None:
                data, etag, unstored = found
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
                if unstored is not None:  # the client has its tile: the next request need not wait for this
                    await self._store(unstored, data)
                return
        await self.app(scope, receive, send)
