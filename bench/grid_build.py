"""Build and store the Pudong unit grid; compare with a naive per-cell ORM loop.

    .venv/bin/python bench/grid_build.py [--district 310115] [--sample 10000]

Runs inside a transaction on a scratch copy of the district (its communities included) and rolls it
back, so the demo data is untouched. Baseline (issue 2): a Python loop that clips each square with
shapely, projects it and calls GridCell.save() — timed on a sample and extrapolated to the full count.
"""

import argparse
import time

import _setup
import numpy as np
import shapely
from django.db import connection, transaction
from pyproj import Transformer

from geo import services
from geo.grid import squares_covering
from geo.models import UTM_SRID, AdminArea, GridCell


class Rollback(Exception):
    pass


def scratch_district(src: AdminArea) -> AdminArea:
    """A copy of the district (code B + last 5 digits) with copies of its streets and communities."""
    code = "B" + src.code[1:]
    clone = AdminArea.objects.create(
        code=code, name=f"{src.name}(基准)", level=src.level, boundary=src.boundary, area_m2=src.area_m2
    )
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO geo_adminarea (code, name, name_en, level, parent_id, boundary, area_m2, is_synthetic)
            SELECT %(c)s || substr(code, 7), name, name_en, level, %(id)s, boundary, area_m2, is_synthetic
            FROM geo_adminarea WHERE parent_id = %(src)s;
            INSERT INTO geo_adminarea (code, name, name_en, level, parent_id, boundary, area_m2, is_synthetic)
            SELECT %(c)s || substr(k.code, 7), k.name, k.name_en, k.level, s2.id, k.boundary, k.area_m2, k.is_synthetic
            FROM geo_adminarea k JOIN geo_adminarea s ON s.id = k.parent_id
            JOIN geo_adminarea s2 ON s2.code = %(c)s || substr(s.code, 7)
            WHERE s.parent_id = %(src)s;
            """,
            {"c": code, "id": clone.id, "src": src.id},
        )
    return clone


def naive_baseline(district: AdminArea, *, sample: int) -> tuple[int, int, int, float]:
    """One square at a time: clip, project, save(). Visits every k-th square of the district's bounding
    box (sea and land alike, as the naive full run would), so the time per visited square extrapolates
    to the whole box. Returns (squares visited, cells stored, squares in the box, seconds)."""
    to_wgs = Transformer.from_crs(UTM_SRID, 4326, always_xy=True)
    to_utm = Transformer.from_crs(4326, UTM_SRID, always_xy=True)
    region = shapely.transform(
        shapely.from_wkb(bytes(district.boundary.wkb)),
        lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])),
    )
    squares, rows, cols = squares_covering(region.bounds, 100.0)
    stride = max(1, len(squares) // sample)
    visited = stored = 0
    t0 = time.perf_counter()
    for sq, r, c in zip(squares[::stride], rows[::stride], cols[::stride], strict=True):
        visited += 1
        piece = region.intersection(sq)
        if piece.is_empty or piece.area <= 0:
            continue
        if piece.geom_type == "Polygon":
            piece = shapely.MultiPolygon([piece])
        wgs = shapely.transform(piece, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
        centre = shapely.transform(
            piece.point_on_surface(), lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1]))
        )
        GridCell(
            code=f"N{district.code}{r:04d}{c:04d}",
            geom=wgs.wkt,
            center=centre.wkt,
            area_m2=piece.area,
            row=int(r),
            col=int(c),
            district=district,
        ).save()
        stored += 1
    return visited, stored, len(squares), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--district", default="310115")
    parser.add_argument("--sample", type=int, default=10000, help="squares visited by the baseline")
    args = parser.parse_args()
    src = AdminArea.objects.get(code=args.district, level=AdminArea.Level.DISTRICT)
    out: dict = {}
    try:
        with transaction.atomic():
            clone = scratch_district(src)
            t0 = time.perf_counter()
            result = services.grid_build(district_code=clone.code)
            ours = time.perf_counter() - t0
            out.update(cells=result.cells, seconds=round(ours, 2), cells_per_second=round(result.cells / ours))
            raise Rollback
    except Rollback:
        pass
    try:
        with transaction.atomic():
            district = AdminArea.objects.create(
                code="N" + src.code[1:], name="naive", level=src.level, boundary=src.boundary, area_m2=src.area_m2
            )
            visited, n, total, secs = naive_baseline(district, sample=args.sample)
            raise Rollback
    except Rollback:
        pass
    # Saves run in one transaction here (cheaper than Django's default autocommit): a conservative baseline.
    naive_full = secs / visited * total
    out.update(
        baseline={
            "name": "Python loop over the bounding box's squares, shapely clip, one GridCell.save() per cell",
            "sample_squares": visited,
            "sample_cells": n,
            "squares_in_box": total,
            "sample_seconds": round(secs, 2),
            "extrapolated_seconds": round(naive_full, 1),
        },
        speedup=round(naive_full / out["seconds"], 1),
        targets={"seconds_max": 20, "speedup_min": 20},
    )
    out["pass"] = out["seconds"] <= 20 and out["speedup"] >= 20
    print(f"grid_build {args.district}: {out['cells']} cells in {out['seconds']:.2f} s ({out['cells_per_second']}/s)")
    print(
        f"naive baseline: {visited} of {total} squares ({n} cells stored) in {secs:.2f} s"
        f" → {naive_full:.1f} s extrapolated to the whole box"
    )
    print(f"ratio: {out['speedup']:.1f}× faster (targets: ≤ 20 s, ≥ 20×) → {'PASS' if out['pass'] else 'FAIL'}")
    print(f"results: {_setup.results_write('grid_build', out)}")


if __name__ == "__main__":
    main()
