#!/usr/bin/env python3
"""Backup and restore of gridmgmt's data: the PostGIS database and the photos (README, "Backup and restore").

    backup.py create  --out DIR                          pg_dump (custom format) + tar of MEDIA_ROOT + manifest
    backup.py restore --from DIR --database NAME --media-root DIR   into a NEW database and an empty directory
    backup.py verify  --database NAME --media-root DIR   compare with the manifest: counts and a checksum sample

The source is what the settings say (DATABASE_URL, MEDIA_ROOT: run with the server's environment, e.g.
`set -a; . /etc/gridmgmt/gridmgmt.env; set +a`). `restore` creates NAME on the same PostgreSQL server (or the
one --database-url names) and refuses an existing database or a non-empty media directory: a restore never
overwrites. Order matters for consistency: the dump is one snapshot; the photos are archived after it, so
every photo a dumped row names is in the archive (photos are written under fresh names and never rewritten;
a photo added after the snapshot is an extra file, harmless).

Photos on S3 (MEDIA_S3_BUCKET set): the bucket is the backup of the photos — versioning on, and a copy
elsewhere (`aws s3 sync s3://BUCKET DIR`, or `rclone sync`); `create` then archives nothing and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTED = {
    "cases": "gridmgmt_case",
    "events": "gridmgmt_caseevent",
    "photos": "gridmgmt_casephoto",
    "feed": "realtime_feedevent",
}
SAMPLE = 50  # rows (and photo files) checked byte for byte
# One row of each sampled case, as text: what a restore must bring back exactly (geometry included).
ROW_SQL = (
    "SELECT md5(string_agg(concat_ws('|', c.id, c.code, c.status, c.category_id, ST_AsEWKB(c.point)::text, "
    "c.description, c.reported_at, (SELECT count(*) FROM gridmgmt_caseevent e WHERE e.case_id = c.id)), ',' "
    "ORDER BY c.id)) "
    "FROM gridmgmt_case c WHERE c.id = ANY(%s)"
)


def django_settings():
    """gridmgmt/settings.py's values (DATABASES, MEDIA_ROOT, …) without starting Django: the module alone."""
    sys.path.insert(0, str(ROOT))
    import importlib

    return importlib.import_module("gridmgmt.settings")


def libpq_env(db: dict, name: str | None = None) -> dict:
    """Environment for pg_dump/pg_restore/psycopg from a Django database settings dict."""
    env = {**os.environ}
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if db.get(key):
            env[var] = str(db[key])
    env["PGDATABASE"] = name or db["NAME"]
    return env


def connect(db: dict, name: str | None = None):
    import psycopg

    env = libpq_env(db, name)
    return psycopg.connect(
        host=env.get("PGHOST"),
        port=env.get("PGPORT"),
        user=env.get("PGUSER"),
        password=env.get("PGPASSWORD"),
        dbname=env["PGDATABASE"],
        autocommit=True,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def facts(db: dict, name: str | None, media_root: Path | None, sample: list[int] | None = None) -> dict:
    """Counts, the sampled cases' row checksum and the sampled photos' file checksums of one database."""
    with connect(db, name) as conn:
        counts = {k: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for k, table in COUNTED.items()}
        if sample is None:
            ids = [r[0] for r in conn.execute("SELECT id FROM gridmgmt_case ORDER BY id")]
            sample = sorted(random.Random(len(ids)).sample(ids, min(SAMPLE, len(ids))))
        rows_md5 = conn.execute(ROW_SQL, [sample]).fetchone()[0]
        photos = [r[0] for r in conn.execute("SELECT image FROM gridmgmt_casephoto ORDER BY id")]
    photo_sample = sorted(random.Random(len(photos)).sample(photos, min(SAMPLE, len(photos))))
    files = {}
    if media_root is not None:
        files = {p: (sha256(media_root / p) if (media_root / p).is_file() else None) for p in photo_sample}
    return {"counts": counts, "case_sample": sample, "case_rows_md5": rows_md5, "photo_sha256": files}


def create(args) -> int:
    settings = django_settings()
    db = settings.DATABASES["default"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dump = out / f"gridmgmt-{stamp}.dump"
    started = time.monotonic()
    # Custom format: compressed, restorable in parallel (-j), table by table. One consistent snapshot.
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump)], env=libpq_env(db), check=True)
    s3 = bool(getattr(settings, "MEDIA_S3_BUCKET", ""))
    media_root = None if s3 else Path(settings.MEDIA_ROOT)
    manifest = {
        "created": stamp,
        "dump": dump.name,
        "media": None,
        "facts": facts(db, None, media_root),
    }
    if s3:
        bucket = settings.MEDIA_S3_BUCKET
        print(f"photos on S3 (bucket {bucket}): back the bucket up with its own tools", file=sys.stderr)
    else:
        archive = out / f"media-{stamp}.tar"
        with tarfile.open(archive, "w") as tar:  # JPEGs: compressing them again gains nothing
            if media_root.is_dir():
                tar.add(media_root, arcname=".")
        manifest["media"] = archive.name
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    counts = manifest["facts"]["counts"]
    print(f"backup in {out}: {dump.name} ({dump.stat().st_size} bytes), {manifest['media']}, {counts}, "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    return 0


def restore(args) -> int:
    settings = django_settings()
    db = dict(settings.DATABASES["default"])
    if args.database_url:
        import dj_database_url

        db = dj_database_url.parse(args.database_url)
    src = Path(args.source)
    manifest = json.loads((src / "manifest.json").read_text())
    media_root = Path(args.media_root)
    if media_root.exists() and any(media_root.iterdir()):
        print(f"refused: {media_root} is not empty", file=sys.stderr)
        return 2
    started = time.monotonic()
    with connect(db, args.maintenance_db) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone():
            print(f"refused: database {args.database} exists", file=sys.stderr)
            return 2
        conn.execute(f'CREATE DATABASE "{args.database}"')
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "-j", str(args.jobs), "-d", args.database,
         str(src / manifest["dump"])],
        env=libpq_env(db, args.database),
        check=True,
    )  # fmt: skip
    media_root.mkdir(parents=True, exist_ok=True)
    if manifest["media"]:
        with tarfile.open(src / manifest["media"]) as tar:
            tar.extractall(media_root, filter="data")
    print(f"restored into database {args.database} and {media_root} in {time.monotonic() - started:.1f} s")
    return 0


def verify(args) -> int:
    settings = django_settings()
    db = dict(settings.DATABASES["default"])
    if args.database_url:
        import dj_database_url

        db = dj_database_url.parse(args.database_url)
    expected = json.loads((Path(args.source) / "manifest.json").read_text())["facts"]
    media_root = Path(args.media_root) if args.media_root else None
    got = facts(db, args.database, media_root, sample=expected["case_sample"])
    problems = []
    if got["counts"] != expected["counts"]:
        problems.append(f"counts {got['counts']} != {expected['counts']}")
    if got["case_rows_md5"] != expected["case_rows_md5"]:
        problems.append("sampled case rows differ")
    if media_root is not None:
        # The restored files of the photos sampled at backup time, byte for byte.
        for name, digest in expected["photo_sha256"].items():
            path = media_root / name
            if not path.is_file() or sha256(path) != digest:
                problems.append(f"photo {name} missing or different")
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if not problems:
        print(f"verified: {got['counts']}, {len(expected['case_sample'])} case rows and "
              f"{len(expected['photo_sha256'])} photo files identical")  # fmt: skip
    return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create", help="dump the database and archive MEDIA_ROOT into --out")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=create)
    for name, fn in (("restore", restore), ("verify", verify)):
        p = sub.add_parser(name)
        p.add_argument("--from", dest="source", required=True, help="the backup directory (manifest.json)")
        p.add_argument("--database", required=True, help="the (new) database's name")
        p.add_argument("--media-root", required=name == "restore", help="the (new, empty) photo directory")
        p.add_argument("--database-url", default="", help="server to restore on (default: DATABASE_URL's)")
        p.set_defaults(fn=fn)
    sub.choices["restore"].add_argument("--jobs", type=int, default=2, help="pg_restore -j")
    sub.choices["restore"].add_argument("--maintenance-db", default="postgres", help="where CREATE DATABASE runs")
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
