"""Every status table in one place: each feature's `StateMachine` allows exactly the moves
written here, and `move` refuses everything else without touching the record."""

from __future__ import annotations

import enum
import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.core.states import IllegalMove, StateMachine
from webapp.digests.lifecycle import DELIVERY_MOVES, ISSUE_MOVES, IssueStateError
from webapp.digests.models import DeliveryStatus, IssueStatus
from webapp.donations.models import (
    DISPUTE_MOVES,
    DONATION_MOVES,
    PLAN_MOVES,
    Dispute,
    DisputeStatus,
    Donation,
    DonationStatus,
    IllegalDisputeMove,
    IllegalDonationMove,
    IllegalPlanMove,
    Plan,
    PlanStatus,
)
from webapp.donations.services import (
    advance_dispute,
    advance_donation,
    advance_plan,
    earliest,
)
from webapp.outbox.models import OUTBOX_MOVES, InvalidTransition, OutboxStatus
from webapp.subscribers.models import (
    IMPORT_MOVES,
    SUBSCRIBER_MOVES,
    ImportJob,
    ImportStatus,
    Subscriber,
    SubscriberStatus,
    change_import_status,
    change_status,
)
from webapp.subscribers.models import InvalidTransition as SubscriberInvalidTransition

Out, Iss, Dlv = OutboxStatus, IssueStatus, DeliveryStatus
Don, Pl, Dsp = DonationStatus, PlanStatus, DisputeStatus
Sub, Imp = SubscriberStatus, ImportStatus

#: (table, the moves it must allow, the error it raises). Written out by hand on purpose:
#: a change to a table has to change this list too.
TABLES = [
    (
        OUTBOX_MOVES,
        {
            (Out.PENDING, Out.PENDING),
            (Out.PENDING, Out.SENT),
            (Out.PENDING, Out.FAILED),
            (Out.FAILED, Out.PENDING),
        },
        InvalidTransition,
    ),
    (
        ISSUE_MOVES,
        {
            (Iss.DRAFT, Iss.SENDING),
            (Iss.SENDING, Iss.PAUSED),
            (Iss.SENDING, Iss.SENT),
            (Iss.PAUSED, Iss.SENDING),
        },
        IssueStateError,
    ),
    (
        DELIVERY_MOVES,
        {
            (Dlv.PENDING, Dlv.PENDING),
            (Dlv.PENDING, Dlv.SENT),
            (Dlv.PENDING, Dlv.FAILED),
            (Dlv.PENDING, Dlv.SKIPPED),
        },
        IllegalMove,
    ),
    (
        # Only forward: pending, processing, expired, failed, paid (paid is the end).
        DONATION_MOVES,
        {
            (Don.PENDING, Don.PROCESSING),
            (Don.PENDING, Don.EXPIRED),
            (Don.PENDING, Don.FAILED),
            (Don.PENDING, Don.PAID),
            (Don.PROCESSING, Don.EXPIRED),
            (Don.PROCESSING, Don.FAILED),
            (Don.PROCESSING, Don.PAID),
            (Don.EXPIRED, Don.FAILED),
            (Don.EXPIRED, Don.PAID),
            (Don.FAILED, Don.PAID),
        },
        IllegalDonationMove,
    ),
    (
        PLAN_MOVES,
        {
            (Pl.INCOMPLETE, Pl.ACTIVE),
            (Pl.INCOMPLETE, Pl.PAST_DUE),
            (Pl.INCOMPLETE, Pl.CANCELED),
            (Pl.ACTIVE, Pl.PAST_DUE),
            (Pl.ACTIVE, Pl.CANCELED),
            (Pl.PAST_DUE, Pl.ACTIVE),
            (Pl.PAST_DUE, Pl.CANCELED),
        },
        IllegalPlanMove,
    ),
    (
        # Open ones (warning_needs_response, warning_under_review, needs_response,
        # under_review) go anywhere; closed ones (warning_closed, won, lost, prevented)
        # only to another closed one.
        DISPUTE_MOVES,
        {
            (a, b)
            for a in (
                Dsp.WARNING_NEEDS_RESPONSE,
                Dsp.WARNING_UNDER_REVIEW,
                Dsp.NEEDS_RESPONSE,
                Dsp.UNDER_REVIEW,
            )
            for b in (
                Dsp.WARNING_NEEDS_RESPONSE,
                Dsp.WARNING_UNDER_REVIEW,
                Dsp.WARNING_CLOSED,
                Dsp.NEEDS_RESPONSE,
                Dsp.UNDER_REVIEW,
                Dsp.WON,
                Dsp.LOST,
                Dsp.PREVENTED,
            )
            if a != b
        }
        | {
            (a, b)
            for a in (Dsp.WARNING_CLOSED, Dsp.WON, Dsp.LOST, Dsp.PREVENTED)
            for b in (Dsp.WARNING_CLOSED, Dsp.WON, Dsp.LOST, Dsp.PREVENTED)
            if a != b
        },
        IllegalDisputeMove,
    ),
    (
        SUBSCRIBER_MOVES,
        {
            (Sub.PENDING, Sub.CONFIRMED),
            (Sub.PENDING, Sub.UNSUBSCRIBED),
            (Sub.PENDING, Sub.BOUNCED),
            (Sub.CONFIRMED, Sub.UNSUBSCRIBED),
            (Sub.CONFIRMED, Sub.BOUNCED),
            (Sub.UNSUBSCRIBED, Sub.CONFIRMED),
            (Sub.UNSUBSCRIBED, Sub.BOUNCED),
            (Sub.BOUNCED, Sub.CONFIRMED),
            (Sub.BOUNCED, Sub.UNSUBSCRIBED),
        },
        SubscriberInvalidTransition,
    ),
    (
        IMPORT_MOVES,
        {
            (Imp.QUEUED, Imp.RUNNING),
            (Imp.QUEUED, Imp.FAILED),
            (Imp.RUNNING, Imp.FINISHED),
            (Imp.RUNNING, Imp.FAILED),
        },
        SubscriberInvalidTransition,
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


def test_both_ways_names_the_peers() -> None:
    # Plans decide between peers by time; a one-way move is forward and always wins.
    assert PLAN_MOVES.both_ways(Pl.ACTIVE, Pl.PAST_DUE)
    assert PLAN_MOVES.both_ways(Pl.PAST_DUE, Pl.ACTIVE)
    assert PLAN_MOVES.both_ways(Pl.CANCELED, Pl.CANCELED)
    assert not PLAN_MOVES.both_ways(Pl.INCOMPLETE, Pl.ACTIVE)
    assert not PLAN_MOVES.both_ways(Pl.ACTIVE, Pl.CANCELED)
    assert not DONATION_MOVES.both_ways(Don.PENDING, Don.PAID)


# --- The moving functions: each goes through its table ----------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
#: The donation life cycle in order, written out by hand (the table must agree).
DONATION_ORDER = [Don.PENDING, Don.PROCESSING, Don.EXPIRED, Don.FAILED, Don.PAID]


@pytest.mark.parametrize("current", list(Don))
@pytest.mark.parametrize("target", list(Don))
def test_advance_donation_moves_only_forward(current: Don, target: Don) -> None:
    donation = Donation(status=current, updated_at=T0)
    moved = advance_donation(donation, target, now=LATER)
    forward = DONATION_ORDER.index(target) > DONATION_ORDER.index(current)
    assert moved is forward
    assert donation.status == (target if forward else current)
    assert donation.updated_at == (LATER if forward else T0), "an ignored step changes nothing"


def test_advance_donation_ends_on_the_furthest_status_in_any_order() -> None:
    # The books apply Stripe's events in arrival order (issue 11): any order ends the same.
    for events in itertools.product(list(Don), repeat=3):
        donation = Donation(status=Don.PENDING, updated_at=T0)
        for status in events:
            advance_donation(donation, status, now=LATER)
        assert donation.status == max((Don.PENDING, *events), key=DONATION_ORDER.index), events


#: The ordering `advance_plan` had before its table, written out by hand: a plan ends on
#: the state with the highest (rank, event time, precedence).
PLAN_RANK = {Pl.INCOMPLETE: 0, Pl.ACTIVE: 1, Pl.PAST_DUE: 1, Pl.CANCELED: 2}
PLAN_PRECEDENCE = {Pl.INCOMPLETE: 0, Pl.PAST_DUE: 1, Pl.ACTIVE: 2, Pl.CANCELED: 3}


def _plan_by_rank(plan: Plan, status: Pl, state_at: datetime, now: datetime) -> bool:
    """`advance_plan` as it was written before `PLAN_MOVES`: the oracle for its table."""
    if status == Pl.CANCELED:
        plan.canceled_at = earliest(plan.canceled_at, state_at)
    if status == Pl.ACTIVE:
        plan.started_at = earliest(plan.started_at, state_at)
    current = Pl(plan.status)
    known_at = plan.stripe_state_at
    if known_at is not None and (PLAN_RANK[status], state_at, PLAN_PRECEDENCE[status]) <= (
        PLAN_RANK[current],
        known_at,
        PLAN_PRECEDENCE[current],
    ):
        return False
    if known_at is None and PLAN_RANK[status] < PLAN_RANK[current]:
        return False
    plan.stripe_state_at = state_at
    plan.updated_at = now
    if status == current:
        return False
    plan.status = status
    return True


def _plan(status: Pl, known_at: datetime | None) -> Plan:
    return Plan(
        status=status, stripe_state_at=known_at, updated_at=None, started_at=None, canceled_at=None
    )


def _plan_fields(plan: Plan) -> tuple[object, ...]:
    return (
        Pl(plan.status),
        plan.stripe_state_at,
        plan.updated_at,
        plan.started_at,
        plan.canceled_at,
    )


@pytest.mark.parametrize("current", list(Pl))
@pytest.mark.parametrize("target", list(Pl))
def test_advance_plan_keeps_the_rank_time_precedence_order(current: Pl, target: Pl) -> None:
    # Every pair of states, with the stored state's time unknown, older, the same or newer.
    for known_at in (None, T0):
        for state_at in (T0 - timedelta(seconds=1), T0, T0 + timedelta(seconds=1)):
            expected, actual = _plan(current, known_at), _plan(current, known_at)
            moved_before = _plan_by_rank(expected, target, state_at, LATER)
            moved = advance_plan(actual, target, state_at=state_at, now=LATER)
            case = (current, target, known_at, state_at)
            assert moved is moved_before, case
            assert _plan_fields(actual) == _plan_fields(expected), case


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Pl)), st.integers(0, 3)), min_size=1, max_size=5))
def test_advance_plan_ends_the_same_in_any_order(events: list[tuple[Pl, int]]) -> None:
    ends = set()
    for order in (events, list(reversed(events)), sorted(events)):
        plan = _plan(Pl.INCOMPLETE, None)
        for status, second in order:
            advance_plan(plan, status, state_at=T0 + timedelta(seconds=second), now=LATER)
        ends.add((Pl(plan.status), plan.stripe_state_at, plan.started_at, plan.canceled_at))
    assert len(ends) == 1, ends


#: The dispute ordering before its table, by hand: closed ones rank above open ones, then
#: the event's time, then the order of Stripe's statuses.
DISPUTE_CLOSED = {Dsp.WARNING_CLOSED, Dsp.WON, Dsp.LOST, Dsp.PREVENTED}
DISPUTE_PRECEDENCE = {
    Dsp.WARNING_NEEDS_RESPONSE: 0,
    Dsp.WARNING_UNDER_REVIEW: 1,
    Dsp.WARNING_CLOSED: 2,
    Dsp.NEEDS_RESPONSE: 3,
    Dsp.UNDER_REVIEW: 4,
    Dsp.WON: 5,
    Dsp.LOST: 6,
    Dsp.PREVENTED: 7,
}


def _dispute_key(status: Dsp, at: datetime) -> tuple[int, datetime, int]:
    return (1 if status in DISPUTE_CLOSED else 0, at, DISPUTE_PRECEDENCE[status])


@pytest.mark.parametrize("current", list(Dsp))
@pytest.mark.parametrize("target", list(Dsp))
def test_advance_dispute_keeps_the_rank_time_precedence_order(current: Dsp, target: Dsp) -> None:
    for state_at in (T0 - timedelta(seconds=1), T0, T0 + timedelta(seconds=1)):
        dispute = Dispute(id="dp_1", status=current, amount_minor=100, state_at=T0)
        applies = _dispute_key(target, state_at) > _dispute_key(current, T0)
        moved = advance_dispute(dispute, target, amount_minor=250, state_at=state_at)
        case = (current, target, state_at)
        assert moved is applies, case
        assert (dispute.status, dispute.amount_minor, dispute.state_at) == (
            (target, 250, state_at) if applies else (current, 100, T0)
        ), case


def _subscriber(status: Sub) -> Subscriber:
    return Subscriber(
        id=7, status=status, paused=True, paused_at=T0, confirmed_at=T0, unsubscribed_at=None
    )


@pytest.mark.parametrize("current", list(Sub))
@pytest.mark.parametrize("target", list(Sub))
def test_change_status_moves_by_the_table_and_stamps(current: Sub, target: Sub) -> None:
    subscriber = _subscriber(current)
    before = (
        subscriber.status,
        subscriber.paused,
        subscriber.paused_at,
        subscriber.confirmed_at,
        subscriber.unsubscribed_at,
    )
    if current == target:
        assert change_status(subscriber, target, now=LATER) is False, "same status: no move"
    elif SUBSCRIBER_MOVES.allows(current, target):
        assert change_status(subscriber, target, now=LATER) is True
        assert subscriber.status == target
        if target == Sub.CONFIRMED:
            assert (subscriber.confirmed_at, subscriber.paused, subscriber.paused_at) == (
                LATER,
                False,
                None,
            ), "confirming stamps the time and clears a pause"
        else:
            assert (subscriber.confirmed_at, subscriber.paused) == (T0, True)
        assert subscriber.unsubscribed_at == (LATER if target == Sub.UNSUBSCRIBED else None)
        return
    else:
        with pytest.raises(SubscriberInvalidTransition, match="subscriber 7 is"):
            change_status(subscriber, target, now=LATER)
    after = (
        subscriber.status,
        subscriber.paused,
        subscriber.paused_at,
        subscriber.confirmed_at,
        subscriber.unsubscribed_at,
    )
    assert after == before, "no move, nothing stamped"


@pytest.mark.parametrize("current", list(Imp))
@pytest.mark.parametrize("target", list(Imp))
def test_change_import_status_moves_by_the_table_and_stamps(current: Imp, target: Imp) -> None:
    job = ImportJob(id=3, status=current, started_at=None, finished_at=None)
    if not IMPORT_MOVES.allows(current, target):
        with pytest.raises(SubscriberInvalidTransition, match="import 3 is"):
            change_import_status(job, target, now=LATER)
        assert (job.status, job.started_at, job.finished_at) == (current, None, None)
        return
    change_import_status(job, target, now=LATER)
    assert job.status == target
    if target == Imp.RUNNING:
        assert (job.started_at, job.finished_at) == (LATER, None)
    else:
        assert (job.started_at, job.finished_at) == (None, LATER)


def test_the_old_exception_names_are_the_tables_errors() -> None:
    # Callers catch these by their old names (the staff page answers 409 for one).
    assert issubclass(SubscriberInvalidTransition, IllegalMove)
    assert issubclass(SubscriberInvalidTransition, ValueError)
    assert SUBSCRIBER_MOVES.error is SubscriberInvalidTransition
    assert IMPORT_MOVES.error is SubscriberInvalidTransition
    assert issubclass(IllegalDonationMove, IllegalMove)
    assert issubclass(IllegalPlanMove, IllegalMove)
    assert issubclass(IllegalDisputeMove, IllegalMove)
