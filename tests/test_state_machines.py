"""Every status table in one place: each feature's `StateMachine` allows exactly the moves
written here, and `move` refuses everything else without touching the record."""

from __future__ import annotations

import enum
from types import SimpleNamespace

import pytest

from webapp.core.states import IllegalMove, StateMachine
from webapp.digests.lifecycle import DELIVERY_MOVES, ISSUE_MOVES, IssueStateError
from webapp.digests.models import DeliveryStatus, IssueStatus
from webapp.outbox.models import OUTBOX_MOVES, InvalidTransition, OutboxStatus

Out, Iss, Dlv = OutboxStatus, IssueStatus, DeliveryStatus

#: (table, the moves it must allow, the error it raises). Written out by hand on purpose:
#: a change to a table has to change this list too.
TABLES = [
    (
        OUTBOX_MOVES,
        {(Out.PENDING, Out.PENDING), (Out.PENDING, Out.SENT), (Out.PENDING, Out.FAILED),
         (Out.FAILED, Out.PENDING)},
        InvalidTransition,
    ),
    (
        ISSUE_MOVES,
        {(Iss.DRAFT, Iss.SENDING), (Iss.SENDING, Iss.PAUSED), (Iss.SENDING, Iss.SENT),
         (Iss.PAUSED, Iss.SENDING)},
        IssueStateError,
    ),
    (
        DELIVERY_MOVES,
        {(Dlv.PENDING, Dlv.PENDING), (Dlv.PENDING, Dlv.SENT), (Dlv.PENDING, Dlv.FAILED),
         (Dlv.PENDING, Dlv.SKIPPED)},
        IllegalMove,
    ),
]


@pytest.mark.parametrize("machine,allowed,error", TABLES, ids=lambda v: getattr(v, "name", ""))
def test_exactly_the_written_moves(
    machine: StateMachine, allowed: set[tuple[enum.Enum, enum.Enum]], error: type[Exception]
) -> None:
    states = list(type(next(iter(allowed))[0]))
    for current in states:
        for target in states:
            record = SimpleNamespace(id=7, status=current)
            if (current, target) in allowed:
                assert machine.allows(current, target)
                machine.move(record, target)
                assert record.status == target
            else:
                assert not machine.allows(current, target)
                with pytest.raises(error) as raised:
                    machine.move(record, target)
                assert record.status == current, "a refused move leaves the record alone"
                assert "7" in str(raised.value) and current.value in str(raised.value)
    for target in states:
        assert machine.sources(target) == {c for c, t in allowed if t == target}
    assert machine.ends() == {s for s in states if not any(c == s for c, _ in allowed)}


def test_only_from_narrows_one_action() -> None:
    # "resume" leads to sending like "approve" does, but only from paused.
    draft = SimpleNamespace(id=1, status=Iss.DRAFT)
    with pytest.raises(IssueStateError):
        ISSUE_MOVES.move(draft, Iss.SENDING, only_from={Iss.PAUSED})
    assert draft.status == Iss.DRAFT
    ISSUE_MOVES.move(draft, Iss.SENDING, only_from={Iss.DRAFT})
    assert draft.status == Iss.SENDING


def test_move_reads_stored_strings() -> None:
    # A status loaded as its plain value still moves by the table.
    record = SimpleNamespace(id=2, status="pending")
    OUTBOX_MOVES.move(record, Out.SENT)
    assert record.status == Out.SENT


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


def test_a_table_must_name_every_state() -> None:
    with pytest.raises(ValueError, match="no moves written for"):
        StateMachine("colour", {Colour.RED: {Colour.GREEN}})
    machine = StateMachine("colour", {Colour.RED: {Colour.GREEN}, Colour.GREEN: set()})
    assert machine.ends() == {Colour.GREEN}
