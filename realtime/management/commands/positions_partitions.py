"""Create the position history's partitions ahead and drop the days past the retention (realtime/positions.py).
`realtime_prune` runs the same; run either daily (cron, systemd timer)."""

from django.core.management.base import BaseCommand

from realtime.positions import partitions_ahead, partitions_maintain, retention_days


class Command(BaseCommand):
    help = "Create realtime_position partitions for today + --ahead days; drop those older than --keep-days."

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=None, help="days ahead (POSITION_PARTITIONS_AHEAD, 7)")
        parser.add_argument("--keep-days", type=int, default=None, help="retention (POSITION_RETENTION_DAYS, 30)")

    def handle(self, *args, ahead: int | None, keep_days: int | None, **options):
        ahead = partitions_ahead() if ahead is None else ahead
        keep_days = retention_days() if keep_days is None else keep_days
        report = partitions_maintain(ahead=ahead, keep_days=keep_days)
        self.stdout.write(
            f"position partitions: {len(report.created)} created, {len(report.dropped)} dropped"
            + (f" ({', '.join(d.isoformat() for d in report.dropped)})" if report.dropped else "")
        )
