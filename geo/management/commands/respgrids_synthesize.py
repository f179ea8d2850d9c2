from django.core.management.base import BaseCommand

from geo.services import respgrids_synthesize


class Command(BaseCommand):
    help = "Demo only: group a district's cells into responsibility grids of N×N cells within each community."

    def add_arguments(self, parser):
        parser.add_argument("--district", required=True)
        parser.add_argument("--block-cells", type=int, default=5)

    def handle(self, *args, district: str, block_cells: int, **options):
        r = respgrids_synthesize(district_code=district, block_cells=block_cells)
        msg = "already built, skipped" if r.skipped else f"{r.grids} responsibility grids"
        self.stdout.write(f"responsibility grids: {msg}")
