"""Intake: a report from any channel becomes a case (plus "+1" and repeated camera alarms on an open case).

Everything is validated before anything is written; a repeated idempotency key returns the first case — to the
same client only: keys are unique per scope (the channel and the client identity), and a channel's reserved
prefixes cannot be sent by another.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from geo import selectors as geo_selectors
from geo.coords import point_parse
from geo.models import Component
from gridmgmt import events, selectors
from gridmgmt.errors import InvalidInput, OutsideServiceArea, TransitionNotAllowed
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, User
from gridmgmt.photos import photo_files_guard, photos_prepare, photos_store
from gridmgmt.services import moves
from gridmgmt.states import OPEN_STATUSES

S = Case.Status
E = CaseEvent.Type

# --- intake ------------------------------------------------------------------------------------------

# Key prefixes the system channels make themselves (gridmgmt.intake.services, the demo), with the channel whose
# scopes alone may use them: no web client can send "hotline:<order no>".
IDEMPOTENCY_RESERVED = {"hotline:": "hotline", "camera:": "camera", "open311:": "open311", "demo:": "demo"}


def idempotency_key_check(*, key: str, scope: str) -> None:
    """Refuse a key with another channel's reserved prefix (the channel is the scope's first part)."""
    channel = scope.partition(":")[0]
    for prefix, owner in IDEMPOTENCY_RESERVED.items():
        if key.lower().startswith(prefix) and channel != owner:
            raise InvalidInput(
                _("幂等键前缀 %(p)s 为系统保留") % {"p": prefix}, field="idempotency_key", code="reserved_key"
            )


def _category_refuse(*, code) -> NoReturn:
    raise InvalidInput(_("未知的案件类别: %(code)s") % {"code": code}, field="category", code="unknown_category")


def _reportable(*, code: str):
    """The category a report may name: an active subclass (not a major class)."""
    return Category.objects.filter(code=code, is_active=True, parent__isnull=False)


def category_resolve(*, code: str) -> Category:
    category = _reportable(code=code).first()
    if category is None:
        _category_refuse(code=code)
    return category


def component_resolve(*, code: str, district_id: int) -> Component:
    """The 部件 named by `code` in the district (with its maintainer), or a 400 on the `component` field."""
    component = (
        Component.objects.select_related("maintainer").filter(code=code.strip(), cell__district_id=district_id).first()
    )
    if component is None:
        raise InvalidInput(_("未知的部件编码: %(code)s") % {"code": code}, field="component", code="unknown_component")
    return component


def case_code(*, day, serial: int) -> str:
    """A case code: the report day and its serial, at least 7 digits (20261127 + 0000214)."""
    return f"{day:%Y%m%d}{serial:07d}"


# The reportable category's defaults and the names a new case shows, with its code serial: one constant
# statement. Written by hand because it is measured: built by the ORM (`_reportable(...).only(...)
# .annotate(code_serial=<nextval expression>, major_code=F("parent__code"), ...)` with a Subquery per area
# code) it took 4.9 ms of CPU per report — a third of `case_report`'s 14 ms and 18 % of the server's Python
# time under `bench/intake.py`'s HTTP load (py-spy --gil) — to run a 0.2 ms query. The serial is drawn only
# when the WHERE clause selects the row.
_CATEGORY_FOR_REPORT_SQL = """
SELECT cat.id, cat.code, cat.name, cat.name_en, cat.parent_id, cat.default_urgency, cat.default_department_id,
       cat.closing_condition,
       nextval('gridmgmt_case_code_seq') AS code_serial,
       (SELECT code FROM gridmgmt_category WHERE id = cat.parent_id) AS major_code,
       (SELECT name FROM gridmgmt_department WHERE id = cat.default_department_id) AS department_name,
       (SELECT code FROM geo_adminarea WHERE id = %(district)s) AS district_code,
       (SELECT code FROM geo_adminarea WHERE id = %(street)s) AS street_code,
       (SELECT code FROM geo_adminarea WHERE id = %(community)s) AS community_code,
       (SELECT code FROM geo_responsibilitygrid WHERE id = %(grid)s) AS grid_code
FROM gridmgmt_category cat
WHERE cat.code = %(code)s AND cat.is_active AND cat.parent_id IS NOT NULL
"""


def _category_for_report(*, code: str, cell: geo_selectors.CellRef) -> Category:
    """The reportable category (as `_reportable`: an active subclass) with its defaults, the new case's code
    serial, and the names the new case shows (the category's, its major class's code, its department's
    name, the codes of the cell's areas): one query, so the response needs no read of the case. An unknown
    or inactive category (or a major class) selects no row and draws no serial."""
    params = {
        "code": code,
        "district": cell.district_id,
        "street": cell.street_id,
        "community": cell.community_id,
        "grid": cell.responsibility_grid_id,
    }
    category = next(iter(Category.objects.raw(_CATEGORY_FOR_REPORT_SQL, params)), None)
    if category is None:
        _category_refuse(code=code)
    return category


def _names_shown(*, category: Category, cell: geo_selectors.CellRef) -> dict:
    """What selectors.case_related_attach needs to dress a new case as its detail shows it."""
    return {
        "_category_code": category.code,
        "_category_name": category.name,
        "_category_name_en": category.name_en,
        "_category_closing": category.closing_condition,
        "_major_id": category.parent_id,
        "_major_code": category.major_code,
        "_cell_code": cell.code,
        "_district_code": category.district_code,
        "_street_code": category.street_code,
        "_community_code": category.community_code,
        "_grid_code": category.grid_code,
        "_department_name": category.department_name,
    }


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
    idempotency_scope: str = "",
    camera_id: int | None = None,
    external_id: str = "",
    at: datetime | None = None,
    data: dict | None = None,
    component_code: str = "",
) -> tuple[Case, bool]:
    """File a report from any channel. Returns (case, created); a repeated idempotency key in the same
    `idempotency_scope` (channel and client: "api:user:7", "public:device:…", "hotline") returns the first case
    and writes nothing; another scope's key is another key. Everything is validated before anything is written.
    `data` adds channel details (e.g. the camera alarm) to the REPORTED event. `component_code` names the
    部件 the case is about (same district): its maintainer becomes the case's department (moves.department_route)
    and the REPORTED event records the component.

    Three statements before the transaction (idempotency key, locate, the category with the code serial and
    the names the case shows) and one INSERT each in it for the case, its photos, the event, the event's photo
    links and its feed row. The new case comes back with its related codes and names and its photos
    attached, as `selectors.case_detail_get` would read it."""
    if idempotency_key:
        idempotency_key_check(key=idempotency_key, scope=idempotency_scope)
        # The id alone, by the unique index (no ORDER BY: its plan whatever the table's size); a repeat then
        # reads its case by id. Nearly every key is new, and the SELECT of all the case's columns cost 1.4 ms
        # of CPU per report for a miss under bench/intake.py's HTTP load (py-spy --gil).
        existing = list(
            Case.objects.filter(idempotency_scope=idempotency_scope, idempotency_key=idempotency_key).values_list(
                "id", flat=True
            )
        )
        if existing:
            return Case.objects.get(pk=existing[0]), False
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
    component = component_resolve(code=component_code, district_id=cell.district_id) if component_code else None
    prepared = photos_prepare(uploads=photos)
    category = _category_for_report(code=category_code, cell=cell)
    recorded = timezone.now()
    now = at or recorded
    case = Case(
        code=case_code(day=timezone.localdate(), serial=category.code_serial),
        category_id=category.id,
        urgency=urgency or category.default_urgency,
        department_id=moves.department_route(category=category, component=component),
        component=component,
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
        idempotency_scope=idempotency_scope if idempotency_key else "",
        reported_at=now,
    )
    names = _names_shown(category=category, cell=cell)
    if component is not None:
        names["_department_name"] = component.maintainer.name if component.maintainer_id else category.department_name
        data = {**(data or {}), "component": component.code}
    selectors.case_related_attach(case, names=names)
    try:
        with photo_files_guard(), transaction.atomic():
            case.save(force_insert=True)
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
                data=events.reported_data(source=source, extra=data),
                photos=stored,
                recorded_at=recorded if now != recorded else None,
            )
    except IntegrityError:
        # Two submissions with one idempotency key raced: the other one won, return its case.
        if idempotency_key:
            existing = Case.objects.filter(idempotency_scope=idempotency_scope, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        raise
    selectors.case_photos_attach(case, stored)  # the case as its detail shows it, without reading it back
    return case, True


def _open_case_lock(case_id: int) -> Case | None:
    return Case.objects.select_for_update().filter(pk=case_id, status__in=OPEN_STATUSES).first()


def _supported_append(case: Case, **fields) -> None:
    """附议 or one more alarm of the same event: one SUPPORTED event, no state change."""
    event_append(case=case, type=E.SUPPORTED, from_status=case.status, to_status=case.status, **fields)


def case_support(*, case_id: int, actor: User | None, note: str = "") -> Case:
    """+1: a resident says "me too" on an open case (no state change, one event)."""
    with transaction.atomic():
        case = _open_case_lock(case_id)
        if case is None:
            raise TransitionNotAllowed(_("该案件已办结,不能附议"), code="not_open")
        case.supporters += 1
        case.save(update_fields=["supporters", "updated_at"])
        _supported_append(case, actor=actor if actor is not None and actor.is_authenticated else None, note=note[:200])
    return case


def case_alarm_attach(*, case_id: int, alarm: dict, photos: Sequence = (), at: datetime | None = None) -> Case | None:
    """One more camera alarm of an event already reported: recorded on the open case (no state change, one
    event). Returns None when the case is no longer open, so the caller reports a new case instead."""
    prepared = photos_prepare(uploads=photos)
    with photo_files_guard(), transaction.atomic():
        case = _open_case_lock(case_id)
        if case is None:
            return None
        stored = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
        data = events.supported_data(alarm=alarm)
        _supported_append(case, actor=None, at=at, location=case.point, data=data, photos=stored)
    return case
