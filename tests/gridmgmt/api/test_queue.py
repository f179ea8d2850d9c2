"""The desk's queue in the API: search (code prefix, description/address fragments, a reporter's phone for staff
only), the orderings, the level filter and the per-status counts of the tabs — each a constant number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from geo.models import AdminArea
from gridmgmt.api.filters import area_q
from gridmgmt.models import Case, User
from gridmgmt.queue import cases_search
from tests.gridmgmt.api.test_lists import make_cases

R, S = User.Role, Case.Status


def codes(client, query: str) -> list[str]:
    response = client.get(f"/api/cases/?{query}")
    assert response.status_code == 200, response.json()
    return [f["properties"]["code"] for f in response.json()["features"]]


@pytest.fixture
def queue(world):
    now = timezone.now()
    a = make_cases(world, 1, code="202611270000101", description="人行道上堆满了建筑垃圾", address="浦东南路 100 号")[0]
    b = make_cases(world, 1, code="202611270000102", description="井盖缺失", address="世纪大道 8 号 50%_折扣店")[0]
    c = make_cases(
        world, 1, code="202611260000207", description="Illegal PARKING near gate", reporter_phone="13900001111"
    )[0]
    return {"a": a, "b": b, "c": c, "now": now}


def test_search_by_code_prefix_and_fragments(world, queue):
    client = world.client(R.DISPATCHER)
    a, b, c = queue["a"], queue["b"], queue["c"]
    assert sorted(codes(client, "search=2026112700001")) == [a.code, b.code]  # a code prefix
    assert codes(client, f"search={c.code}") == [c.code]  # a whole code
    assert codes(client, "search=0000101") == []  # the middle of a code is no match (prefix only)
    assert codes(client, "search=建筑垃圾") == [a.code]  # a fragment of the description, Chinese
    assert codes(client, "search=世纪大道") == [b.code]  # of the address
    assert codes(client, "search=parking") == [c.code]  # case-insensitive
    assert codes(client, "search=50%25_") == [b.code]  # % and _ are literal, not wildcards
    assert codes(client, "search=%25") == [b.code]
    assert codes(client, "search=  ") != []  # blank: no narrowing
    assert codes(client, "search=建筑垃圾&status=filed") == []  # combined with the other filters


def test_reporter_phone_is_searched_for_staff_only(world, queue):
    c = queue["c"]
    assert codes(world.client(R.DISPATCHER), "search=13900001111") == [c.code]
    assert codes(world.client(R.DISPATCHER), "search=139-0000-1111") == [c.code]
    assert codes(world.client(R.DISPATCHER), "search=1390000") == []  # a phone matches whole, never a prefix
    Case.objects.filter(pk=c.pk).update(reporter=world.users[R.RESIDENT])
    assert codes(world.client(R.RESIDENT), "search=13900001111") == []  # a resident sees their case, not by phone
    assert "13900001111" not in str(world.client(R.DISPATCHER).get("/api/cases/?search=13900001111").json())


def test_search_uses_the_indexes(world, queue):
    # Every arm of the OR is an index lookup, one BitmapOr, whatever the text: a code prefix is LOWER(code) LIKE
    # on case_code_lower (as `code ILIKE`, a letter or a CJK character left it without a fixed prefix, and the
    # whole OR a filter over every case of the scope).
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
    for text, phone in (("建筑垃圾", False), ("sc2026", False), ("13900001111", True)):
        plan = cases_search(qs=Case.objects.order_by(), text=text, with_phone=phone).explain()
        indexes = ["case_code_lower", "case_description_scoped_trgm", "case_address_scoped_trgm"]
        assert "BitmapOr" in plan, plan
        for index in indexes + (["case_reporter_phone"] if phone else []):
            assert index in plan, (text, plan)
    # A street's search: the street id compared as bigint, which btree_gin's int8_ops serves, so the street is a
    # key of the trigram indexes' scans at scale (bench/scale.py; with a bare int4 literal it is not).
    street = AdminArea(id=98765, level=AdminArea.Level.STREET)  # only its id and level make the filter
    scoped = Case.objects.order_by().filter(area_q(street))
    plan = cases_search(qs=scoped, text="建筑垃圾").explain()
    assert f"(street_id = '{street.id}'::bigint)" in plan, plan


def test_orderings_most_urgent_first(world):
    now = timezone.now()
    named = {
        "red old": make_cases(world, 1, deadline_at=now - timedelta(days=2), reported_at=now - timedelta(days=4))[0],
        "red new": make_cases(world, 1, deadline_at=now - timedelta(hours=1), reported_at=now - timedelta(days=1))[0],
        "yellow": make_cases(
            world,
            1,
            deadline_at=now + timedelta(hours=1),
            warn_at=now - timedelta(minutes=5),
            level=3,
            reported_at=now - timedelta(days=3),
        )[0],
        "green": make_cases(
            world,
            1,
            deadline_at=now + timedelta(hours=2),
            warn_at=now + timedelta(hours=1),
            level=2,
            reported_at=now - timedelta(hours=2),
        )[0],
        "no clock": make_cases(world, 1, status=S.REPORTED, deadline_at=None, reported_at=now - timedelta(days=9))[0],
    }
    name = {c.code: k for k, c in named.items()}
    client = world.client(R.DISPATCHER)

    def order(value: str, extra: str = "") -> list[str]:
        return [name[code] for code in codes(client, f"ordering={value}{extra}")]

    assert order("light") == ["red old", "red new", "yellow", "green", "no clock"]  # overdue first
    assert order("light", "&light=red&page_size=1") == ["red old"]  # the oldest red case heads the page
    assert order("-light") == ["no clock", "green", "yellow", "red new", "red old"]
    assert order("age") == ["no clock", "red old", "yellow", "red new", "green"]
    assert order("-age") == ["green", "red new", "yellow", "red old", "no clock"]
    assert order("level") == ["yellow", "green", "red old", "red new", "no clock"]
    assert order("deadline") == ["red old", "red new", "yellow", "green", "no clock"]
    assert order("deadline") == [name[code] for code in codes(client, "order=deadline")]  # the old name
    assert [name[code] for code in codes(client, "level=3&level=2")] == ["green", "yellow"]  # newest first
    bad = client.get("/api/cases/?ordering=score")
    assert (bad.status_code, bad.json()["field"]) == (400, "ordering")
    bad = client.get("/api/cases/?level=9")
    assert (bad.status_code, bad.json()["field"]) == (400, "level")


def test_counts_per_status_in_one_query_with_the_lists_filters(world, queue, django_assert_num_queries):
    make_cases(world, 2, status=S.FILED, description="建筑垃圾又来了")
    make_cases(world, 1, status=S.REPORTED)
    client = world.client(R.DISPATCHER)
    client.get("/api/cases/counts/")  # warm the per-user lookups
    with django_assert_num_queries(1):
        body = client.get("/api/cases/counts/?ordering=light&page=2").json()  # paging and ordering: no matter
    assert body["total"] == 6
    assert {k: v for k, v in body["by_status"].items() if v} == {"handling": 3, "filed": 2, "reported": 1}
    assert body["by_status"]["closed"] == 0 and set(body["by_status"]) == set(S.values)
    searched = client.get("/api/cases/counts/?search=建筑垃圾").json()
    assert (searched["total"], searched["by_status"]["filed"], searched["by_status"]["handling"]) == (3, 2, 1)
    assert client.get("/api/cases/counts/?light=red").json()["total"] == 0
    c0 = world.cells[0].geom.extent
    box = "in_bbox={},{},{},{}".format(*c0)
    assert (
        client.get(f"/api/cases/counts/?{box}").json()["total"] == 5 == client.get(f"/api/cases/?{box}").json()["count"]
    )
    some = client.get("/api/cases/counts/?status=filed,reported").json()  # the statuses of the desk's tabs
    assert (some["total"], some["by_status"]["filed"], some["by_status"]["handling"]) == (3, 2, 0)
    # Scoped like the list: another district's dispatcher counts nothing of this one.
    assert world.client("far_dispatcher").get("/api/cases/counts/").json()["total"] == 0
    bad = client.get("/api/cases/counts/?source=pigeon")
    assert (bad.status_code, bad.json()["field"]) == (400, "source")


def test_searched_and_ordered_page_is_a_constant_number_of_queries(world, django_assert_num_queries):
    client = world.client(R.DISPATCHER)
    url = "/api/cases/?search=垃圾&ordering=light&page_size=50"
    make_cases(world, 1, description="垃圾")
    client.get(url)
    with django_assert_num_queries(2):  # the ids with the total, then their rows (OnePassPaginator)
        assert len(client.get(url).json()["features"]) == 1
    make_cases(world, 20, description="一堆垃圾")
    with django_assert_num_queries(2):
        assert len(client.get(url).json()["features"]) == 21


def test_searched_pages_carry_the_total(world):
    client = world.client(R.DISPATCHER)
    make_cases(world, 21, description="一堆垃圾")
    make_cases(world, 2, description="井盖缺失")

    def page(n: int) -> tuple:
        body = client.get(f"/api/cases/?search=垃圾&page_size=10&page={n}").json()
        return body["count"], len(body["features"]), body["next"] is not None

    assert [page(1), page(2), page(3)] == [(21, 10, True), (21, 10, True), (21, 1, False)]
    assert client.get("/api/cases/?search=垃圾&page_size=10&page=4").status_code == 404  # past the end
    # in the list's order (newest first), page after page, as without a search
    paged = [code for n in (1, 2, 3) for code in codes(client, f"search=垃圾&page_size=10&page={n}")]
    assert paged == [code for code in codes(client, "page_size=50") if code in set(paged)] and len(set(paged)) == 21
    assert client.get("/api/cases/?search=garbage").json()["count"] == 0  # no match: an empty page
