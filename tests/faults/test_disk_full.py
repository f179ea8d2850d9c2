"""The media disk full: a real, tiny tmpfs as MEDIA_ROOT, filled to the brim. A report whose photos do not fit
is a clear 507 in the user's language, and leaves no case, no event, no photo row and no file — not even
the photo that did fit before the disk ran out."""

import io
import os
import random
import subprocess
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from tests.gridmgmt.api.conftest import api_world_build

pytestmark = pytest.mark.faults
R = User.Role
SIZE_KB = 256


@pytest.fixture
def tiny_disk(settings, tmp_path):
    """A 256 KiB tmpfs mounted as MEDIA_ROOT (needs root; unmounted afterwards)."""
    mount = tmp_path / "media"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_KB}k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    settings.MEDIA_ROOT = mount
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def noisy_jpeg(edge: int, seed: int) -> SimpleUploadedFile:
    """A JPEG that does not compress: ~edge² × 0.6 bytes, kept byte for byte by the lossless path."""
    rng = random.Random(seed)
    img = Image.frombytes("RGB", (edge, edge), bytes(rng.getrandbits(8) for _ in range(edge * edge * 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return SimpleUploadedFile(f"p{seed}.jpg", buf.getvalue(), content_type="image/jpeg")


def fill(mount: Path, leave: int) -> None:
    """Write ballast until only about `leave` bytes are free."""
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    (mount / "ballast").write_bytes(b"\0" * max(0, free - leave))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "ballast")


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_full_media_disk_is_a_507_and_leaves_no_row_and_no_file(tiny_disk, language):
    world = api_world_build()
    small, big = noisy_jpeg(64, 1), noisy_jpeg(200, 2)  # ~9 KB fits, ~60 KB does not
    fill(tiny_disk, leave=32 * 1024)
    lon, lat = world.centre()
    response = world.client(R.PATROL).post(
        "/api/cases/",
        {"category": "E0404", "lon": lon, "lat": lat, "photos": [small, big], "idempotency_key": str(uuid.uuid4())},
        format="multipart",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 507, response.content
    body = response.json()
    assert body["code"] == "storage_full"
    expected = "照片存储空间已满" if language == "zh-hans" else "no room"
    assert expected in body["detail"], body
    assert (Case.objects.count(), CaseEvent.objects.count(), CasePhoto.objects.count()) == (0, 0, 0)
    assert files_under(tiny_disk) == []

    # Room again (the operator grew the disk): the same report goes through, photos and all.
    (tiny_disk / "ballast").unlink()
    small.seek(0)
    big.seek(0)
    again = world.client(R.PATROL).post(
        "/api/cases/", {"category": "E0404", "lon": lon, "lat": lat, "photos": [small, big]}, format="multipart"
    )
    assert again.status_code == 201, again.content
    assert (Case.objects.count(), CasePhoto.objects.count(), len(files_under(tiny_disk))) == (1, 2, 2)
