"""Readiness: can this process serve? Each check answers None (fine) or a short reason."""

import shutil
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def _database() -> str | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cur:
        cur.execute("SELECT 1")
    return None


def _migrations() -> str | None:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return f"{len(pending)} migrations not applied" if pending else None


def _redis() -> str | None:
    # The cache and the channel layer share Redis (settings: CACHES, CHANNEL_LAYERS): one round trip.
    cache.get("readyz-probe")
    return None


def _media_disk() -> str | None:
    if settings.MEDIA_S3_BUCKET:  # object storage: no local disk to fill
        return None
    where = Path(settings.MEDIA_ROOT)
    while not where.exists():  # not created yet (no upload so far): the disk it will be created on
        where = where.parent
    free = shutil.disk_usage(where).free
    floor = settings.READY_MEDIA_FREE_BYTES
    return f"{free // 2**20} MiB free for media, below {floor // 2**20} MiB" if free < floor else None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": _database,
    "migrations": _migrations,
    "redis": _redis,
    "media_disk": _media_disk,
}


def readiness_check() -> dict[str, str | None]:
    """Every check's outcome by name; an exception counts as the reason (its type and message)."""
    results: dict[str, str | None] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # a probe reports, it never fails the request
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
    return results
