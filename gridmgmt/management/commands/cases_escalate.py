"""`manage.py cases_escalate [--loop SECONDS]`: run the 四级处置 escalation once, or forever every N seconds.
Each pass also marks offline the cameras whose heartbeat stopped (`manage.py cameras_timeout`) and then sends
the due notifications by e-mail, SMS and group robot (`manage.py deliveries_send`), the escalations just
written included.

Why a looping command and not Celery beat: an intranet deployment then needs no broker or worker beyond
what already runs (PostgreSQL); systemd/supervisor restarts it; a run is idempotent and locks with SKIP
LOCKED, so overlapping or repeated runs are harmless. See README "Escalation scheduler".
"""

from django.core.management.base import BaseCommand

from gridmgmt.escalation import cases_escalate
from gridmgmt.management.args import seconds_option
from gridmgmt.management.commands.deliveries_send import delivered
from gridmgmt.management.loop import jobs_loop
from gridmgmt.outbox import deliveries_send
from realtime.services import cameras_offline_timeout


def _escalated(report) -> str:
    return f"升级 escalated {report.count} 件, 提醒 alerts {report.alerts}"


def _cameras(report) -> str:
    return f"摄像头离线 offline {len(report.offline)}" if report.offline else ""


class Command(BaseCommand):
    help = "Escalate overdue cases one level (grid → community → street → district) and alert supervisors."

    def add_arguments(self, parser):
        seconds_option(parser, "--loop", help="run again every SECONDS (default: once)")

    def handle(self, *args, loop: float | None, **options):
        jobs = ((cases_escalate, _escalated), (cameras_offline_timeout, _cameras), (deliveries_send, delivered))
        jobs_loop(command=self, jobs=jobs, loop=loop)
