"""Issue 9, negative tests: tracking tokens cannot be forged or moved between cases, and idempotency keys are
one client's, never a shared namespace (no blocking another channel's key, no reading another's case)."""

import hashlib

from django.core import signing

from gridmgmt.models import Case, Category, User
from tests.gridmgmt.api.test_public import close_case, public_report

R, S = User.Role, Case.Status
PHONE_A = {"X-Device-Id": "device-a-5b0f1c2e-8d7e-4f6a-9b3c"}
PHONE_B = {"X-Device-Id": "device-b-0c9d8e7f-6a5b-4c3d-2e1f"}


def report(world, headers=None, **fields):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon + 0.0001, "lat": lat + 0.0001, "reporter_phone": "13700001111"}
    data.update(fields)
    return world.client(None, **(headers or {})).post("/api/public/reports/", data, format="multipart")


def old_token(code: str) -> str:
    """The token as old main made it: a Signer signature of the code under the committed SECRET_KEY."""
    return signing.Signer(salt="gridmgmt.api.case-tracking").signature(code)


def test_forged_token_computed_the_old_way_is_refused(world):
    Category.objects.filter(code="E0404").update(is_sensitive=True)  # only the token shows it
    code = public_report(world).json()["code"]
    close_case(world, Case.objects.get(code=code).pk)
    forged = old_token(code)
    anonymous = world.client(None)
    assert anonymous.get(f"/api/public/cases/{code}/?token={forged}").status_code == 404
    rated = anonymous.post(f"/api/public/cases/{code}/rate/", {"token": forged, "satisfaction": 1})
    assert rated.status_code in (403, 404)
    reopened = anonymous.post(f"/api/public/cases/{code}/reopen/", {"token": forged, "reason": "x"})
    assert reopened.status_code in (403, 404)
    assert Case.objects.get(code=code).satisfaction is None


def test_token_is_random_stored_hashed_and_bound_to_its_case(world):
    a = public_report(world).json()
    b = public_report(world).json()
    assert a["tracking_token"] != b["tracking_token"] and len(a["tracking_token"]) >= 32
    case_a, case_b = Case.objects.get(code=a["code"]), Case.objects.get(code=b["code"])
    assert case_a.tracking_token_hash == hashlib.sha256(a["tracking_token"].encode()).hexdigest()
    assert a["tracking_token"] not in str(Case.objects.filter(pk=case_a.pk).values().get())
    assert a["tracking_token"] != old_token(a["code"])
    close_case(world, case_b.pk)
    anonymous = world.client(None)
    # A's token opens nothing of B's.
    wrong = anonymous.post(f"/api/public/cases/{b['code']}/rate/", {"token": a["tracking_token"], "satisfaction": 1})
    assert wrong.status_code == 403 and wrong.json()["code"] == "bad_token"
    assert Case.objects.get(pk=case_b.pk).satisfaction is None
    right = anonymous.post(f"/api/public/cases/{b['code']}/rate/", {"token": b["tracking_token"], "satisfaction": 5})
    assert right.status_code == 200


def test_case_without_token_accepts_none(world):
    code = public_report(world).json()["code"]
    Case.objects.filter(code=code).update(tracking_token_hash="")  # a case from before tokens were stored
    close_case(world, Case.objects.get(code=code).pk)
    for token in ["", old_token(code), hashlib.sha256(b"").hexdigest()]:
        rated = world.client(None).post(f"/api/public/cases/{code}/rate/", {"token": token, "satisfaction": 1})
        assert rated.status_code in (400, 403)


def test_same_key_from_another_device_is_another_report(world):
    first = report(world, PHONE_A, idempotency_key="draft-1")
    again = report(world, PHONE_A, idempotency_key="draft-1")
    other = report(world, PHONE_B, idempotency_key="draft-1")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["code"] == first.json()["code"]
    # The other device learns nothing of the first case: neither its code nor a token for it.
    assert other.json()["code"] != first.json()["code"]
    assert first.json()["code"] not in other.content.decode()
    assert Case.objects.count() == 2


def test_replay_gets_a_fresh_token_and_voids_the_first(world):
    first = report(world, PHONE_A, idempotency_key="draft-2").json()
    again = report(world, PHONE_A, idempotency_key="draft-2").json()
    assert again["code"] == first["code"] and again["tracking_token"] != first["tracking_token"]
    code = first["code"]
    close_case(world, Case.objects.get(code=code).pk)
    stale = world.client(None).post(
        f"/api/public/cases/{code}/rate/", {"token": first["tracking_token"], "satisfaction": 1}
    )
    assert stale.status_code == 403
    fresh = world.client(None).post(
        f"/api/public/cases/{code}/rate/", {"token": again["tracking_token"], "satisfaction": 4}
    )
    assert fresh.status_code == 200


def test_anonymous_key_without_device_is_scoped_to_the_address(world):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon, "lat": lat}
    one = world.client(None).post("/api/public/reports/", data, REMOTE_ADDR="198.51.100.7", HTTP_IDEMPOTENCY_KEY="k-9")
    two = world.client(None).post("/api/public/reports/", data, REMOTE_ADDR="203.0.113.9", HTTP_IDEMPOTENCY_KEY="k-9")
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["code"] != two.json()["code"]


def test_reserved_channel_prefixes_are_refused_from_the_web(world):
    for key in ["hotline:12345-0001", "camera:abc", "open311:x", "demo:1:2", "HOTLINE:12345-0001"]:
        anonymous = report(world, PHONE_A, idempotency_key=key)
        assert (anonymous.status_code, anonymous.json()["code"]) == (400, "reserved_key"), key
        staff = world.client(R.PATROL, **{"Idempotency-Key": key}).post(
            "/api/cases/", {"category": "E0404", "lon": world.centre()[0], "lat": world.centre()[1]}
        )
        assert (staff.status_code, staff.json()["code"]) == (400, "reserved_key"), key
    assert Case.objects.count() == 0


def test_staff_keys_are_per_account(world):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon, "lat": lat}
    mine = world.client(R.PATROL, **{"Idempotency-Key": "tablet-0001"}).post("/api/cases/", data)
    theirs = world.client(R.INSPECTOR, **{"Idempotency-Key": "tablet-0001"}).post("/api/cases/", data)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["properties"]["code"] != theirs.json()["properties"]["code"]
    scopes = set(Case.objects.values_list("idempotency_scope", flat=True))
    assert scopes == {f"api:user:{world.users[R.PATROL].pk}", f"api:user:{world.users[R.INSPECTOR].pk}"}
