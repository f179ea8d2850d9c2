"""Integrity (issue 9): the admin cannot change a case's workflow fields or its evidence (read-only: moves go
through the services, which write the event); photos and their links to events are append-only in the
database; a merge locks both cases in id order and raises the target's supporters with F()."""

from __future__ import annotations

import threading

import pytest
from django.contrib import admin
from django.db import IntegrityError, connection, transaction

from gridmgmt import services
from gridmgmt.errors import DomainError
from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from tests.world import jpeg, world_build

R = User.Role
S = Case.Status

WORKFLOW_FIELDS = (
    "status",
    "level",
    "team",
    "department",
    "category",
    "urgency",
    "point",
    "cell",
    "district",
    "deadline_at",
    "due_at",
    "warn_at",
    "dispatch_deadline_at",
    "stage_started_at",
    "closed_at",
    "satisfaction",
    "supporters",
    "duplicate_of",
    "extension_pending",
    "version",
)


@pytest.fixture
def world(db):
    return world_build()


@pytest.fixture
def superuser_client(world, client):
    # Not pytest-django's admin_client: the world already has a (non-staff) user called "admin".
    client.force_login(User.objects.create_superuser("root", "root@example.invalid", "x"))
    return client


def _report(world, **kw) -> Case:
    lon, lat = world.centre()
    case, _ = services.case_report(
        source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, reporter=world.users[R.PATROL], **kw
    )
    return case


# --- the admin ------------------------------------------------------------------------------------------------


def test_case_admin_shows_workflow_fields_read_only_and_refuses_changes(world, superuser_client):
    case = _report(world, photos=[jpeg()])
    model_admin = admin.site._registry[Case]
    request = superuser_client.get("/admin/").wsgi_request
    assert set(WORKFLOW_FIELDS) <= set(model_admin.get_readonly_fields(request, case))
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, case)
    assert not model_admin.has_delete_permission(request, case)

    page = superuser_client.get(f"/admin/gridmgmt/case/{case.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in WORKFLOW_FIELDS:
        assert f'name="{name}"' not in html, name
    assert 'name="photos-0-image"' not in html and 'name="photos-0-DELETE"' not in html

    response = superuser_client.post(
        f"/admin/gridmgmt/case/{case.pk}/change/",
        {"status": S.CLOSED, "supporters": 99, "satisfaction": 5, "team": world.team.pk},
    )
    assert response.status_code == 403
    case.refresh_from_db()
    assert (case.status, case.supporters, case.satisfaction, case.team_id) == (S.REPORTED, 0, None, None)
    assert superuser_client.get("/admin/gridmgmt/case/add/").status_code == 403
    assert superuser_client.post(f"/admin/gridmgmt/case/{case.pk}/delete/", {"post": "yes"}).status_code == 403
    assert list(case.events.values_list("type", flat=True)) == [CaseEvent.Type.REPORTED]


def test_photo_inline_is_read_only(world, superuser_client):
    inline = admin.site._registry[Case].inlines[0]
    assert inline.model is CasePhoto
    request = superuser_client.get("/admin/").wsgi_request
    instance = inline(Case, admin.site)
    assert not instance.has_add_permission(request, None)
    assert not instance.has_change_permission(request, None)
    assert not instance.has_delete_permission(request, None)


# --- evidence is append-only ----------------------------------------------------------------------------------


def test_casephoto_update_and_delete_are_refused(world):
    case = _report(world, photos=[jpeg()])
    photo = case.photos.get()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CasePhoto.objects.filter(pk=photo.pk).update(image="cases/elsewhere.jpg")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CasePhoto.objects.filter(pk=photo.pk).update(kind=CasePhoto.Kind.AFTER)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CasePhoto.objects.filter(pk=photo.pk).delete()
    photo.refresh_from_db()
    assert photo.kind == CasePhoto.Kind.BEFORE


def test_event_photo_links_are_append_only(world):
    case = _report(world, photos=[jpeg()])
    event = case.events.get()
    link = CaseEvent.photos.through
    assert link.objects.filter(caseevent=event).count() == 1
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        event.photos.clear()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        link.objects.filter(caseevent=event).update(casephoto=case.photos.get())
    assert event.photos.count() == 1


# --- merge under concurrency ----------------------------------------------------------------------------------


def _run_together(*calls) -> list:
    """Run the calls in threads released at once; each result is the return value or the exception."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # the result under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_merges_a_into_b_and_b_into_a_one_is_refused(attempt):
    world = world_build()
    a, b = _report(world), _report(world)
    dispatcher = world.users[R.DISPATCHER]
    results = _run_together(
        lambda: services.case_merge(case_id=a.pk, actor=dispatcher, into_id=b.pk),
        lambda: services.case_merge(case_id=b.pk, actor=dispatcher, into_id=a.pk),
    )
    refused = [r for r in results if isinstance(r, DomainError)]
    merged = [r for r in results if isinstance(r, Case)]
    assert (len(merged), len(refused)) == (1, 1), results
    statuses = sorted(Case.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True))
    assert statuses.count(S.CLOSED) == 1
    survivor = Case.objects.exclude(status=S.CLOSED).get(pk__in=[a.pk, b.pk])
    assert survivor.supporters == 1 and survivor.duplicate_of_id is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_supports_and_merge_keep_the_exact_count():
    world = world_build()
    dup, target = _report(world), _report(world)
    services.case_support(case_id=dup.pk, actor=None)
    services.case_support(case_id=target.pk, actor=None)
    dispatcher = world.users[R.DISPATCHER]
    on_target, on_dup = 6, 3
    calls = [lambda: services.case_merge(case_id=dup.pk, actor=dispatcher, into_id=target.pk)]
    calls += [lambda: services.case_support(case_id=target.pk, actor=None)] * on_target
    calls += [lambda: services.case_support(case_id=dup.pk, actor=None)] * on_dup
    results = _run_together(*calls)
    assert isinstance(results[0], Case), results[0]
    # A +1 on the duplicate either came before the merge (and moved with it) or found it closed (refused).
    dup_refused = sum(isinstance(r, DomainError) for r in results[1 + on_target :])
    assert all(isinstance(r, Case) for r in results[1 : 1 + on_target]), results
    dup.refresh_from_db()
    target.refresh_from_db()
    assert dup.supporters == 1 + on_dup - dup_refused
    # target: its own 1 + every concurrent +1 + the merge itself (1) + the duplicate's supporters at merge time
    assert target.supporters == 1 + on_target + 1 + dup.supporters
    assert target.events.filter(type=CaseEvent.Type.SUPPORTED).count() == 1 + on_target
