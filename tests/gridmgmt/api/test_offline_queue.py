"""A patrol phone's offline queue as the server sees it (issue 10, "offline that holds"): an action sent
late counts at the time it was done on the phone (bounded by the server's clock), a replay of an action
already applied is answered as the first one was and writes nothing, and several photos — HEIC too — go
with a handling report."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pillow_heif import from_pillow

from gridmgmt import kpi, services
from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from gridmgmt.services.workflow import OCCURRED_AT_MAX_AGE, occurred_at_bound
from tests.gridmgmt.api.conftest import jpeg, report

R = User.Role
E = CaseEvent.Type
SH = ZoneInfo("Asia/Shanghai")
DISPATCHED = datetime(2026, 11, 24, 10, 0, tzinfo=SH)  # a Tuesday, in working hours
ACCEPTED = datetime(2026, 11, 24, 10, 10, tzinfo=SH)  # on the phone, offline
HANDLED = datetime(2026, 11, 24, 10, 40, tzinfo=SH)  # on the phone, offline
SYNCED = datetime(2026, 11, 24, 11, 30, tzinfo=SH)  # the network is back


def heic(name: str = "after.heic", size=(80, 60)) -> SimpleUploadedFile:
    """A real (small) HEIC file, as an iPhone sends it."""
    buf = io.BytesIO()
    from_pillow(Image.new("RGB", size, (40, 90, 160))).save(buf, quality=80)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/heic")


def dispatched_case(world) -> int:
    with time_machine.travel(DISPATCHED, tick=False):
        body = report(world, R.RESIDENT, photos=[jpeg()])
        services.case_file(case_id=body["id"], actor=world.users[R.DISPATCHER])
        services.case_dispatch(case_id=body["id"], actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    return body["id"]


def test_actions_sent_late_count_when_they_were_done_and_replays_write_nothing(world):
    case_id = dispatched_case(world)
    phone = world.client(R.PATROL)
    accept = {"occurred_at": ACCEPTED.isoformat(), "lon": "121.5", "lat": "31.2"}
    handle = {"occurred_at": HANDLED.isoformat(), "note": "已清运", "photos": [jpeg("a.jpg"), heic()]}
    with time_machine.travel(SYNCED, tick=False):
        first = phone.post(f"/api/cases/{case_id}/accept/", accept, headers={"Idempotency-Key": "k-accept"})
        assert first.status_code == 200, first.json()
        # The answer was lost: the phone sends the same request again.
        again = phone.post(f"/api/cases/{case_id}/accept/", accept, headers={"Idempotency-Key": "k-accept"})
        assert again.status_code == 200, again.json()
        assert again.json()["properties"]["status"] == "handling"
        handled = phone.post(
            f"/api/cases/{case_id}/handle/", {**handle, "idempotency_key": "k-handle"}, format="multipart"
        )
        assert handled.status_code == 200, handled.json()
        handle["photos"] = [jpeg("a.jpg"), heic()]
        replay = phone.post(
            f"/api/cases/{case_id}/handle/", {**handle, "idempotency_key": "k-handle"}, format="multipart"
        )
        assert replay.status_code == 200, replay.json()

    rows = list(
        CaseEvent.objects.filter(case_id=case_id, type__in=[E.ACCEPTED, E.HANDLED])
        .order_by("id")
        .values_list("type", "at", "recorded_at", "idempotency_key", "data__on_time")
    )
    assert rows == [
        (E.ACCEPTED, ACCEPTED, SYNCED, "k-accept", None),
        (E.HANDLED, HANDLED, SYNCED, "k-handle", True),
    ]
    case = Case.objects.get(pk=case_id)
    assert case.accepted_at == ACCEPTED
    photos = list(CasePhoto.objects.filter(case_id=case_id, kind=CasePhoto.Kind.AFTER).values_list("width", "height"))
    assert sorted(photos) == [(64, 48), (80, 60)]  # the HEIC became a JPEG
    for photo in CasePhoto.objects.filter(case_id=case_id, kind=CasePhoto.Kind.AFTER):
        with photo.image.open("rb") as f:
            assert f.read(3) == b"\xff\xd8\xff"
    # The KPIs count the handling at the time it was done: 30 minutes from 签收 to 处置反馈, on time.
    (row,) = kpi.kpi_compute(start=DISPATCHED, end=SYNCED + timedelta(hours=1))
    assert (row.handled, row.handled_on_time, row.avg_handling_hours) == (1, 1, 0.5)


def test_someone_elses_key_is_refused(world):
    case_id = dispatched_case(world)
    with time_machine.travel(SYNCED, tick=False):
        ok = world.client(R.PATROL).post(f"/api/cases/{case_id}/accept/", {"idempotency_key": "shared"})
        assert ok.status_code == 200
        other = world.client(R.DISPATCHER).post(
            f"/api/cases/{case_id}/send-back/", {"reason": "不归我们", "idempotency_key": "shared"}
        )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert CaseEvent.objects.filter(case_id=case_id, type=E.SENT_BACK).count() == 0


def test_a_time_from_the_future_or_before_the_last_event_is_bounded(world):
    case_id = dispatched_case(world)
    with time_machine.travel(SYNCED, tick=False):
        ahead = (SYNCED + timedelta(hours=3)).isoformat()
        r = world.client(R.PATROL).post(f"/api/cases/{case_id}/accept/", {"occurred_at": ahead})
        assert r.status_code == 200
        bad = world.client(R.PATROL).post(f"/api/cases/{case_id}/handle/", {"occurred_at": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "occurred_at"
    accepted = CaseEvent.objects.get(case_id=case_id, type=E.ACCEPTED)
    assert (accepted.at, accepted.recorded_at) == (SYNCED, None)  # not in the future: the server's time


@pytest.mark.parametrize(
    ("occurred", "previous", "expected"),
    [
        (HANDLED, DISPATCHED, HANDLED),  # as the phone said
        (SYNCED + timedelta(minutes=5), DISPATCHED, SYNCED),  # a clock ahead: now
        (DISPATCHED - timedelta(minutes=5), DISPATCHED, DISPATCHED),  # before the case's last event
        (SYNCED - timedelta(days=5), None, SYNCED - OCCURRED_AT_MAX_AGE),  # older than 72 h
        (None, DISPATCHED, SYNCED),  # sent at once
    ],
)
def test_occurred_at_bound(occurred, previous, expected):
    assert occurred_at_bound(occurred_at=occurred, now=SYNCED, previous_at=previous) == expected


def test_a_report_sent_late_counts_from_when_it_was_made(world):
    with time_machine.travel(SYNCED, tick=False):
        body = report(world, R.PATROL, occurred_at=ACCEPTED.isoformat(), idempotency_key="k-report")
    case = Case.objects.get(pk=body["id"])
    event = CaseEvent.objects.get(case=case, type=E.REPORTED)
    assert (case.reported_at, event.at, event.recorded_at) == (ACCEPTED, ACCEPTED, SYNCED)
