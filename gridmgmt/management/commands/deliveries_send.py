"""`manage.py deliveries_send [--loop SECONDS]`: send the due e-mail, SMS and group-robot messages once, or
forever every N seconds (gridmgmt.outbox). `cases_escalate` runs the same pass on each of its own, so a
deployment that runs the escalation loop needs this command only to send more often."""

from django.core.management.base import BaseCommand

from gridmgmt.management.args import seconds_option
from gridmgmt.management.loop import jobs_loop
from gridmgmt.outbox import deliveries_send


def delivered(report) -> str:
    if not report.count:
        return ""
    return f"投递 sent {report.sent}, 重试 retry {report.retried}, 失败 failed {report.failed}"


class Command(BaseCommand):
    help = "Send the due notifications by e-mail, SMS and work-chat robot (retries with backoff)."

    def add_arguments(self, parser):
        seconds_option(parser, "--loop", help="run again every SECONDS (default: once)")

    def handle(self, *args, loop: float | None, **options):
        jobs_loop(command=self, jobs=((deliveries_send, delivered),), loop=loop)
