"""Photos on S3-compatible object storage (gridmgmt/mediastorage.py) against a real S3-protocol server:
s3rver from npm (`make s3rver`, under var/node/), started on a free 127.0.0.1 port for this module. The
photo is written to the bucket, its URL is still the authorizing view's, the view checks access exactly as
for a local file and answers with a short-lived presigned redirect (or streams it, MEDIA_S3_PROXY), and a
report that fails after its photos were written leaves no object behind."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from gridmgmt.models import Case, CasePhoto, User
from tests.factories import CaseFactory, DistrictFactory, UserFactory
from tests.gridmgmt.test_media import photo_add
from tests.live import free_port
from tests.world import World, world_build

ROOT = Path(__file__).resolve().parents[2]
S3RVER = ROOT / "var" / "node" / "node_modules" / ".bin" / "s3rver"
R, K = User.Role, CasePhoto.Kind
BUCKET = "photos"
KEYS = {"aws_access_key_id": "S3RVER", "aws_secret_access_key": "S3RVER"}  # s3rver's fixed credentials
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if not S3RVER.exists():
        pytest.skip("s3rver not installed: `make s3rver` (part of `make test`)")
    data = tmp_path_factory.mktemp("s3rver")
    port = free_port()
    proc = subprocess.Popen(
        [str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", BUCKET, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/{BUCKET}", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("s3rver did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def on_s3(s3, settings):
    settings.MEDIA_S3_BUCKET = BUCKET
    settings.MEDIA_S3_PROXY = False
    settings.DEBUG = False
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "gridmgmt.mediastorage.PhotoS3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3,
                "region_name": "us-east-1",
                "access_key": KEYS["aws_access_key_id"],
                "secret_key": KEYS["aws_secret_access_key"],
                "addressing_style": "path",
                "signature_version": "s3v4",
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 60,
                "file_overwrite": False,
            },
        },
    }
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", **KEYS)
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def objects(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def get(path: str, user: User | None = None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(path)


@pytest.fixture
def world() -> World:
    return world_build()


def test_photo_goes_to_the_bucket_and_is_served_by_presigned_redirect_after_the_access_check(on_s3, world):
    case = CaseFactory(cell=world.cells[4], district=world.district, category=world.category,
                       source=Case.Source.HOTLINE)  # fmt: skip
    photo = photo_add(case)
    assert objects(on_s3) == [photo.image.name]
    assert photo.image.url == f"/media/{photo.image.name}"  # the view's URL, never the bucket's
    stored = on_s3.get_object(Bucket=BUCKET, Key=photo.image.name)["Body"].read()

    response = get(photo.image.url, world.users[R.DISPATCHER])
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.path == f"/{BUCKET}/{photo.image.name}"
    assert query["X-Amz-Expires"] == ["60"] and "X-Amz-Signature" in query
    assert fetch(response["Location"]) == (200, stored)

    # The access rules are gridmgmt.access's, as for a local file: out of scope or anonymous, a 404.
    outsider = UserFactory(username="disp-out", role=R.DISPATCHER, area=DistrictFactory(code="990777", name="别区"))
    assert get(photo.image.url, outsider).status_code == 404
    assert get(photo.image.url).status_code == 404  # a hotline caller's photo is not public


def test_proxy_mode_streams_the_object_through_the_app(on_s3, world, settings):
    settings.MEDIA_S3_PROXY = True
    case = CaseFactory(cell=world.cells[4], district=world.district, category=world.category,
                       source=Case.Source.HOTLINE)  # fmt: skip
    photo = photo_add(case)
    response = get(photo.image.url, world.users[R.DISPATCHER])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == on_s3.get_object(Bucket=BUCKET, Key=photo.image.name)["Body"].read()
    assert not default_storage.exists("cases/none.jpg")
    assert get("/media/cases/none.jpg", world.users[R.DISPATCHER]).status_code == 404


def test_a_report_whose_transaction_fails_leaves_no_object(on_s3, world):
    from django.db import transaction

    from gridmgmt.photos import photo_files_guard, photos_prepare, photos_store
    from tests.gridmgmt.api.conftest import jpeg

    case = CaseFactory(cell=world.cells[4], district=world.district, category=world.category)
    prepared = photos_prepare(uploads=[jpeg("a.jpg"), jpeg("b.jpg")])
    with pytest.raises(RuntimeError), photo_files_guard(), transaction.atomic():
        photos_store(case=case, prepared=prepared, kind=K.AFTER)
        assert len(objects(on_s3)) == 2
        raise RuntimeError("a later step failed")
    assert objects(on_s3) == []
    assert CasePhoto.objects.count() == 0
