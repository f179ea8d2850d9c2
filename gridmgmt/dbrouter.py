"""Reads that tolerate lag from a PostgreSQL streaming replica (README, "Scale-out").

With DATABASE_REPLICA_URL set, settings.py adds the database alias "replica" and this router. Reads go to the
replica only inside `lag_tolerant()` — the blocks that compute figures a screen refreshes anyway: the wall
snapshot, the KPIs (and statistics, exports: wrap them the same way). Everything else — every write, and
every read a user expects to see their own write in (a case after filing it, the desk's queue, sessions,
permissions) — stays on the primary. Without a replica, `lag_tolerant()` changes nothing.

Raw SQL picks its connection with `read_connection()`, the ORM through `ReplicaRouter`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

REPLICA = "replica"
_lag_ok: contextvars.ContextVar[bool] = contextvars.ContextVar("gridmgmt_lag_ok", default=False)


@contextmanager
def lag_tolerant() -> Iterator[None]:
    """Reads in this block may be served by the replica (seconds behind the primary at most, usually ms)."""
    token = _lag_ok.set(True)
    try:
        yield
    finally:
        _lag_ok.reset(token)


def read_alias() -> str:
    return REPLICA if _lag_ok.get() and REPLICA in settings.DATABASES else "default"


def read_connection():
    return connections[read_alias()]


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data on both

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"  # the replica follows the primary's WAL, schema included
