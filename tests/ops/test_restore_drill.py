"""`make restore-drill` (also part of the normal suite): data with photos in a database of its own, backed up
with scripts/backup.py (pg_dump custom format + tar of MEDIA_ROOT), restored into a fresh database and an
empty media directory, and compared: case, event, photo and feed counts, a checksum of sampled case rows
(geometry included) and the sampled photo files byte for byte. A tampered restore is caught."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from gridmgmt import services
from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from tests.gridmgmt.api.conftest import api_world_build, jpeg
from tests.live import database_url

ROOT = Path(__file__).resolve().parents[2]
R = User.Role
pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backup.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.fixture
def restored_name():
    from django.db import connection

    name = f"restoredrill_{uuid.uuid4().hex[:8]}"
    yield name
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"], port=s["PORT"] or None, user=s["USER"], dbname="postgres",
                         password=s["PASSWORD"] or None, autocommit=True) as conn:  # fmt: skip
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_restores_into_a_fresh_database_and_media_directory(settings, tmp_path, restored_name):
    from django.db import connection

    world = api_world_build()
    lon, lat = world.centre()
    for i in range(6):
        photos = [jpeg(f"p{i}-{j}.jpg", color=(i * 40, j * 60, 90)) for j in range(i % 3)]
        services.case_report(
            source="resident", category_code="E0404", lon=lon + i * 1e-4, lat=lat, description=f"drill {i}",
            photos=photos,
        )  # fmt: skip
    counts = (Case.objects.count(), CaseEvent.objects.count(), CasePhoto.objects.count())
    assert counts == (6, 6, 6)

    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    env.pop("TEST_DB_NAME", None)
    backup = tmp_path / "backup"
    started = time.monotonic()
    made = run("create", "--out", str(backup), env=env)
    assert made.returncode == 0, made.stderr
    assert sorted(p.suffix for p in backup.iterdir()) == [".dump", ".json", ".tar"]

    media = tmp_path / "restored-media"
    done = run("restore", "--from", str(backup), "--database", restored_name, "--media-root", str(media), env=env)
    assert done.returncode == 0, done.stderr
    checked = run("verify", "--from", str(backup), "--database", restored_name, "--media-root", str(media), env=env)
    assert checked.returncode == 0, checked.stderr
    assert "'cases': 6, 'events': 6, 'photos': 6" in checked.stdout
    assert "6 case rows and 6 photo files identical" in checked.stdout
    print("\n" + made.stdout + done.stdout + checked.stdout, f"{time.monotonic() - started:.1f} s in all")

    # Never over an existing database or into a non-empty directory.
    again = run("restore", "--from", str(backup), "--database", restored_name, "--media-root", str(tmp_path / "x"),
                env=env)  # fmt: skip
    assert again.returncode == 2 and "exists" in again.stderr

    # The comparison notices a restore that lost a photo or a row.
    next(p for p in media.rglob("*.jpg")).unlink()
    with psycopg.connect(database_url(connection.settings_dict).replace("postgis://", "postgresql://")
                         .rsplit("/", 1)[0] + f"/{restored_name}", autocommit=True) as conn:  # fmt: skip
        conn.execute("UPDATE gridmgmt_case SET description = 'changed' WHERE id = (SELECT max(id) FROM gridmgmt_case)")
    bad = run("verify", "--from", str(backup), "--database", restored_name, "--media-root", str(media), env=env)
    assert bad.returncode == 1
    assert "sampled case rows differ" in bad.stderr and "missing or different" in bad.stderr
