"""`manage.py cases_escalate [--loop SECONDS]`: run the 四级处置 escalation once, or forever every N seconds.
Each pass also marks offline the cameras whose heartbeat stopped (`manage.py cameras_timeout`).

Why a looping command and not Celery beat: an intranet deployment then needs no broker or worker beyond
what already runs (PostgreSQL); systemd/supervisor restarts it; a run is idempotent and locks with SKIP
LOCKED, so overlapping or repeated runs are harmless. See README "Escalation scheduler".
"""

import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from gridmgmt import metrics
from gridmgmt.escalation import cases_escalate
from gridmgmt.management.args import seconds_option
from realtime.services import cameras_offline_timeout

log = logging.getLogger(__name__)


def _escalated(report) -> str:
    return f"升级 escalated {report.count} 件, 提醒 alerts {report.alerts}"


def _cameras(report) -> str:
    return f"摄像头离线 offline {len(report.offline)}" if report.offline else ""


class Command(BaseCommand):
    help = "Escalate overdue cases one level (grid → community → street → district) and alert supervisors."

    def add_arguments(self, parser):
        seconds_option(parser, "--loop", help="run again every SECONDS (default: once)")

    def handle(self, *args, loop: float | None, **options):
        self._stop = False
        if loop is not None:
            # systemd stops with SIGTERM: finish the current run, then leave.
            signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        while True:
            for job, describe in ((cases_escalate, _escalated), (cameras_offline_timeout, _cameras)):
                try:
                    report = metrics.job_run(job, name=job.__name__)
                except Exception:
                    if loop is None:
                        raise
                    log.exception("%s failed; retrying in %s s", job.__name__, loop)
                else:
                    if line := describe(report):
                        self.stdout.write(f"{report.now:%Y-%m-%d %H:%M:%S} {line}")
            if loop is None:
                return
            deadline = time.monotonic() + loop
            while not self._stop and time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if self._stop:
                return
            close_old_connections()  # a long-lived process must not keep a connection the DB dropped
