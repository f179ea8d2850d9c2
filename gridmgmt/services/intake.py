"""Intake: a report from any channel becomes a case (plus "+1" and repeated camera alarms on an open case).

Everything is validated before anything is written; a repeated idempotency key returns the first case.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import DatabaseDefault
from django.utils import timezone
from django.utils.translation import gettext as _

from geo import selectors as geo_selectors
from geo.coords import point_parse
from gridmgmt.errors import InvalidInput, OutsideServiceArea, TransitionNotAllowed
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, User
from gridmgmt.photos import photos_prepare, photos_store
from gridmgmt.states import OPEN_STATUSES

S = Case.Status
E = CaseEvent.Type

# --- intake ------------------------------------------------------------------------------------------


def _category_refuse(*, code) -> NoReturn:
    raise InvalidInput(_("未知的案件类别: %(code)s") % {"code": code}, field="category", code="unknown_category")


def category_resolve(*, code: str) -> Category:
    category = Category.objects.filter(code=code, is_active=True, parent__isnull=False).first()
    if category is None:
        _category_refuse(code=code)
    return category


# The case row in one statement: the category's defaults (and its validity) come from the category table and
# the code's serial from a sequence inside the same INSERT, so a report costs no separate lookups. An
# unknown or inactive category (or a major class) selects no row, so nothing is inserted.
_CASE_INSERT = """
    INSERT INTO gridmgmt_case (code, category_id, urgency, department_id, {columns})
    SELECT %s || to_char(nextval('gridmgmt_case_code_seq'), 'FM9999999999990000000'),
           cat.id, coalesce(%s, cat.default_urgency), cat.default_department_id, {values}
    FROM gridmgmt_category cat
    WHERE cat.code = %s AND cat.is_active AND cat.parent_id IS NOT NULL
    RETURNING id, code, category_id, urgency, department_id
"""
_FROM_INSERT = ("id", "code", "category_id", "urgency", "department_id")
_case_insert_sql: dict[tuple[str, ...], str] = {}


def _case_insert(*, case: Case, category_code: str, urgency: str | None) -> bool:
    """INSERT `case` (every field but those in _FROM_INSERT, which it fills in). False if the category
    is not reportable. The values go through the fields' own save preparation, as Model.save would."""
    columns, placeholders, params = [], [], []
    for field in Case._meta.concrete_fields:
        if field.attname in _FROM_INSERT:
            continue
        value = field.pre_save(case, add=True)
        if isinstance(value, DatabaseDefault):
            continue
        value = field.get_db_prep_save(value, connection=connection)
        columns.append(field.column)
        placeholder = getattr(field, "get_placeholder", None)
        placeholders.append(placeholder(value, None, connection) if placeholder else "%s")
        params.append(value)
    key = tuple(columns)
    sql = _case_insert_sql.get(key)
    if sql is None:
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        sql = _case_insert_sql[key] = _CASE_INSERT.format(columns=quoted, values=", ".join(placeholders))
    with connection.cursor() as cur:
        cur.execute(sql, [f"{timezone.localdate():%Y%m%d}", urgency, *params, category_code])
        row = cur.fetchone()
    if row is None:
        return False
    case.id, case.code, case.category_id, case.urgency, case.department_id = row
    case._state.adding, case._state.db = False, connection.alias
    return True


def case_id_by_idempotency_key(*, key: str) -> int | None:
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM gridmgmt_case WHERE idempotency_key = %s", [key])
        row = cur.fetchone()
    return row[0] if row else None


def case_report(
    *,
    source: str,
    category_code: str,
    lon,
    lat,
    description: str = "",
    urgency: str | None = None,
    reporter: User | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    address: str = "",
    photos: Sequence = (),
    idempotency_key: str | None = None,
    camera_id: int | None = None,
    external_id: str = "",
    at: datetime | None = None,
    data: dict | None = None,
) -> tuple[Case, bool]:
    """File a report from any channel. Returns (case, created); a repeated idempotency key returns the
    first case and writes nothing. Everything is validated before anything is written. `data` adds
    channel details (e.g. the camera alarm) to the REPORTED event.

    Two statements before the transaction (idempotency key, locate) and one INSERT each in it for the case,
    its photos, the event and the event's photo links: no lookups of the category or its department and no
    separate fetch of the code serial (the case INSERT does those), no ORM query building for the reads."""
    if idempotency_key:
        existing_id = case_id_by_idempotency_key(key=idempotency_key)
        if existing_id is not None:
            return Case.objects.get(pk=existing_id), False
    if source not in Case.Source.values:
        raise InvalidInput(_("未知的来源: %(s)s") % {"s": source}, field="source")
    if urgency is not None and urgency not in Case.Urgency.values:
        raise InvalidInput(_("紧急程度只能是 normal 或 urgent"), field="urgency")
    if len(description) > 2000:
        raise InvalidInput(_("描述不能超过 2000 字"), field="description")
    if len(reporter_phone) > 20:
        raise InvalidInput(_("电话号码过长"), field="reporter_phone")
    point = point_parse(lon, lat)
    cell = geo_selectors.cell_locate(lon=point.x, lat=point.y)
    if cell is None:
        raise OutsideServiceArea(_("该位置不在服务范围内"), field="location")
    prepared = photos_prepare(uploads=photos)
    now = at or timezone.now()
    case = Case(
        point=point,
        address=address[:200],
        cell_id=cell.id,
        community_id=cell.community_id,
        street_id=cell.street_id,
        district_id=cell.district_id,
        responsibility_grid_id=cell.responsibility_grid_id,
        source=source,
        status=S.REPORTED,
        description=description,
        reporter=reporter if reporter is not None and reporter.is_authenticated else None,
        reporter_name=reporter_name[:50],
        reporter_phone=reporter_phone,
        camera_id=camera_id,
        external_id=external_id[:64],
        idempotency_key=idempotency_key or None,
        reported_at=now,
    )
    try:
        with transaction.atomic():
            if not _case_insert(case=case, category_code=category_code, urgency=urgency):
                _category_refuse(code=category_code)
            stored = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
            event_append(
                case=case,
                type=E.REPORTED,
                actor=case.reporter,
                from_status="",
                to_status=S.REPORTED,
                at=now,
                location=point,
                note=description[:200],
                data={**(data or {}), "source": source},
                photos=stored,
            )
    except IntegrityError:
        # Two submissions with one idempotency key raced: the other one won, return its case.
        if idempotency_key:
            existing = Case.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        raise
    return case, True


def case_support(*, case_id: int, actor: User | None, note: str = "") -> Case:
    """+1: a resident says "me too" on an open case (no state change, one event)."""
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id, status__in=OPEN_STATUSES).first()
        if case is None:
            raise TransitionNotAllowed(_("该案件已办结,不能附议"), code="not_open")
        case.supporters += 1
        case.save(update_fields=["supporters", "updated_at"])
        event_append(
            case=case,
            type=E.SUPPORTED,
            actor=actor if actor is not None and actor.is_authenticated else None,
            from_status=case.status,
            to_status=case.status,
            note=note[:200],
        )
    return case


def case_alarm_attach(*, case_id: int, alarm: dict, photos: Sequence = (), at: datetime | None = None) -> Case | None:
    """One more camera alarm of an event already reported: recorded on the open case (no state change, one
    event). Returns None when the case is no longer open, so the caller reports a new case instead."""
    prepared = photos_prepare(uploads=photos)
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id, status__in=OPEN_STATUSES).first()
        if case is None:
            return None
        stored = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
        event_append(
            case=case,
            type=E.SUPPORTED,
            actor=None,
            from_status=case.status,
            to_status=case.status,
            at=at,
            location=case.point,
            data={"alarm": alarm},
            photos=stored,
        )
    return case
