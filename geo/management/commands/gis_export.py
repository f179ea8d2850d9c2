from pathlib import Path

from django.core.management.base import BaseCommand

from geo.gisio import DATUMS, FORMATS, LAYERS, layer_export
from geo.management.gisio_call import gisio_call


class Command(BaseCommand):
    help = "Export a layer in the columns gis_import reads (Shapefile columns shortened the same way)."

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=sorted(LAYERS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", dest="fmt", choices=sorted(FORMATS), help="default: from the file suffix")
        parser.add_argument("--district", help="only this district's rows (district code)")
        parser.add_argument("--srid", type=int, default=4326, help="EPSG code of the output (default 4326)")
        parser.add_argument("--datum", choices=DATUMS, default="wgs84", help="shift lon/lat to a Chinese map datum")
        parser.add_argument("--layer", dest="target_layer", help="layer name inside a GeoPackage")

    def handle(self, *args, **opts):
        result = gisio_call(layer_export, opts, ("layer", "path", "fmt", "district", "srid", "datum", "target_layer"))
        self.stdout.write(f"{result.layer}: 导出 {result.count} 个要素 (exported) → {result.path} [{result.format}]")
