from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from geo.gisio import DATUMS, LAYERS, SHP_COLUMNS, layer_import
from geo.management.gisio_call import gisio_call

MAX_SHOWN = 200  # a file that is wrong throughout would otherwise flood the terminal


class Command(BaseCommand):
    help = (
        "Import a layer (areas, cells, cameras, components) from GeoJSON, GeoPackage, Shapefile or CSV (point layers, "
        "lon/lat or x/y columns). Every feature is checked first; if any is bad nothing is written (exit 1) unless "
        "--skip-invalid (the valid ones are written, exit 2). With --update, optional columns absent from the "
        "file leave existing values alone. Shapefile column names: "
        + ", ".join(f"{long}→{short}" for long, short in SHP_COLUMNS.items())
    )

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=sorted(LAYERS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--layer", dest="source_layer", help="layer inside a GeoPackage (default: the layer name)")
        parser.add_argument("--srid", type=int, help="EPSG code of the input (overrides the file; CSV default 4326)")
        parser.add_argument("--datum", choices=DATUMS, default="wgs84", help="Chinese map datum of lon/lat input")
        parser.add_argument("--lon-col", help="CSV longitude/x column (default lon, else x)")
        parser.add_argument("--lat-col", help="CSV latitude/y column (default lat, else y)")
        parser.add_argument("--encoding", help="text encoding of a CSV or of a Shapefile without .cpg (e.g. gbk)")
        parser.add_argument("--skip-invalid", action="store_true", help="write the valid features, report the rest")
        parser.add_argument("--update", action="store_true", help="update rows whose code already exists")
        parser.add_argument("--dry-run", action="store_true", help="validate only")

    def handle(self, *args, **opts):
        options = "layer path source_layer srid datum skip_invalid update dry_run lon_col lat_col encoding".split()
        result = gisio_call(layer_import, opts, options)
        for problem in result.problems[:MAX_SHOWN]:
            self.stderr.write(str(problem))
        if len(result.problems) > MAX_SHOWN:
            self.stderr.write(f"… 另有 {len(result.problems) - MAX_SHOWN} 个问题 (and more problems)")
        self.stdout.write(
            f"{result.layer}: 读取 {result.read} (read), 新建 {result.created} (created), "
            f"更新 {result.updated} (updated), 跳过 {result.skipped} (skipped)"
        )
        if opts["dry_run"]:
            self.stdout.write("试运行, 未写入 (dry run, nothing written)")
        n, bad = len(result.problems), result.skipped
        if n and not result.written:
            raise CommandError(
                f"{n} 个问题, 涉及 {bad} 个要素, 未写入任何数据 "
                f"({n} problems in {bad} features; nothing written; fix them or use --skip-invalid)"
            )
        if n:  # written without the bad features: still a non-zero exit, told apart from "nothing written"
            raise CommandError(
                f"{n} 个问题, 已跳过 {bad} 个要素, 其余已写入 ({n} problems; {bad} features skipped, the rest written)",
                returncode=2,
            )
