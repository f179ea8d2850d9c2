"""A row locked by another database session, for tests of SKIP LOCKED paths (a real second connection)."""

import threading
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def row_locked_elsewhere(qs, pk):
    """While the block runs, another session holds `SELECT … FOR UPDATE` on row `pk` of `qs`."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            qs.select_for_update().get(pk=pk)
            locked.set()
            release.wait(timeout=30)
        connection.close()  # this thread's own connection

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        yield
    finally:
        release.set()
        holder.join(timeout=30)
