"""`manage.py cameras_timeout [--after SECONDS]`: mark offline the cameras whose heartbeat stopped.

`cases_escalate --loop` runs the same job on every pass, so a deployment needs no second process; this command
is for running it alone (cron, a test, an operator). Set-based and idempotent: a second run changes nothing.
"""

from django.core.management.base import BaseCommand

from gridmgmt.management.args import seconds_option
from realtime.services import cameras_offline_timeout


class Command(BaseCommand):
    help = "Mark offline every online camera whose last heartbeat is older than CAMERA_OFFLINE_AFTER seconds."

    def add_arguments(self, parser):
        seconds_option(parser, "--after", help="override settings.CAMERA_OFFLINE_AFTER")

    def handle(self, *args, after: float | None, **options):
        report = cameras_offline_timeout(after=after)
        codes = ", ".join(report.offline[:20]) + (" …" if len(report.offline) > 20 else "")
        line = f"{report.now:%Y-%m-%d %H:%M:%S} 离线 offline {len(report.offline)} 个摄像头"
        self.stdout.write(line + (f": {codes}" if codes else ""))
