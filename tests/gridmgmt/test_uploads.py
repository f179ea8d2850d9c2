"""Uploads with bounded cost (issue 9): the declared size is checked before decoding (a pixel bomb is a 400,
not 500 MB of memory), a 50-megapixel phone JPEG is decoded at reduced scale within a bounded peak, a report
carries at most MAX_PHOTOS photos on every channel, the lossless JPEG path keeps only the segments it knows,
and no path leaves a photo file behind when its transaction rolls back."""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django.test import Client
from PIL import Image, ImageDraw

from gridmgmt import services
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, CasePhoto, Open311Client, User
from gridmgmt.photos import MAX_EDGE, MAX_PHOTOS, jpeg_metadata_strip, photo_files_guard, photo_prepare, photos_store
from tests.gridmgmt.api.conftest import api_world_build, jpeg

R = User.Role
ROOT = Path(__file__).resolve().parents[2]
GPS = b"GPS 31.2304N 121.4737E"


@pytest.fixture
def world(db):
    return api_world_build()


def _upload(data: bytes, name: str = "p.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def png_bomb(width: int = 8000, height: int = 8000) -> bytes:
    """A valid RGB PNG of width×height black pixels (192 MB decoded), ~190 KB on disk, made row by row."""
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _jpeg(size=(96, 64), **save) -> bytes:
    img = Image.new("RGB", size, (30, 90, 150))
    ImageDraw.Draw(img).rectangle([10, 10, 40, 30], fill=(220, 40, 40))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def _header_markers(data: bytes) -> list[int]:
    out, pos = [], 2
    while True:
        marker = data[pos + 1]
        out.append(marker)
        if marker == 0xDA:
            return out
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


def _media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- bombs and big photos --------------------------------------------------------------------------------------


def test_png_bomb_is_refused_by_its_declared_size():
    bomb = png_bomb()
    assert len(bomb) < 300_000
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(bomb, "bomb.png"))
    assert (exc.value.status, exc.value.field, exc.value.code) == (400, "photos", "photo_too_many_pixels")


def test_png_just_above_the_full_decode_limit_is_refused():
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(png_bomb(4001, 4000), "b.png"))
    assert exc.value.code == "photo_too_many_pixels"


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # as gridmgmt.photos sets it
def test_jpeg_declaring_more_than_pillows_limit_is_an_error_not_a_warning():
    # 13000×13000 = 169 M pixels: past Image.MAX_IMAGE_PIXELS, under Pillow's 2× error threshold, where
    # Pillow only warns. A tiny file: the frame header says so, nothing is decoded.
    raw = bytearray(_jpeg())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", 13000, 13000)
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(bytes(raw)))
    assert exc.value.code == "photo_too_many_pixels"


def test_progressive_jpeg_is_not_decoded_above_the_full_decode_limit():
    # libjpeg buffers a progressive image's whole coefficient array: no draft discount for it.
    big = Image.new("RGB", (5000, 4000), (10, 20, 30))
    buf = io.BytesIO()
    big.save(buf, "JPEG", progressive=True)
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(buf.getvalue()))
    assert exc.value.code == "photo_too_many_pixels"


def test_api_refuses_a_pixel_bomb_with_400_and_writes_nothing(world, settings):
    lon, lat = world.centre()
    bomb = SimpleUploadedFile("bomb.png", png_bomb(), content_type="image/png")
    response = world.client(R.PATROL).post(
        "/api/cases/", {"category": "E0404", "lon": lon, "lat": lat, "photos": [bomb]}, format="multipart"
    )
    assert response.status_code == 400, response.content
    assert "photo_too_many_pixels" in response.content.decode()
    assert (Case.objects.count(), CasePhoto.objects.count(), _media_files(settings)) == (0, 0, [])


_MEASURE = textwrap.dedent(
    """
    import json, os, resource, sys, time
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")
    import django
    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from gridmgmt.errors import InvalidInput
    from gridmgmt.photos import photo_prepare

    raw = open(sys.argv[1], "rb").read()
    upload = SimpleUploadedFile("p", raw)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        content, width, height = photo_prepare(upload=upload)
        result = {"ok": True, "width": width, "height": height, "bytes": len(content.read())}
    except InvalidInput as exc:
        result = {"ok": False, "code": exc.code}
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps(result))
    """
)


def _measure(path: Path) -> dict:
    """photo_prepare on one file in a fresh interpreter: the growth of its peak RSS (Pillow's pixel buffers
    are C allocations tracemalloc does not see) and the time taken."""
    env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "true")}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_bomb_refused_quickly_without_allocating(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    result = _measure(path)
    assert result["ok"] is False and result["code"] == "photo_too_many_pixels"
    assert result["peak_mb"] < 20, result  # decoding it would take 192 MB (+ copies)
    assert result["seconds"] < 0.5, result


def test_peak_memory_50_megapixel_jpeg_is_accepted_within_a_bound(tmp_path):
    path = tmp_path / "phone.jpg"
    script = (
        "import sys; from PIL import Image, ImageDraw; img = Image.new('RGB', (8660, 5776), (90, 120, 150)); "
        "d = ImageDraw.Draw(img); [d.rectangle([i, 0, i + 200, 5776], fill=(200, i % 255, 60)) "
        "for i in range(0, 8660, 400)]; img.save(sys.argv[1], 'JPEG', quality=85)"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    result = _measure(path)
    assert result["ok"] is True, result
    assert (result["width"], result["height"]) == (MAX_EDGE, round(5776 * MAX_EDGE / 8660)), result
    # Decoded at half scale (4330×2888, 37.5 MB as RGB) instead of 150 MB at full size.
    assert result["peak_mb"] < 100, result


# --- the lossless path keeps only what it knows ---------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        pytest.param(0xE9, id="APP9"),
        pytest.param(0xF0, id="JPG0"),
        pytest.param(0xFD, id="JPG13"),
        pytest.param(0xE2, id="APP2-ICC"),
        pytest.param(0xE0, id="APP0-not-JFIF"),
        pytest.param(0xEE, id="APP14-not-Adobe"),
    ],
)
def test_gps_hidden_in_an_unknown_segment_does_not_survive(marker):
    raw = _jpeg()
    prefix = b"ICC_PROFILE\x00\x01\x01" if marker == 0xE2 else b""
    sneaky = raw[:2] + _segment(marker, prefix + GPS) + raw[2:]
    content, width, height = photo_prepare(upload=_upload(sneaky))
    assert (width, height) == (96, 64)
    data = content.read()
    assert GPS not in data
    assert set(_header_markers(data)) <= {0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xDA, 0xE0, 0xEE}
    assert Image.open(io.BytesIO(data)).tobytes() == Image.open(io.BytesIO(raw)).tobytes()  # still lossless


def test_lossless_strip_keeps_jfif_and_adobe_and_the_tables():
    raw = _jpeg()
    adobe = _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01")
    stripped = jpeg_metadata_strip(raw[:2] + adobe + raw[2:])
    markers = _header_markers(stripped)
    assert markers[0] == 0xEE and 0xE0 in markers and {0xC0, 0xC4, 0xDB, 0xDA} <= set(markers)


def test_unknown_segment_between_progressive_scans_is_reencoded_away():
    raw = _jpeg(progressive=True)
    second_sos = raw.index(b"\xff\xda", raw.index(b"\xff\xda") + 2)
    # Metadata after the first scan, before the next scan's header: the strip gives up, the re-encode drops it.
    sneaky = raw[:second_sos] + _segment(0xE9, GPS) + raw[second_sos:]
    assert jpeg_metadata_strip(sneaky) is None
    content, _w, _h = photo_prepare(upload=_upload(sneaky))
    data = content.read()
    assert GPS not in data and Image.open(io.BytesIO(data)).size == (96, 64)
    # A JPGn there is not even a JPEG libjpeg reads: refused, nothing kept.
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(raw[:second_sos] + _segment(0xF5, GPS) + raw[second_sos:]))
    assert exc.value.code == "photo_invalid"


# --- photos per report, on every channel ----------------------------------------------------------------------


def test_photo_count_cap_in_the_service(world, settings):
    lon, lat = world.centre()
    with pytest.raises(InvalidInput) as exc:
        services.case_report(
            source=Case.Source.HOTLINE,
            category_code="E0404",
            lon=lon,
            lat=lat,
            photos=[jpeg(f"{i}.jpg") for i in range(MAX_PHOTOS + 1)],
        )
    assert (exc.value.status, exc.value.code) == (400, "too_many_photos")
    assert (Case.objects.count(), _media_files(settings)) == (0, [])


def test_photo_count_cap_on_the_api(world, settings):
    lon, lat = world.centre()
    photos = [jpeg(f"{i}.jpg") for i in range(MAX_PHOTOS + 1)]
    response = world.client(R.PATROL).post(
        "/api/cases/", {"category": "E0404", "lon": lon, "lat": lat, "photos": photos}, format="multipart"
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "photos"
    assert (Case.objects.count(), _media_files(settings)) == (0, [])
    ok = world.client(R.PATROL).post(
        "/api/cases/",
        {"category": "E0404", "lon": lon, "lat": lat, "photos": [jpeg(f"{i}.jpg") for i in range(MAX_PHOTOS)]},
        format="multipart",
    )
    assert ok.status_code == 201, ok.content
    assert CasePhoto.objects.count() == MAX_PHOTOS


def test_photo_count_cap_on_open311(world, settings):
    app = Open311Client(name="app")
    key = app.key_issue()
    app.save()
    lon, lat = world.centre()
    body = {
        "api_key": key,
        "service_code": "E0404",
        "lat": str(lat),
        "long": str(lon),
        "attribute[urgency]": "normal",
        "description": "media cap",
        "media": [jpeg(f"{i}.jpg") for i in range(MAX_PHOTOS + 1)],
    }
    response = Client().post("/open311/v2/requests.json", body)
    assert response.status_code == 400, response.content
    assert str(MAX_PHOTOS) in response.json()[0]["description"]
    assert (Case.objects.count(), _media_files(settings)) == (0, [])


# --- no orphan files ------------------------------------------------------------------------------------------


def test_report_whose_event_insert_fails_leaves_no_file(world, settings, monkeypatch):
    def fail(**kwargs):
        raise DatabaseError("event insert failed")

    monkeypatch.setattr("gridmgmt.services.intake.event_append", fail)
    lon, lat = world.centre()
    with pytest.raises(DatabaseError):
        services.case_report(
            source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, photos=[jpeg(), jpeg("b.jpg")]
        )
    assert (Case.objects.count(), CasePhoto.objects.count(), _media_files(settings)) == (0, 0, [])


def test_transition_whose_event_insert_fails_leaves_no_file(world, settings, monkeypatch):
    lon, lat = world.centre()
    case, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    dispatcher = world.users[R.DISPATCHER]
    services.case_file(case_id=case.pk, actor=dispatcher)
    services.case_dispatch(case_id=case.pk, actor=dispatcher, team_id=world.team.pk)
    patrol = world.users[R.PATROL]
    services.case_accept(case_id=case.pk, actor=patrol)

    def fail(**kwargs):
        raise DatabaseError("event insert failed")

    monkeypatch.setattr("gridmgmt.services.workflow.event_append", fail)
    with pytest.raises(DatabaseError):
        services.case_handle(case_id=case.pk, actor=patrol, note="清理完毕", photos=[jpeg()])
    assert (CasePhoto.objects.count(), _media_files(settings)) == (0, [])
    assert CaseEvent.objects.filter(case=case, type=CaseEvent.Type.HANDLED).count() == 0


def test_photos_are_stored_only_under_the_guard(world):
    lon, lat = world.centre()
    case, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    prepared = [photo_prepare(upload=jpeg())]
    with pytest.raises(RuntimeError, match="photo_files_guard"):
        photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
    with photo_files_guard():
        (photo,) = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
    assert Path(photo.image.path).exists()
