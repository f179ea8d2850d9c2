"""Reads of the desk's queue (selectors): search, order and count cases that a caller's scope already holds.

Every function takes a queryset scoped by `gridmgmt.access` and narrows, orders or counts it in one SQL
statement; the API's filters (`gridmgmt.api.filters.CaseFilter`) only parse and call these.

Search uses PostgreSQL's `pg_trgm` (migrations 0017, 0022): GIN trigram indexes on description and address
serve `ILIKE '%…%'` for Chinese text without a tokenizer (a CJK character is a word character under the
database's C.UTF-8 ctype), so a fragment of three or more characters is an index lookup, not a scan. They lead
with the street and community ids (btree_gin), so a street's search reads only that street's matches from them
when the scope compares its id as bigint (`gridmgmt.access.area_id_value`). The code prefix has its own
expression index (migration 0021): every arm of the search's OR is indexed, so the OR is one BitmapOr.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import BooleanField, Count, F, Func, IntegerField, Q, QuerySet, TextField, Value, When
from django.db.models import Case as CaseWhen
from django.db.models.functions import Lower
from django.utils import timezone

from gridmgmt import states
from gridmgmt.models import Case

# The desk's orderings: each puts the most urgent first; a leading "-" reverses every key.
#   deadline: a running stage clock first, then the earliest (most overdue) deadline
#   light:    red, yellow, green, then no clock ("overdue first"), each by earliest deadline
#   age:      the oldest report first (the longest waiting)
#   level:    the highest escalation level first (district … grid), then by earliest deadline
ORDERINGS = ("deadline", "light", "age", "level")
# A search term is cut to this length (a trigram lookup of a whole paragraph is no search).
SEARCH_MAX = 100
# Digits only and at least this long: also compared with the reporter's phone (staff only).
PHONE_MIN_DIGITS = 7


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _ilike(column: str, pattern: str) -> Func:
    # `col ILIKE pattern` on the bare column, which the trigram index serves (Django's icontains writes
    # UPPER(col) LIKE UPPER(…), which no index on the column can serve).
    return Func(
        F(column), Value(pattern), template="%(expressions)s", arg_joiner=" ILIKE ", output_field=BooleanField()
    )


def _code_prefix(pattern: str) -> Func:
    # `code ILIKE 'text%'` means LOWER(code) LIKE LOWER('text%'); written so, the prefix is fixed for every text
    # and the expression index case_code_lower (migration 0021) serves it. As `code ILIKE`, PostgreSQL finds no
    # fixed prefix once the text holds a letter or a CJK character (it cannot know their case), the code arm
    # becomes a filter and so does the whole OR: every case of the scope read and matched (bench/scale.py, 5 M
    # cases: see README "City scale").
    return Func(
        Lower("code"),
        Func(Value(pattern, output_field=TextField()), function="LOWER"),
        template="%(expressions)s",
        arg_joiner=" LIKE ",
        output_field=BooleanField(),
    )


def cases_search(*, qs: QuerySet[Case], text: str, with_phone: bool = False) -> QuerySet[Case]:
    """Cases whose code starts with `text`, or whose description or address contains it (case-insensitive);
    with `with_phone` (staff callers only: never for the public or residents) also those whose reporter's
    phone is exactly `text` when it is a phone number. Blank text narrows nothing."""
    text = " ".join(text.split())[:SEARCH_MAX]
    if not text:
        return qs
    escaped = _like_escape(text)
    match = (
        Q(_code_prefix(f"{escaped}%")) | Q(_ilike("description", f"%{escaped}%")) | Q(_ilike("address", f"%{escaped}%"))
    )
    digits = text.replace("-", "").replace(" ", "")
    if with_phone and digits.isascii() and digits.isdigit() and len(digits) >= PHONE_MIN_DIGITS:
        match |= Q(reporter_phone=digits)
    return qs.filter(match)


def cases_order(*, qs: QuerySet[Case], ordering: str, now: datetime | None = None) -> QuerySet[Case]:
    """`qs` in the desk's `ordering` (one of ORDERINGS, optionally with a leading "-" for the reverse), made a
    total order with reported_at and id, so page boundaries never repeat or skip a case."""
    now = now or timezone.now()
    reverse = ordering.startswith("-")
    key = ordering.lstrip("-")
    if key not in ORDERINGS:
        raise ValueError(ordering)
    deadline = F("deadline_at").desc(nulls_last=True) if reverse else F("deadline_at").asc(nulls_last=True)
    oldest = ("-reported_at", "-id") if reverse else ("reported_at", "id")
    if key == "deadline":
        # A parked case's old deadline is paused, not overdue: cases whose clock runs come first either way.
        # sorted: the same SQL in every process (a frozenset's order follows the hash seed), so it matches the
        # expression index case_queue_order (migration 0019) and the planner walks it instead of sorting.
        running = CaseWhen(
            When(status__in=sorted(states.CLOCKED_STATUSES), then=0), default=1, output_field=IntegerField()
        )
        return qs.order_by(running, deadline, *oldest)
    if key == "light":
        qs = qs.alias(_light_rank=states.light_rank_expression(now=now))
        return qs.order_by(F("_light_rank").desc() if reverse else F("_light_rank").asc(), deadline, *oldest)
    if key == "age":
        return qs.order_by(*oldest)
    return qs.order_by(F("level").asc() if reverse else F("level").desc(), deadline, *oldest)


def case_counts_by_status(*, qs: QuerySet[Case]) -> dict:
    """How many of `qs` are in each status, and in all: one statement (conditional aggregation), every
    status present (0 when none), for the desk's queue tabs."""
    statuses = [str(s) for s in Case.Status.values]
    figures = qs.order_by().aggregate(
        total=Count("pk"), **{f"s_{s}": Count("pk", filter=Q(status=s)) for s in statuses}
    )
    return {"total": figures["total"], "by_status": {s: figures[f"s_{s}"] for s in statuses}}
