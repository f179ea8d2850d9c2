"""Two dispatchers dispatch one case at the same moment: the row lock lets exactly one through."""

import threading

import pytest
from django.db import connection

from gridmgmt.models import Case, CaseEvent, User
from tests.gridmgmt.api.conftest import api_world_build, report

R = User.Role


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatches_one_wins_one_409():
    world = api_world_build()
    case_id = report(world)["id"]
    world.client(R.DISPATCHER).post(f"/api/cases/{case_id}/file/")
    version = Case.objects.get(pk=case_id).version
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, tuple[int, dict]] = {}

    def dispatch(who: str, team_id: int) -> None:
        try:
            client = world.client(who)
            barrier.wait()
            response = client.post(
                f"/api/cases/{case_id}/dispatch/", {"team": team_id, "expected_version": version}, format="json"
            )
            results[who] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [
        threading.Thread(target=dispatch, args=(R.DISPATCHER, world.team.id)),
        threading.Thread(target=dispatch, args=("dispatcher2", world.other_team.id)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    codes = sorted(status for status, _ in results.values())
    assert codes == [200, 409], results
    loser = next(body for status, body in results.values() if status == 409)
    assert loser["code"] in {"transition_not_allowed", "stale"}
    winner = next(body for status, body in results.values() if status == 200)
    case = Case.objects.get(pk=case_id)
    assert case.team.code == winner["properties"]["team"]["code"]
    assert case.version == version + 1
    assert CaseEvent.objects.filter(case_id=case_id, type=CaseEvent.Type.DISPATCHED).count() == 1
