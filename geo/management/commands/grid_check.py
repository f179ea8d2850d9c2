from django.core.management.base import BaseCommand, CommandError

from geo.models import AdminArea
from geo.selectors import grid_quality


class Command(BaseCommand):
    help = "Check a district's unit grid: cell count, area vs the district (EPSG:32651), overlaps, largest cell."

    def add_arguments(self, parser):
        parser.add_argument("--district", required=True)
        parser.add_argument("--skip-overlaps", action="store_true", help="skip the (slower) pairwise overlap check")

    def handle(self, *args, district: str, skip_overlaps: bool, **options):
        area = AdminArea.objects.filter(code=district, level=AdminArea.Level.DISTRICT).first()
        if area is None:
            raise CommandError(f"区 {district} 不存在 (district not found)")
        q = grid_quality(district_id=area.id, overlaps=not skip_overlaps)
        self.stdout.write(
            f"district {district}: {q.cells} cells; cells {q.cells_area_m2 / 1e6:.3f} km² vs district "
            f"{q.district_area_m2 / 1e6:.3f} km² ({q.area_ratio:.4%}); largest cell {q.max_cell_m2:.1f} m²; "
            f"invalid {q.invalid}; overlapping pairs {q.overlapping_pairs if q.overlapping_pairs is not None else '-'}"
        )
        ok = (
            q.cells > 0
            and abs(q.area_ratio - 1) <= 0.005
            and q.max_cell_m2 <= 10_050
            and q.invalid == 0
            and not q.overlapping_pairs
        )
        if not ok:
            raise CommandError("网格检查未通过 (grid check failed)")
        self.stdout.write("OK")
