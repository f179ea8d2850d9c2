import pytest
from django.db import IntegrityError, transaction

from gridmgmt.models import CaseEvent
from tests.factories import CaseEventFactory, CaseFactory


def test_case_events_are_append_only(db):
    event = CaseEventFactory()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseEvent.objects.filter(pk=event.pk).update(note="rewritten history")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CaseEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.note == ""


def test_event_ids_increase_with_insertion_order(db):
    case = CaseFactory()
    ids = [CaseEventFactory(case=case).id for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert list(case.events.values_list("id", flat=True)) == ids


@pytest.mark.parametrize("score", [0, 6])
def test_satisfaction_is_1_to_5(db, score):
    with pytest.raises(IntegrityError, match="case_satisfaction_range"), transaction.atomic():
        CaseFactory(satisfaction=score)


def test_case_codes_and_idempotency_keys_are_unique(db):
    case = CaseFactory(idempotency_key="k-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        CaseFactory(code=case.code)
    with pytest.raises(IntegrityError), transaction.atomic():
        CaseFactory(idempotency_key="k-1")
