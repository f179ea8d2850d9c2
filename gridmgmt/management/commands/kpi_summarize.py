"""`manage.py kpi_summarize [--batch N]`: bring the KPI summary (gridmgmt.models.KpiDay and KpiDayDepartment) up
to the events committed now — gridmgmt.kpi.kpi_summary_refresh. Run by the deployed timer
(deploy/systemd/gridmgmt-kpi.timer, every 5 minutes) and once after a bulk load (the first run summarizes every
event: bench/scale.py times it).
KPI reads are exact whether or not it has run; it keeps the part they read from the raw events short.
"""

from django.core.management.base import BaseCommand

from gridmgmt.kpi import kpi_summary_refresh


class Command(BaseCommand):
    help = "Bring the KPI summary (per local day, area and team) up to the committed events."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1_000_000, help="event ids per transaction")

    def handle(self, *args, batch: int, **options):
        done = kpi_summary_refresh(batch=batch)
        self.stdout.write(f"KPI summary: events {done['from']} → {done['to']} in {done['seconds']} s")
