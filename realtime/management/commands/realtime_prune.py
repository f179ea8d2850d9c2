"""Drop old rows of the real-time log. Screens further behind than the oldest kept row are told to reload.
Also keeps the position history's partitions (realtime/positions.py: made ahead, dropped past the retention)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from realtime.positions import partitions_maintain


class Command(BaseCommand):
    help = "Delete the prefix of realtime_feedevent older than --days (default 7)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7)

    def handle(self, *args, days: float, **options):
        since = timezone.now() - timedelta(days=days)
        with connection.cursor() as cur:
            # Only a prefix may go (everything before the first recent row): a hole in the middle would be a
            # gap for a screen catching up across it. The newest row always stays, so the head is kept.
            cur.execute(
                "DELETE FROM realtime_feedevent WHERE seq < coalesce("
                "(SELECT min(seq) FROM realtime_feedevent WHERE at >= %s), (SELECT max(seq) FROM realtime_feedevent))",
                [since],
            )
            deleted = cur.rowcount
        self.stdout.write(f"pruned {deleted} feed rows")
        report = partitions_maintain()
        self.stdout.write(f"position partitions: {len(report.created)} created, {len(report.dropped)} dropped")
