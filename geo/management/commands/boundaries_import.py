from pathlib import Path

from django.core.management.base import BaseCommand

from geo.services import BUNDLED_BOUNDARIES, boundaries_import


class Command(BaseCommand):
    help = "Import city/district boundaries (default: the bundled Shanghai GCJ-02 file), converting to WGS-84."

    def add_arguments(self, parser):
        parser.add_argument("--path", type=Path, default=BUNDLED_BOUNDARIES)
        parser.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"], default="gcj02")

    def handle(self, *args, path: Path, datum: str, **options):
        result = boundaries_import(path=path, datum=datum)
        self.stdout.write(f"boundaries: {result.created} created, {result.updated} updated ({path.name}, {datum})")
