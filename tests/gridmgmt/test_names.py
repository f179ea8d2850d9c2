"""Localized names: English when the request is in English and the row has one."""

import pytest
from django.utils import translation

from gridmgmt.models import Category
from gridmgmt.names import name_localized, name_localized_expr
from tests.factories import CategoryFactory


class Named:
    def __init__(self, name, name_en=""):
        self.name, self.name_en = name, name_en


@pytest.mark.parametrize(
    ("language", "name_en", "expected"),
    [
        ("en", "Garbage piles", "Garbage piles"),
        ("en-us", "Garbage piles", "Garbage piles"),
        ("en", "", "乱堆物堆料"),
        ("zh-hans", "Garbage piles", "乱堆物堆料"),
    ],
)
def test_name_localized(language, name_en, expected):
    with translation.override(language):
        assert name_localized(Named("乱堆物堆料", name_en)) == expected
        assert name_localized(name="乱堆物堆料", name_en=name_en) == expected


def test_name_localized_without_name_en_attribute():
    class Plain:
        name = "测试队"

    with translation.override("en"):
        assert name_localized(Plain()) == "测试队"


@pytest.mark.django_db
def test_name_localized_expr_agrees_with_the_python_rule():
    CategoryFactory(code="E0901", name="井盖缺失", name_en="Missing manhole cover")
    CategoryFactory(code="E0902", name="占道经营", name_en="")
    qs = Category.objects.filter(code__in=["E0901", "E0902"]).order_by("code")
    with translation.override("en"):
        assert list(qs.values_list(name_localized_expr(), flat=True)) == ["Missing manhole cover", "占道经营"]
    with translation.override("zh-hans"):
        assert list(qs.values_list(name_localized_expr(), flat=True)) == ["井盖缺失", "占道经营"]
