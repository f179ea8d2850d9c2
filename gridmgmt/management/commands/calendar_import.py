"""manage.py calendar_import YEAR [FILE]: load one year of the working calendar (holidays, make-up working
days) from a CSV or ICS file, or, without a file, from the chinesecalendar package. Replaces that year's rows."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gridmgmt.errors import InvalidInput
from gridmgmt.services import calendar


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("year", type=int)
        parser.add_argument("file", nargs="?", help="CSV (date,is_workday,name) or ICS; none = chinesecalendar")

    def handle(self, *args, year: int, file: str | None = None, **options):
        try:
            if file is None:
                days = calendar.calendar_from_package(year=year)
            else:
                data = Path(file).read_bytes()
                ics = file.lower().endswith(".ics") or data.lstrip()[:15] == b"BEGIN:VCALENDAR"
                days = (calendar.calendar_parse_ics if ics else calendar.calendar_parse_csv)(data=data)
            n = calendar.calendar_import(year=year, days=days)
        except (InvalidInput, OSError) as e:
            raise CommandError(str(getattr(e, "message", e))) from None
        self.stdout.write(f"{year}: {n} days")
