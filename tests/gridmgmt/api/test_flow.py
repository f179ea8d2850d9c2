"""The whole case cycle through the REST API, for a case from every intake channel: one event per step."""

import pytest

from gridmgmt.models import Case, CaseEvent, User
from tests.gridmgmt.api.conftest import jpeg, report

R, S, E = User.Role, Case.Status, CaseEvent.Type

# Source → (who reports it, who does the return visit / rating).
SOURCES = {
    Case.Source.PATROL: (R.PATROL, R.DISPATCHER),
    Case.Source.INSPECTOR: (R.INSPECTOR, R.DISPATCHER),
    Case.Source.CAMERA: (R.DISPATCHER, R.DISPATCHER),
    Case.Source.RESIDENT: (R.RESIDENT, R.RESIDENT),
    Case.Source.HOTLINE: (R.DISPATCHER, R.SHIFT_LEADER),
    Case.Source.ASSIGNED: (R.SHIFT_LEADER, R.DISPATCHER),
}


def post(world, who, case_id, action, data=None, fmt="json", **headers):
    response = world.client(who, **headers).post(f"/api/cases/{case_id}/{action}/", data or {}, format=fmt)
    assert response.status_code == 200, (action, response.json())
    return response.json()


@pytest.mark.parametrize("source", list(SOURCES))
def test_full_cycle_by_api_for_every_source(world, source):
    reporter, rater = SOURCES[source]
    body = report(world, reporter, source=source, photos=[jpeg()], reporter_phone="13912345678")
    case_id = body["id"]
    assert body["properties"]["source"] == source
    assert body["properties"]["status"] == S.REPORTED
    assert len(body["properties"]["code"]) == 15
    assert body["properties"]["photos"][0]["url"].startswith("http://testserver/media/")

    post(world, R.DISPATCHER, case_id, "file", {"note": "属实"})
    version = Case.objects.get(pk=case_id).version
    dispatched = post(world, R.DISPATCHER, case_id, "dispatch", {"team": world.team.id}, **{"If-Match": f'"{version}"'})
    assert dispatched["properties"]["team"]["code"] == "PT-A"
    assert dispatched["properties"]["light"] == "green"
    handling = post(world, R.PATROL, case_id, "accept", {"lon": 121.5005, "lat": 31.2305})
    assert handling["properties"]["status"] == S.HANDLING
    assert handling["properties"]["deadline_at"]
    post(world, R.PATROL, case_id, "handle", {"note": "已清理", "photos": [jpeg()]}, fmt="multipart")
    rework = post(world, R.INSPECTOR, case_id, "check", {"passed": False, "note": "仍有残留"})
    assert (rework["properties"]["status"], rework["properties"]["rework_count"]) == (S.HANDLING, 1)
    post(world, R.PATROL, case_id, "handle", {"note": "已彻底清理", "photos": [jpeg(color=(1, 2, 3))]}, fmt="multipart")
    post(world, R.INSPECTOR, case_id, "check", {"passed": "true", "photos": [jpeg()]}, fmt="multipart")
    close = {"note": "结案"}
    if source == Case.Source.HOTLINE:
        close["hotline_reply"] = "您反映的问题已处理完毕。"
    closed = post(world, R.SHIFT_LEADER, case_id, "close", close)
    assert closed["properties"]["status"] == S.CLOSED
    post(world, rater, case_id, "rate", {"satisfaction": 5})
    archived = post(world, R.SHIFT_LEADER, case_id, "archive")
    assert archived["properties"]["status"] == S.ARCHIVED
    assert archived["properties"]["satisfaction"] == 5

    expected = [
        E.REPORTED,
        E.FILED,
        E.DISPATCHED,
        E.ACCEPTED,
        E.HANDLED,
        E.CHECK_FAILED,
        E.HANDLED,
        E.CHECK_PASSED,
        E.CLOSED,
        E.RATED,
        E.ARCHIVED,
    ]
    assert list(CaseEvent.objects.filter(case_id=case_id).order_by("id").values_list("type", flat=True)) == expected

    # The timeline endpoint tells the same story, in order.
    timeline = world.client(R.SHIFT_LEADER).get(f"/api/cases/{case_id}/events/").json()
    assert [e["type"] for e in timeline["results"]] == expected
    assert timeline["results"][2]["data"]["team"] == "PT-A"


def test_hotline_close_without_reply_is_refused(world):
    case_id = report(world, R.DISPATCHER, source=Case.Source.HOTLINE)["id"]
    case = Case.objects.get(pk=case_id)
    Case.objects.filter(pk=case_id).update(status=S.CHECKED)
    response = world.client(R.SHIFT_LEADER).post(f"/api/cases/{case_id}/close/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "hotline_reply"
    assert Case.objects.get(pk=case_id).version == case.version


def test_branches_send_back_arbitrate_extension_park_resume(world):
    case_id = report(world)["id"]
    post(world, R.DISPATCHER, case_id, "file")
    post(world, R.DISPATCHER, case_id, "dispatch", {"team": world.team.id})
    sent = post(world, R.PATROL, case_id, "send-back", {"reason": "不属于本队责任网格"})
    assert sent["properties"]["status"] == S.SENT_BACK
    post(world, R.SHIFT_LEADER, case_id, "arbitrate", {"team": world.team.id, "note": "责任网格属甲队"})
    post(world, R.PATROL, case_id, "accept")
    before = Case.objects.get(pk=case_id).deadline_at
    pending = post(world, R.PATROL, case_id, "extension-request", {"hours": 2, "reason": "需协调物业"})
    assert pending["properties"]["extension_pending"] is True
    approved = post(world, R.SHIFT_LEADER, case_id, "extension-decide", {"approve": True})
    assert Case.objects.get(pk=case_id).deadline_at > before
    assert approved["properties"]["extension_pending"] is False
    parked = post(world, R.SHIFT_LEADER, case_id, "park", {"reason": "待规划部门认定"})
    assert (parked["properties"]["status"], parked["properties"]["light"]) == (S.PARKED, "none")
    resumed = post(world, R.SHIFT_LEADER, case_id, "resume")
    assert resumed["properties"]["status"] == S.HANDLING
    types = list(CaseEvent.objects.filter(case_id=case_id).order_by("id").values_list("type", flat=True))
    assert types == [
        E.REPORTED,
        E.FILED,
        E.DISPATCHED,
        E.SENT_BACK,
        E.ARBITRATED,
        E.ACCEPTED,
        E.EXTENSION_REQUESTED,
        E.EXTENSION_APPROVED,
        E.PARKED,
        E.RESUMED,
    ]


def test_void_self_handle_merge_and_support(world):
    voided = report(world)["id"]
    assert post(world, R.DISPATCHER, voided, "void", {"reason": "重复上报"})["properties"]["status"] == S.VOIDED

    fixed = report(world)["id"]
    body = post(world, R.PATROL, fixed, "self-handle", {"note": "顺手清理", "photos": [jpeg()]}, fmt="multipart")
    assert (body["properties"]["status"], body["properties"]["team"]["code"]) == (S.HANDLED, "PT-A")

    target = report(world)
    duplicate = report(world)["id"]
    supported = post(world, R.DISPATCHER, target["id"], "support", {"note": "我也看到了"})
    assert supported["properties"]["supporters"] == 1
    merged = post(world, R.DISPATCHER, duplicate, "merge", {"into": target["properties"]["code"]})
    assert merged["properties"]["status"] == S.CLOSED
    assert merged["properties"]["duplicate_of"] == target["properties"]["code"]
    assert Case.objects.get(pk=target["id"]).supporters == 2


@pytest.mark.parametrize("who", [R.DISPATCHER, R.RESIDENT])
def test_report_response_is_the_case_as_its_detail_reads_it(world, who):
    # The 201 body is built from the case intake just wrote, not read back: it must be what GET shows.
    body = report(world, who, photos=[jpeg(), jpeg(color=(9, 9, 9))], reporter_phone="13912345678", address="浦东大道")
    detail = world.client(who).get(f"/api/cases/{body['id']}/")
    assert detail.status_code == 200
    assert body == detail.json()
    assert len(body["properties"]["photos"]) == 2
    assert body["properties"]["category"]["major"] == "E04"
    assert body["properties"]["department"] == "城管执法队"
