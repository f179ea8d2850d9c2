"""Street loudspeakers (issue 12, item 5): a real HTTP receiver on 127.0.0.1 stands in for each IP speaker and
records what it was sent — the literal text (JSON or form) or a WAV synthesised by espeak-ng; a failing and a
silent speaker give a clear error and a logged failed call; who may call; the case timeline shows the call."""

from __future__ import annotations

import io
import json
import shutil
import time
import urllib.parse
import wave

import pytest
from django.contrib.gis.geos import Point

from geo.models import Speaker
from geo.services import speaker_locate
from gridmgmt.models import Case, CaseEvent, Category, SpeakerCall, User
from tests.gridmgmt.api.conftest import api_world_build, case_of, report
from tests.receivers import Heard, Receiver

pytestmark = pytest.mark.django_db
R = User.Role
PRESET = "请立即驶离,违停将被处罚"


@pytest.fixture
def world(settings):
    settings.SPEAKER_TIMEOUT_SECONDS = 0.5
    w = api_world_build()
    Category.objects.filter(pk=w.category.pk).update(speaker_preset=PRESET)
    return w


def speaker(world, receiver: Receiver, *, code: str, cell: int = 4, gateway=Speaker.Gateway.TEXT_JSON, dx=0.0):
    """A speaker near the centre of cell `cell` (dx degrees east), posting to `receiver`."""
    c = world.cells[cell].center
    s = Speaker(code=code, name=f"喇叭{code}", location=Point(c.x + dx, c.y, srid=4326), gateway=gateway)
    s.url = f"{receiver.url}/speakers/{code}"
    speaker_locate(speaker=s).save()
    return s


def call(world, who=R.DISPATCHER, **body):
    return world.client(who).post("/api/speaker-calls/", body, format="json")


def json_of(heard: Heard) -> dict:
    assert heard.content_type.startswith("application/json")
    return json.loads(heard.body)


# --- placing ------------------------------------------------------------------------------------------------


def test_a_speaker_is_located_to_its_cell_and_listed_as_geojson_in_scope(world, receivers):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-1", cell=2)
    assert s.cell_id == world.cells[2].pk and s.district_id == world.district.pk
    body = world.client(R.DISPATCHER).get("/api/speakers/").json()
    assert body["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in body["features"]] == ["SPK-1"]
    assert body["features"][0]["properties"]["cell"] == world.cells[2].code
    # Another district's dispatcher, a patrol member and a resident see none.
    for who in ("far_dispatcher", R.PATROL, R.RESIDENT):
        assert world.client(who).get("/api/speakers/").json()["features"] == [], who


# --- text and audio reach the speaker -----------------------------------------------------------------------


def test_the_preset_reaches_the_speakers_of_the_cases_cell_as_literal_text(world, receivers):
    near, far = receivers(2)
    speaker(world, near, code="SPK-NEAR")
    speaker(world, far, code="SPK-FAR", dx=0.01)  # ~950 m east: not near the case's cell
    case = case_of(report(world))
    response = call(world, case=case.pk, preset=world.category.code, repeat=3)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["outcome"] == "delivered" and body["text"] == PRESET and body["repeat"] == 3
    assert body["case_code"] == case.code
    assert [x["speaker"] for x in body["results"]] == ["SPK-NEAR"]
    assert far.heard == []
    (heard,) = near.heard
    assert heard.path == "/speakers/SPK-NEAR"
    assert json_of(heard) == {"text": PRESET, "repeat": 3, "speaker": "SPK-NEAR"}


def test_typed_text_as_a_form_to_a_chosen_speaker(world, receivers):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-FORM", gateway=Speaker.Gateway.TEXT_FORM)
    response = call(world, speaker=s.pk, text="  请勿在此处吸烟  ")
    assert response.status_code == 201, response.json()
    (heard,) = r.heard
    assert heard.content_type.startswith("application/x-www-form-urlencoded")
    form = urllib.parse.parse_qs(heard.body.decode())
    assert form == {"text": ["请勿在此处吸烟"], "repeat": ["1"], "speaker": ["SPK-FORM"]}
    logged = SpeakerCall.objects.get()
    assert logged.case is None and logged.cell_id == world.cells[4].pk and logged.actor.username == R.DISPATCHER
    assert [x.code for x in logged.speakers.all()] == ["SPK-FORM"]
    assert not CaseEvent.objects.filter(type=CaseEvent.Type.SPEAKER_CALLED).exists()  # no case named


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")
def test_an_audio_speaker_gets_a_valid_wav_synthesised_offline(world, receivers):
    (r,) = receivers(1)
    speaker(world, r, code="SPK-WAV", gateway=Speaker.Gateway.AUDIO_WAV)
    once = call(world, cell=world.cells[4].pk, preset=world.category.code, repeat=1)
    twice = call(world, cell=world.cells[4].pk, preset=world.category.code, repeat=2)
    assert once.status_code == twice.status_code == 201
    lengths = []
    for heard in r.heard:
        assert heard.content_type == "audio/wav"
        assert heard.body[:4] == b"RIFF" and heard.body[8:12] == b"WAVE"
        with wave.open(io.BytesIO(heard.body)) as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() > 8000
            lengths.append(w.getnframes() / w.getframerate())
    assert lengths[0] > 1.0  # a dozen syllables of speech
    assert lengths[1] > 2 * lengths[0]  # played twice, with a pause between


def test_a_call_about_a_cell_reaches_every_active_speaker_near_it_nearest_first(world, receivers):
    a, b, off = receivers(3)
    speaker(world, a, code="SPK-A", cell=4)
    speaker(world, b, code="SPK-B", cell=5)  # the neighbouring cell, ~100 m away
    Speaker.objects.filter(pk=speaker(world, off, code="SPK-OFF", cell=4).pk).update(is_active=False)
    body = call(world, cell=world.cells[4].pk, text="注意安全").json()
    assert [x["speaker"] for x in body["results"]] == ["SPK-A", "SPK-B"]
    assert len(a.heard) == len(b.heard) == 1 and off.heard == []


# --- failures -----------------------------------------------------------------------------------------------


def test_a_failing_speaker_is_a_clear_error_and_a_logged_failed_call(world, receivers):
    (r,) = receivers(1, status=500)
    speaker(world, r, code="SPK-500")
    case = case_of(report(world))
    response = call(world, case=case.pk, preset=world.category.code)
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "speaker_failed"
    assert body["detail"] == "喊话失败,没有喇叭收到:喇叭SPK-500: 喇叭返回错误 HTTP 500"
    assert body["call"]["outcome"] == "failed"
    logged = SpeakerCall.objects.get()
    assert logged.outcome == "failed" and logged.results[0]["status"] == 500
    event = case.events.get(type=CaseEvent.Type.SPEAKER_CALLED)
    assert event.data["outcome"] == "failed" and event.data["delivered"] == 0
    # In English, the same failure in English.
    english = world.client(R.DISPATCHER, **{"Accept-Language": "en"})
    detail = english.post("/api/speaker-calls/", {"case": case.pk, "text": "hello"}, format="json").json()["detail"]
    assert "HTTP 500" in detail and "喊话" not in detail


def test_a_silent_speaker_times_out_promptly_and_the_others_still_hear(world, receivers):
    (slow,) = receivers(1, delay=3)
    (ok,) = receivers(1)
    speaker(world, slow, code="SPK-SLOW")
    speaker(world, ok, code="SPK-OK", cell=5)
    started = time.monotonic()
    response = call(world, cell=world.cells[4].pk, text="请勿逗留")
    took = time.monotonic() - started
    assert took < 2.0  # the 0.5 s timeout bounds the request, not the speaker's 3 s
    assert response.status_code == 201
    body = response.json()
    assert body["outcome"] == "partial"
    assert body["detail"] == "1/2 个喇叭已送达;未送达:喇叭SPK-SLOW: 喇叭在 0.5 秒内没有应答"
    assert SpeakerCall.objects.get().outcome == "partial"


def test_an_unreachable_speaker(world, receivers):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-GONE")
    Speaker.objects.filter(pk=s.pk).update(url="http://127.0.0.1:9/speakers/SPK-GONE")  # discard port: refused
    response = call(world, speaker=s.pk, text="测试")
    assert response.status_code == 502
    assert response.json()["detail"].endswith("无法连接喇叭")


# --- who may call, and about what ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", [R.PATROL, R.RESIDENT, R.INSPECTOR, R.WALL])
def test_only_dispatchers_and_shift_leaders_may_call(world, receivers, who):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-1")
    case = case_of(report(world))
    for body in ({"case": case.pk, "preset": world.category.code}, {"speaker": s.pk, "text": "走开"}):
        response = call(world, who, **body)
        assert response.status_code == 403, (who, response.json())
        assert response.json()["code"] == "role_not_allowed"
    assert r.heard == [] and not SpeakerCall.objects.exists()
    anonymous = world.client(None).post("/api/speaker-calls/", {"speaker": s.pk, "text": "x"}, format="json")
    assert anonymous.status_code in (401, 403)


@pytest.mark.parametrize("who", [R.DISPATCHER, R.SHIFT_LEADER, R.ADMIN])
def test_callers(world, receivers, who):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-1")
    assert call(world, who, speaker=s.pk, text="请注意").status_code == 201
    url = f"/api/cases/{case_of(report(world)).pk}/"
    assert world.client(who).get(url).json()["properties"]["speaker_call"] is True
    assert world.client(R.INSPECTOR).get(url).json()["properties"]["speaker_call"] is False


def test_out_of_scope_speakers_cases_and_closed_cases_are_refused(world, receivers):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-1")
    case = case_of(report(world))
    assert call(world, "far_dispatcher", speaker=s.pk, text="x").status_code == 404
    assert call(world, "far_dispatcher", case=case.pk, text="x").status_code == 404
    Case.objects.filter(pk=case.pk).update(status=Case.Status.CLOSED)
    closed = call(world, case=case.pk, text="x")
    assert closed.status_code == 409 and "已结案" in closed.json()["detail"]
    assert r.heard == [] and not SpeakerCall.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x", "preset": "E0404"}, "text"),  # both
        ({}, "text"),  # neither
        ({"preset": "E9999"}, "preset"),  # no such preset
        ({"text": "x", "repeat": 6}, "repeat"),  # bounded
        ({"text": "x" * 201}, "text"),
    ],
)
def test_bad_calls_are_400_and_send_nothing(world, receivers, body, field):
    (r,) = receivers(1)
    s = speaker(world, r, code="SPK-1")
    response = call(world, speaker=s.pk, **body)
    assert response.status_code == 400 and response.json()["field"] == field, response.json()
    assert r.heard == []


def test_no_speaker_near_the_cell_says_so(world):
    response = call(world, cell=world.cells[0].pk, text="x")
    assert response.status_code == 404 and "没有可用的喇叭" in response.json()["detail"]


# --- the timeline and the log -------------------------------------------------------------------------------


def test_the_case_timeline_shows_the_call(world, receivers):
    (r,) = receivers(1)
    speaker(world, r, code="SPK-1")
    case = case_of(report(world))
    before = case.status, case.version
    assert call(world, case=case.pk, preset=world.category.code, repeat=2).status_code == 201
    timeline = world.client(R.DISPATCHER).get(f"/api/cases/{case.pk}/events/").json()["results"]
    last = timeline[-1]
    assert last["type"] == "speaker_called" and last["type_label"] == "喇叭喊话"
    assert last["note"] == PRESET and last["actor"] == R.DISPATCHER
    assert last["data"]["speakers"] == ["SPK-1"] and last["data"]["outcome"] == "delivered"
    assert last["from_status"] == last["to_status"] == case.status
    case.refresh_from_db()
    assert (case.status, case.version) == before  # a call changes no state
    # The case's speakers, as the desk shows them before sending.
    near = world.client(R.DISPATCHER).get(f"/api/cases/{case.pk}/speakers/").json()
    assert [f["properties"]["code"] for f in near["features"]] == ["SPK-1"]
    assert near["features"][0]["properties"]["distance_m"] == 0.0
    # The call log, scoped like cases.
    log = world.client(R.SHIFT_LEADER).get(f"/api/speaker-calls/?case={case.pk}").json()["results"]
    assert [(x["text"], x["outcome"], x["actor"]) for x in log] == [(PRESET, "delivered", R.DISPATCHER)]
    assert world.client("far_dispatcher").get("/api/speaker-calls/").json()["results"] == []
    assert world.client(R.PATROL).get("/api/speaker-calls/").json()["results"] == []
