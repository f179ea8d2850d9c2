"""Street loudspeaker calls (街头语音呼叫喇叭): a dispatcher or shift leader speaks to the street about a case, a
cell or through one speaker.

`speaker_call` checks who may call (gridmgmt.rules.speaker_call_check) and what they may see
(gridmgmt.access), picks the speakers (the chosen one, or the active ones in/near the cell:
geo.selectors.speakers_near), sends the message through each speaker's gateway (gridmgmt.loudspeakers — in
the request, in parallel, bounded by SPEAKER_TIMEOUT_SECONDS; no transaction is held meanwhile), then logs
the call: one SpeakerCall row always, and one `speaker_called` event on the case when a case is named, in
one transaction. A failed delivery is logged too; the caller reads the outcome on the returned call.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from geo.models import GridCell, Speaker
from geo.selectors import speakers_near
from gridmgmt import access, events, rules
from gridmgmt.errors import InvalidInput, NotFound
from gridmgmt.loudspeakers import speakers_deliver
from gridmgmt.models import SPEAKER_REPEAT_MAX, Case, CaseEvent, Category, SpeakerCall, User

TEXT_MAX = 200


def speaker_message(*, text: str | None, preset: str | None) -> tuple[str, Category | None]:
    """The words to speak: typed `text`, or the preset of category `preset` (its code) — exactly one."""
    text = (text or "").strip()
    if bool(text) == bool(preset):
        raise InvalidInput(_("请选择预设喊话或输入喊话内容(二选一)"), field="text")
    if text:
        if len(text) > TEXT_MAX:
            raise InvalidInput(_("喊话内容不能超过 %(n)d 个字") % {"n": TEXT_MAX}, field="text")
        return text, None
    category = Category.objects.filter(code=preset).exclude(speaker_preset="").first()
    if category is None:
        raise InvalidInput(_("该类别没有预设喊话"), field="preset")
    return category.speaker_preset, category


def _outcome(delivered: int, total: int) -> str:
    if delivered == total:
        return SpeakerCall.Outcome.DELIVERED
    return SpeakerCall.Outcome.PARTIAL if delivered else SpeakerCall.Outcome.FAILED


def speaker_call(
    *,
    actor: User,
    text: str | None = None,
    preset: str | None = None,
    repeat: int = 1,
    case_id: int | None = None,
    cell_id: int | None = None,
    speaker_id: int | None = None,
) -> SpeakerCall:
    """Speak `text` (or a category's preset) `repeat` times through the chosen speaker, or through the active
    speakers within SPEAKER_NEAR_M of the cell (`cell_id`, else the case's cell). Returns the logged call with
    `outcome` and per-speaker `results`; raises (and sends and logs nothing) when the call is refused."""
    rules.speaker_call_check(user=actor)  # the role first: a patrol member learns nothing about the case
    case = access.case_access(user=actor, case_id=case_id) if case_id is not None else None
    if case is not None:
        rules.speaker_call_check(user=actor, case=case)
    if not 1 <= repeat <= SPEAKER_REPEAT_MAX:
        raise InvalidInput(_("播放次数须为 1–%(n)d") % {"n": SPEAKER_REPEAT_MAX}, field="repeat")
    words, category = speaker_message(text=text, preset=preset)

    if speaker_id is not None:
        speaker = access.speaker_access(user=actor, speaker_id=speaker_id)
        if not speaker.is_active:
            raise InvalidInput(_("该喇叭已停用"), field="speaker")
        speakers = [speaker]
        cell_id = speaker.cell_id or cell_id or (case.cell_id if case else None)
    else:
        if cell_id is not None:
            cell_id = access.cell_access(user=actor, cell_id=cell_id).pk
        elif case is not None:
            cell_id = case.cell_id
        else:
            raise InvalidInput(_("请指定案件、网格或喇叭"), field="speaker")
        speakers = speakers_near(
            speakers=access.speakers_visible(user=actor),
            cell_id=cell_id,
            radius_m=settings.SPEAKER_NEAR_M,
            limit=settings.SPEAKER_CALL_MAX,
        )
        if not speakers:
            raise NotFound(_("该网格及附近 %(m)d 米内没有可用的喇叭") % {"m": settings.SPEAKER_NEAR_M}, field="speaker")

    results = [d.as_dict() for d in speakers_deliver(speakers=speakers, text=words, repeat=repeat)]
    return _call_log(
        actor=actor, case=case, cell_id=cell_id, speakers=speakers, text=words, preset=category, repeat=repeat,
        results=results,
    )  # fmt: skip


def _call_log(
    *,
    actor: User,
    case: Case | None,
    cell_id: int | None,
    speakers: list[Speaker],
    text: str,
    preset: Category | None,
    repeat: int,
    results: list[dict],
) -> SpeakerCall:
    delivered = sum(1 for r in results if r["ok"])
    if case is not None:
        area = {"district_id": case.district_id, "street_id": case.street_id, "community_id": case.community_id}
    else:
        cell = GridCell.objects.filter(pk=cell_id).values("district_id", "street_id", "community_id").first()
        area = cell or {}
    with transaction.atomic():
        call = SpeakerCall.objects.create(
            actor=actor,
            at=timezone.now(),
            case=case,
            cell_id=cell_id,
            text=text,
            preset=preset,
            repeat=repeat,
            outcome=_outcome(delivered, len(results)),
            results=results,
            **area,
        )
        call.speakers.set(speakers)
        if case is not None:
            current = Case.objects.filter(pk=case.pk).only("status").get()  # the status as it is at logging time
            events.event_append(
                case=case,
                type=CaseEvent.Type.SPEAKER_CALLED,
                actor=actor,
                from_status=current.status,
                to_status=current.status,
                note=text,
                data=events.speaker_called_data(
                    call_id=call.pk,
                    speakers=[s.code for s in speakers],
                    repeat=repeat,
                    outcome=call.outcome,
                    delivered=delivered,
                ),
            )
    return call
