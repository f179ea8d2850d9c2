"""Photos through the authorizing view (gridmgmt/media.py): whoever may see the case sees its photos, anyone
sees what the public view shows, everything else — and every malformed path — is a 404, DEBUG or not."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from gridmgmt.models import Case, CasePhoto, Category, User
from tests.factories import CaseFactory, CategoryFactory, DistrictFactory, UserFactory
from tests.world import World, world_build

pytestmark = pytest.mark.django_db

R, K = User.Role, CasePhoto.Kind


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


def photo_add(case: Case, kind: str = K.BEFORE) -> CasePhoto:
    photo = CasePhoto(case=case, kind=kind, width=8, height=6)
    photo.image.save("p.jpg", ContentFile(_jpeg_bytes()), save=True)
    return photo


def url(photo: CasePhoto) -> str:
    assert photo.image.url.startswith("/media/cases/")
    return photo.image.url


def get(path: str, user: User | None = None, method: str = "get"):
    client = Client()
    if user is not None:
        client.force_login(user)
    return getattr(client, method)(path)


@pytest.fixture
def world(settings) -> World:
    settings.DEBUG = False  # photos are served whatever DEBUG says
    return world_build()


def case_make(world: World, **kw) -> Case:
    cell = world.cells[4]
    return CaseFactory(cell=cell, district=world.district, category=world.category, **kw)


def test_staff_in_scope_sees_every_kind_and_the_file_itself(world):
    case = case_make(world, source=Case.Source.HOTLINE)
    photos = [photo_add(case, kind) for kind in (K.BEFORE, K.AFTER, K.CHECK)]
    in_area = UserFactory(username="disp-in", role=R.DISPATCHER, area=world.district)
    for user in (world.users[R.DISPATCHER], in_area):  # unrestricted, and bound to the case's district
        for photo in photos:
            response = get(url(photo), user)
            assert response.status_code == 200, (user, photo.kind)
            assert b"".join(response.streaming_content) == Path(photo.image.path).read_bytes()
            assert response["Content-Type"] == "image/jpeg"
            assert response["Cache-Control"] == "private, max-age=3600"
            assert "X-Accel-Redirect" not in response


def test_staff_out_of_scope_gets_404(world):
    case = case_make(world, source=Case.Source.HOTLINE)
    photo = photo_add(case)
    elsewhere = DistrictFactory(code="990777", name="别的区")
    outsider = UserFactory(username="disp-out", role=R.DISPATCHER, area=elsewhere)
    assert get(url(photo), outsider).status_code == 404


def test_team_member_sees_team_cases_only(world):
    mine = case_make(world, source=Case.Source.HOTLINE, team=world.team)
    theirs = case_make(world, source=Case.Source.HOTLINE, team=world.other_team)
    mine_photo, theirs_photo = photo_add(mine, K.CHECK), photo_add(theirs, K.CHECK)
    patrol = world.users[R.PATROL]
    assert get(url(mine_photo), patrol).status_code == 200
    assert get(url(theirs_photo), patrol).status_code == 404
    assert get(url(mine_photo), world.users["other_patrol"]).status_code == 404


def test_resident_sees_own_report_not_anothers(world):
    resident = world.users[R.RESIDENT]
    own = photo_add(case_make(world, source=Case.Source.PATROL, reporter=resident), K.CHECK)
    other = photo_add(case_make(world, source=Case.Source.PATROL), K.CHECK)
    assert get(url(own), resident).status_code == 200
    assert get(url(other), resident).status_code == 404


def test_anonymous_sees_what_the_public_view_shows(world):
    resident = world.users[R.RESIDENT]
    public = case_make(world, source=Case.Source.RESIDENT, reporter=resident)
    before, after, check = (photo_add(public, kind) for kind in (K.BEFORE, K.AFTER, K.CHECK))
    assert get(url(before)).status_code == 200  # a resident's own words and photo, written for the public
    assert get(url(after)).status_code == 200
    assert get(url(check)).status_code == 404  # inspectors' photos are never public

    hotline = case_make(world, source=Case.Source.HOTLINE)
    h_before, h_after = photo_add(hotline, K.BEFORE), photo_add(hotline, K.AFTER)
    assert get(url(h_before)).status_code == 404  # the caller's material stays private
    assert get(url(h_after)).status_code == 200
    Case.objects.filter(pk=hotline.pk).update(published_at=hotline.reported_at)  # staff published it
    assert get(url(h_before)).status_code == 200


def test_anonymous_gets_404_for_a_sensitive_category(world):
    sensitive = CategoryFactory(code="E0999", name="敏感类别", is_sensitive=True)
    case = CaseFactory(cell=world.cells[4], district=world.district, category=sensitive, source=Case.Source.RESIDENT)
    photo = photo_add(case, K.AFTER)
    assert get(url(photo)).status_code == 404
    assert get(url(photo), world.users[R.DISPATCHER]).status_code == 200
    assert Category.objects.get(code="E0999").is_sensitive


def test_a_shared_file_is_seen_when_any_of_its_photos_may_be(world):
    hidden = photo_add(case_make(world, source=Case.Source.HOTLINE), K.CHECK)
    shown = CasePhoto.objects.create(
        case=case_make(world, source=Case.Source.HOTLINE), kind=K.AFTER, image=hidden.image.name
    )
    assert get(url(shown)).status_code == 200  # the demo's photo pool: one file, many cases


def test_missing_file_is_404(world):
    photo = photo_add(case_make(world, source=Case.Source.HOTLINE))
    os.remove(photo.image.path)
    assert get(url(photo), world.users[R.DISPATCHER]).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/media/../gridmgmt/settings.py",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/cases/../../../etc/passwd",
        "/media//etc/passwd",
        "/media/cases/%5c..%5c..%5cetc%5cpasswd",
        "/media/./cases/x.jpg",
        "/media/cases//x.jpg",
        "/media/",
        "/media/nope.jpg",
    ],
)
def test_malformed_and_traversal_paths_are_404(world, path):
    assert get(path, world.users[R.ADMIN]).status_code == 404


def test_traversal_through_a_stored_name_or_a_symlink_is_404(world, settings, tmp_path):
    case = case_make(world, source=Case.Source.HOTLINE)
    admin = world.users[R.ADMIN]
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(_jpeg_bytes())
    # A row whose name climbs out of MEDIA_ROOT (never written by the app, but a restore or an admin could).
    CasePhoto.objects.create(case=case, kind=K.BEFORE, image="cases/../../secret.jpg")
    assert get("/media/cases/../../secret.jpg", admin).status_code == 404
    # A symlink inside MEDIA_ROOT pointing outside it.
    link_dir = Path(settings.MEDIA_ROOT) / "cases"
    link_dir.mkdir(parents=True, exist_ok=True)
    (link_dir / "link.jpg").symlink_to(secret)
    CasePhoto.objects.create(case=case, kind=K.BEFORE, image="cases/link.jpg")
    assert get("/media/cases/link.jpg", admin).status_code == 404


def test_behind_nginx_the_view_only_decides(world, settings):
    settings.MEDIA_ACCEL_REDIRECT = True
    photo = photo_add(case_make(world, source=Case.Source.HOTLINE))
    response = get(url(photo), world.users[R.DISPATCHER])
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected-media/" + photo.image.name
    assert response.content == b""
    assert get(url(photo)).status_code == 404  # the decision is still made here
    assert "X-Accel-Redirect" not in get(url(photo))


def test_only_safe_methods(world):
    photo = photo_add(case_make(world, source=Case.Source.HOTLINE, reporter=None), K.AFTER)
    assert get(url(photo), method="head").status_code == 200
    assert get(url(photo), method="post").status_code == 405
