"""GET /api/kpis/?format=csv|xlsx: the JSON's figures as a file, the same numbers (gridmgmt.export renders
the API's response; nothing is recomputed), and bad formats as a 400 with the field."""

import csv
import io

import openpyxl
import pytest
from django.utils import timezone

from gridmgmt.export import KPI_COLUMNS
from gridmgmt.models import User
from tests.gridmgmt.api.conftest import report

R = User.Role
KEYS = [c.key for c in KPI_COLUMNS]


@pytest.fixture
def filed_world(world):
    first = report(world, R.PATROL)
    report(world, R.PATROL)
    world.client(R.DISPATCHER).post(f"/api/cases/{first['id']}/file/", {"note": "属实"}, format="json")
    return world


def get(world, who=R.DISPATCHER, **params):
    today = timezone.localdate().isoformat()
    return world.client(who).get("/api/kpis/", {"start": today, "end": today, **params})


def test_xlsx_by_street_holds_the_json_numbers(filed_world):
    body = get(filed_world, group_by="street").json()
    response = get(filed_world, group_by="street", format="xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="kpis-street-' in response["Content-Disposition"]
    ws = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert list(rows[0]) == [str(c.label) for c in KPI_COLUMNS]
    expected = [{k: None if row[k] == "" else row[k] for k in KEYS} for row in body["results"]]  # "" → empty cell
    assert [dict(zip(KEYS, r, strict=True)) for r in rows[1:]] == expected
    assert [r[KEYS.index("received")] for r in rows[1:]] == [2]  # the world has no street: one key=None row
    assert [r[KEYS.index("filed")] for r in rows[1:]] == [1]


def test_csv_holds_the_json_numbers_with_a_bom(filed_world):
    body = get(filed_world, group_by="day").json()
    response = get(filed_world, group_by="day", format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    header, *lines = list(csv.reader(io.StringIO(text[1:])))
    assert header[:4] == ["编号", "名称", "受理数", "立案数"]
    (row,) = body["results"]
    (line,) = lines
    assert line[:4] == [row["key"], row["name"], "2", "1"]
    assert line[KEYS.index("on_time_closure_rate")] == ""  # None in the JSON: an empty cell


def test_person_and_department_groups(filed_world):
    by_person = {r["name"]: r for r in get(filed_world, group_by="person").json()["results"]}
    assert (by_person["patrol"]["received"], by_person["dispatcher"]["filed"]) == (2, 1)
    (dept,) = get(filed_world, group_by="department").json()["results"]
    assert (dept["name"], dept["received"]) == ("城管执法队", 2)


@pytest.mark.parametrize("fmt", ["pdf", "XLSX", "x" * 300])
def test_unknown_format_is_400_with_the_field(world, fmt):
    response = get(world, format=fmt)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "format"
    assert "csv, xlsx" in body["detail"]


def test_a_bad_period_asked_as_xlsx_answers_json(world):
    response = get(world, start="2026-13-01", format="xlsx")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == "start"


def test_export_is_scoped_like_the_json(filed_world):
    response = get(filed_world, who="far_dispatcher", format="csv")
    (line,) = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))[1:]
    assert line[KEYS.index("received")] == "0"


def test_area_narrows_the_figures_and_the_file(filed_world):
    (row,) = get(filed_world, area=filed_world.district.pk).json()["results"]
    assert (row["received"], row["filed"]) == (2, 1)
    (other,) = get(filed_world, area=filed_world.other_district.pk).json()["results"]
    assert other["received"] == 0
    response = get(filed_world, area="x")
    assert response.status_code == 400 and response.json()["field"] == "area"
