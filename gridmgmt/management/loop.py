"""The run-once-or-forever loop shared by the long-running commands (`cases_escalate`, `deliveries_send`)."""

import logging
import signal
import time
from collections.abc import Callable, Sequence

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from gridmgmt import metrics

log = logging.getLogger(__name__)

# A job returns a report with `.now`; its describer turns the report into a line for the log ("" = nothing).
Job = tuple[Callable[[], object], Callable[[object], str]]


def jobs_loop(*, command: BaseCommand, jobs: Sequence[Job], loop: float | None) -> None:
    """Run `jobs` in order once (an error propagates), or every `loop` seconds until SIGTERM (systemd's stop:
    the current pass finishes first). In the loop a failed job is logged and tried again at the next tick, and
    the others still run."""
    stop = False

    def _stop(*_args) -> None:
        nonlocal stop
        stop = True

    if loop is not None:
        signal.signal(signal.SIGTERM, _stop)
    while True:
        for job, describe in jobs:
            try:
                report = metrics.job_run(job, name=job.__name__)
            except Exception:
                if loop is None:
                    raise
                log.exception("%s failed; retrying in %s s", job.__name__, loop)
            else:
                if line := describe(report):
                    command.stdout.write(f"{report.now:%Y-%m-%d %H:%M:%S} {line}")
        if loop is None:
            return
        deadline = time.monotonic() + loop
        while not stop and time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        if stop:
            return
        close_old_connections()  # a long-lived process must not keep a connection the DB dropped
