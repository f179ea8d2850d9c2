from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from geo.models import AdminArea
from geo.services import GridInUse, grid_build


class Command(BaseCommand):
    help = "Cover a district with square unit cells (UTM 51N), clipped to its communities, coded and stored by COPY."

    def add_arguments(self, parser):
        parser.add_argument("--district", required=True, help="district code, e.g. 310115")
        parser.add_argument("--size", type=float, default=100.0, help="cell edge in metres (default 100)")
        parser.add_argument("--sliver-m2", type=float, default=50.0, help="pieces below this merge into a neighbour")
        parser.add_argument("--rebuild", action="store_true", help="replace existing cells (refused if cases use them)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, district: str, size: float, sliver_m2: float, rebuild: bool, no_progress: bool, **opts):
        if not 10 <= size <= 1000:
            raise CommandError("--size 必须在 10 到 1000 米之间 (must be 10–1000 m)")
        if not AdminArea.objects.filter(code=district, level=AdminArea.Level.DISTRICT).exists():
            raise CommandError(f"区 {district} 不存在,请先导入边界 (district not found: run boundaries_import)")
        bar = None

        def progress(step: str, done: int, total: int) -> None:
            nonlocal bar
            if no_progress or step != "generate+store":
                return
            if bar is None:
                bar = tqdm(total=total, unit="batch", desc="generate+store", file=self.stderr._out)
            bar.update(done - bar.n)

        try:
            result = grid_build(
                district_code=district, size=size, sliver_m2=sliver_m2, rebuild=rebuild, progress=progress
            )
        except GridInUse as exc:
            raise CommandError(str(exc)) from exc
        if bar is not None:
            bar.close()
        if result.skipped:
            self.stdout.write(f"grid: {district} already has {result.cells} cells, skipped (use --rebuild)")
            return
        ratio = result.area_m2 / result.district_area_m2
        self.stdout.write(f"grid: {result.cells} cells, total area {result.area_m2 / 1e6:.3f} km² ({ratio:.4%})")
