"""Intake details the workflow tests do not pin down: what a stored photo keeps of the upload (no location,
no metadata, the same pixels when nothing had to change), the case insert (category rules, code
serials), and the planner setting the case reads use."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from gridmgmt import services
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, User
from gridmgmt.photos import MAX_EDGE, jpeg_metadata_strip, photo_prepare
from gridmgmt.selectors import joins_as_written
from tests.factories import CategoryFactory
from tests.world import world_build

R = User.Role
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture
def world(db):
    return world_build()


def _image(size=(96, 64)) -> Image.Image:
    img = Image.new("RGB", size)
    img.putdata([((x * 7) % 256, (y * 5) % 256, (x * y) % 256) for y in range(size[1]) for x in range(size[0])])
    return img


def _exif(*, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 13.0, 49.4), 3: "E", 4: (121.0, 32.0, 38.4)})
    return exif


def _jpeg_bytes(img: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def _with_segments(raw: bytes, *segments: bytes) -> bytes:
    """Insert extra marker segments right after SOI (before the frame header)."""
    return raw[:2] + b"".join(segments) + raw[2:]


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _upload(data: bytes, name: str = "p.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _markers(data: bytes) -> list[int]:
    """Marker codes of the header segments, up to and including SOS."""
    out, pos = [], 2
    while True:
        marker = data[pos + 1]
        out.append(marker)
        if marker == 0xDA:
            return out
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


# --- photos -------------------------------------------------------------------------------------------


def test_upright_jpeg_loses_gps_exif_xmp_and_comments_but_keeps_its_pixels():
    img = _image()
    raw = _jpeg_bytes(img, exif=_exif().tobytes(), comment=b"shot at home")
    raw = _with_segments(raw, _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
    content, width, height = photo_prepare(upload=_upload(raw))
    data = content.read()
    assert (width, height) == img.size
    assert not {0xE1, 0xFE} & set(_markers(data))  # no EXIF/XMP (APP1), no comment
    assert b"PhoneMaker" not in data and b"xmpmeta" not in data and b"shot at home" not in data
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG" and not stored.getexif()
    # Lossless: the very same image data (the entropy-coded scan is copied byte for byte).
    assert stored.tobytes() == Image.open(io.BytesIO(raw)).tobytes()
    assert data.endswith(raw[raw.rindex(b"\xff\xda") :])


def test_rotated_jpeg_is_turned_upright_and_loses_its_exif():
    img = _image((96, 64))
    content, width, height = photo_prepare(upload=_upload(_jpeg_bytes(img, exif=_exif(orientation=6).tobytes())))
    stored = Image.open(io.BytesIO(content.read()))
    assert (width, height) == (64, 96) == stored.size  # orientation 6: rotate 90° clockwise
    assert not stored.getexif()


def test_png_and_oversized_photos_are_reencoded_as_plain_jpeg():
    buf = io.BytesIO()
    _image((40, 30)).save(buf, "PNG")
    content, width, height = photo_prepare(upload=_upload(buf.getvalue(), "p.png"))
    assert Image.open(io.BytesIO(content.read())).format == "JPEG" and (width, height) == (40, 30)

    wide = _jpeg_bytes(Image.new("RGB", (MAX_EDGE + 200, 20), (10, 20, 30)), exif=_exif().tobytes())
    content, width, height = photo_prepare(upload=_upload(wide))
    stored = Image.open(io.BytesIO(content.read()))
    assert width == MAX_EDGE == stored.width and not stored.getexif()


def test_data_after_the_image_is_dropped():
    raw = _jpeg_bytes(_image())
    trailer = b"\xff\xd8" + _segment(0xE1, b"Exif\x00\x00second-image-gps") + b"\xff\xd9"
    content, _w, _h = photo_prepare(upload=_upload(raw + trailer))
    data = content.read()
    assert data == jpeg_metadata_strip(raw) and b"second-image-gps" not in data


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], "photo_invalid", id="truncated"),
        pytest.param(lambda raw: raw[:2] + b"\x00\x00" + raw[2:], "photo_invalid", id="broken-marker"),
        # A GIF header over JPEG bytes declares 20166×20166: refused by its size before anything else.
        pytest.param(lambda raw: b"GIF89a" + raw[6:], "photo_too_many_pixels", id="not-jpeg"),
    ],
)
def test_damaged_photos_are_refused(mangle, code):
    with pytest.raises(InvalidInput) as exc:
        photo_prepare(upload=_upload(mangle(_jpeg_bytes(_image()))))
    assert (exc.value.field, exc.value.code) == ("photos", code)


def test_strip_declines_what_it_does_not_understand():
    raw = _jpeg_bytes(_image())
    assert jpeg_metadata_strip(raw[:-2]) is None  # no EOI
    assert jpeg_metadata_strip(b"\x89PNG\r\n\x1a\n") is None
    progressive = _jpeg_bytes(_image(), progressive=True)
    stripped = jpeg_metadata_strip(progressive)
    assert stripped is not None and Image.open(io.BytesIO(stripped)).tobytes() == (
        Image.open(io.BytesIO(progressive)).tobytes()
    )


def test_report_with_a_bad_photo_writes_no_file(world, settings):
    lon, lat = world.centre()
    with pytest.raises(InvalidInput):
        services.case_report(
            source=Case.Source.PATROL,
            category_code="E0404",
            lon=lon,
            lat=lat,
            photos=[_upload(_jpeg_bytes(_image())), _upload(_jpeg_bytes(_image())[:500])],
        )
    assert not CasePhoto.objects.exists() and not list(settings.MEDIA_ROOT.glob("**/*.jpg"))


def test_report_stores_several_photos_and_links_them_to_the_event(world):
    lon, lat = world.centre()
    photos = [_upload(_jpeg_bytes(_image(), exif=_exif().tobytes())) for _ in range(3)]
    case, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, photos=photos)
    stored = list(case.photos.order_by("id"))
    assert len(stored) == 3 and all(p.kind == CasePhoto.Kind.BEFORE and p.width == 96 for p in stored)
    assert list(case.events.get().photos.order_by("id")) == stored
    for p in stored:
        with p.image.open("rb") as f:
            assert b"PhoneMaker" not in f.read()


# --- the case insert ----------------------------------------------------------------------------------


def test_inactive_category_and_major_class_are_refused_without_writing(world):
    lon, lat = world.centre()
    major = Category.objects.get(code="E04")
    CategoryFactory(code="E0499", name="停用", parent=major, is_active=False)
    for code in ("E0499", major.code, "NOPE"):
        with pytest.raises(InvalidInput) as exc:
            services.case_report(source=Case.Source.PATROL, category_code=code, lon=lon, lat=lat)
        assert (exc.value.field, exc.value.code) == ("category", "unknown_category")
    assert not Case.objects.exists() and not CaseEvent.objects.exists()


def test_category_defaults_and_explicit_urgency(world):
    lon, lat = world.centre()
    Category.objects.filter(pk=world.category.pk).update(default_urgency=Case.Urgency.URGENT)
    case, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    stored = Case.objects.get(pk=case.pk)
    assert case.urgency == stored.urgency == Case.Urgency.URGENT
    assert case.department_id == stored.department_id == world.category.default_department_id
    assert case.category_id == stored.category_id == world.category.id and case.code == stored.code
    normal, _ = services.case_report(
        source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, urgency=Case.Urgency.NORMAL
    )
    assert Case.objects.get(pk=normal.pk).urgency == Case.Urgency.NORMAL


def test_case_code_serial_keeps_every_digit_past_seven(world):
    lon, lat = world.centre()
    with connection.cursor() as cur:
        cur.execute("SELECT last_value, is_called FROM gridmgmt_case_code_seq")
        last, called = cur.fetchone()
        cur.execute("SELECT setval('gridmgmt_case_code_seq', 123456788)")
    try:
        case, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    finally:  # sequences ignore the test's rollback
        with connection.cursor() as cur:
            cur.execute("SELECT setval('gridmgmt_case_code_seq', %s, %s)", [last, called])
    assert case.code.endswith("123456789") and len(case.code) == 17


def test_idempotent_repeat_returns_the_stored_case(world):
    lon, lat = world.centre()
    kw = dict(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, idempotency_key="intake-1")
    first, created = services.case_report(**kw)
    again, created_again = services.case_report(**{**kw, "category_code": "NOPE"})  # not even re-validated
    assert created and not created_again and again.pk == first.pk and again.code == first.code
    assert Case.objects.count() == 1


# --- planner setting ------------------------------------------------------------------------------------


def _join_collapse_limit() -> str:
    with connection.cursor() as cur:
        cur.execute("SHOW join_collapse_limit")
        return cur.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_joins_as_written_is_scoped_to_its_block():
    default = _join_collapse_limit()
    with joins_as_written():
        assert _join_collapse_limit() == "1"
    assert _join_collapse_limit() == default
    with transaction.atomic():  # inside a caller's transaction too
        with joins_as_written():
            assert _join_collapse_limit() == "1"
        assert _join_collapse_limit() == default


# --- the detail read after an action -------------------------------------------------------------------


def test_case_detail_get_shows_what_the_orm_read_shows(world, rf):
    from rest_framework.request import Request

    from gridmgmt.api.serializers import CaseDetailSerializer
    from gridmgmt.selectors import case_detail_get

    lon, lat = world.centre()
    first, _ = services.case_report(
        source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, photos=[_upload(_jpeg_bytes(_image()))]
    )
    second, _ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    Case.objects.filter(pk=second.pk).update(team=world.team, duplicate_of=first, street=None, community=None)
    request = Request(rf.get("/"))
    request.user = world.users[R.DISPATCHER]
    related = ("category__parent", "cell", "team", "district", "street", "community", "responsibility_grid")
    for pk in (first.pk, second.pk):
        orm = Case.objects.select_related(*related, "department", "duplicate_of").prefetch_related("photos").get(pk=pk)
        expected = CaseDetailSerializer(orm, context={"request": request}).data
        with CaptureQueriesContext(connection) as queries:
            got = CaseDetailSerializer(case_detail_get(case_id=pk), context={"request": request}).data
        assert got == expected and len(queries) == 2  # the case with its related rows, then its photos
    assert expected["properties"]["team"]["code"] == world.team.code
    assert expected["properties"]["duplicate_of"] == first.code and expected["properties"]["street"] is None
    assert case_detail_get(case_id=0) is None
