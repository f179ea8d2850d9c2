"""The standard category taxonomy fixture (部件/事件 大类 → 小类) and its default departments."""

import re

import pytest
from django.core.management import call_command

from gridmgmt.models import Category, Department

pytestmark = pytest.mark.django_db

MINOR_CODE = re.compile(r"^[CE](0[1-6])(\d{2})$")
MAJOR_CODE = re.compile(r"^[CE]0[1-6]$")


@pytest.fixture
def taxonomy():
    call_command("loaddata", "departments", "categories", verbosity=0)


def test_fixture_loads_twice_without_new_rows(taxonomy):
    counts = (Department.objects.count(), Category.objects.count())
    call_command("loaddata", "departments", "categories", verbosity=0)
    assert (Department.objects.count(), Category.objects.count()) == counts
    assert counts[0] == 18


def test_majors_follow_the_standard(taxonomy):
    majors = {c.code: c.name for c in Category.objects.filter(parent__isnull=True)}
    assert majors == {
        "C01": "公用设施", "C02": "道路交通", "C03": "市容环境", "C04": "园林绿化", "C05": "房屋土地", "C06": "其他",
        "E01": "市容环境", "E02": "宣传广告", "E03": "施工管理", "E04": "街面秩序", "E05": "突发事件", "E06": "其他",
    }  # fmt: skip
    assert all(MAJOR_CODE.match(code) for code in majors)


def test_every_minor_is_well_formed(taxonomy):
    minors = list(Category.objects.filter(parent__isnull=False).select_related("parent", "default_department"))
    assert 60 <= len(minors) <= 90
    codes = [c.code for c in minors]
    assert len(codes) == len(set(codes))
    for c in minors:
        assert MINOR_CODE.match(c.code), c.code
        assert c.parent.code == c.code[:3], c.code
        assert c.parent.parent_id is None
        assert c.kind == ("component" if c.code[0] == "C" else "event") == c.parent.kind
        assert c.limit_normal > 0 and c.limit_urgent > 0, c.code
        assert c.limit_unit in Category.LimitUnit.values and c.urgent_limit_unit in Category.LimitUnit.values
        assert (c.dispatch_minutes_normal, c.dispatch_minutes_urgent) == (30, 10)
        assert c.name and c.name_en and c.plain_name and c.filing_condition and c.closing_condition, c.code
        assert c.default_department is not None, c.code
        assert c.duplicate_radius_m > 0
        assert c.default_urgency in {"normal", "urgent"}


def test_both_kinds_have_every_major_populated(taxonomy):
    for major in Category.objects.filter(parent__isnull=True):
        assert major.children.exists(), major.code


def _hours(unit: str, amount: int) -> float:
    # Comparable scale: a working day is 8 working hours.
    return amount * 8 if unit == Category.LimitUnit.WORKING_DAYS else amount


def test_urgent_limit_is_never_longer_than_normal(taxonomy):
    for c in Category.objects.filter(parent__isnull=False):
        assert _hours(c.urgent_limit_unit, c.limit_urgent) <= _hours(c.limit_unit, c.limit_normal), c.code


@pytest.mark.parametrize(
    ("code", "unit", "amount"),
    [
        ("E0101", "working_days", 1),  # 暴露垃圾
        ("E0103", "working_hours", 5),  # 道路不洁
        ("E0104", "working_days", 15),  # 违章搭建
        ("E0504", "hours", 2),  # 井盖缺失
    ],
)
def test_limits_seen_in_the_sources(taxonomy, code, unit, amount):
    c = Category.objects.get(code=code)
    assert (c.limit_unit, c.limit_normal) == (unit, amount)


def test_rules_as_data(taxonomy):
    by_code = {c.code: c for c in Category.objects.all()}
    assert by_code["E0504"].default_urgency == "urgent"
    assert by_code["E0504"].urgent_limit_unit == "hours" and by_code["E0504"].limit_urgent == 2
    assert by_code["E0404"].duplicate_radius_m == 250 and by_code["E0405"].duplicate_radius_m == 250
    assert by_code["C0102"].duplicate_radius_m == 50 and by_code["E0504"].duplicate_radius_m == 50
    assert by_code["E0104"].is_sensitive and by_code["E0403"].is_sensitive
    assert not by_code["E0404"].is_sensitive
    assert by_code["C0101"].default_department.code == "PD-ZLS"  # water covers go to the water company
    assert by_code["E0404"].default_department.code == "PD-JJZD"  # parking goes to the traffic police
