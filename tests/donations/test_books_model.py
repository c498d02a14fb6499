"""The books are order-independent by construction: a model-based test.

Hypothesis generates gift histories (one-time gifts paid at once, by a delayed method that
settles or fails, expired or abandoned; monthly and yearly plans with renewals, failed
renewals that recover or not, amount changes and cancellations by the donor through the
app, by staff or by Stripe; partial and full refunds; disputes with every closing status;
nightly reconciliation runs). Each history is played twice against the app, with a
`StripeWorld` standing in for Stripe (the only part mocked: Stripe cannot run here, and the
emulator cannot move time):

* in order: every event delivered right after it happened, once;
* shuffled: events delivered in a random order with random duplicates, a random part of
  the backlog between steps, the rest at the end.

Both must give exactly the books a reference model computes straight from the history:
each donation's status, amount, refunded, disputed, net and date; each plan's status,
amount, start and cancellation; one receipt per payment, one failure email per failed
invoice, one opt-in per gift, one confirmation per donor change; nothing left parked. And
the two runs must agree on everything the reports read: the kept summaries (which must also
equal a rebuild from the books) and every dashboard figure.

`make soak` runs it longer (READERSHIP_SOAK=1: more examples, more gifts per history); the
threaded variant delivers from several threads with their own connections on PostgreSQL.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.donations import books_model as model
from tests.donations import stripe_events as se
from webapp.core.clock import FrozenClock
from webapp.db import get_database

SOAK = os.environ.get("READERSHIP_SOAK") == "1"
EXAMPLES = int(os.environ.get("READERSHIP_MODEL_EXAMPLES", 400 if SOAK else 30))
MAX_GIFTS = 6 if SOAK else 3

# The whole run of one property is one test: give the soak run its time.
pytestmark = pytest.mark.timeout(7200 if SOAK else 600)

MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The app and its database are built once per test; each example empties the tables.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=not SOAK,
)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["STRIPE_WEBHOOK_SECRET"] = se.WEBHOOK_SECRET
    # Count what the outbox holds; delivering it is the outbox's own tests' business.
    app_config["DELIVER_EMAIL_IMMEDIATELY"] = False
    return app_config


def books_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: snapshot[key] for key in ("payments", "plans", "failures", "emails")}


def check_run(snapshot: dict[str, Any], reference: dict[str, Any]) -> None:
    assert books_of(snapshot) == reference
    assert snapshot["parked"] == [], "events left parked"
    assert snapshot["receipts_gapless"]
    assert snapshot["summaries"] == snapshot["summaries_rebuilt"]


@MODEL_SETTINGS
@given(
    history=model.histories(max_gifts=MAX_GIFTS),
    seed=st.integers(0, 2**32 - 1),
    forgetful=st.booleans(),
)
def test_any_order_and_duplicates_give_the_books_of_the_history(
    app: Flask, clock: FrozenClock, history: model.History, seed: int, forgetful: bool
) -> None:
    reference = model.expected(model.reference_books(history))

    in_order = model.play(app, clock, history, model.Delivery(None), forgetful=forgetful)
    first = model.snapshot(app, in_order, history)
    assert in_order.webhook_errors == 0
    check_run(first, reference)

    shuffled = model.play(
        app, clock, history, model.Delivery(random.Random(seed)), forgetful=forgetful
    )
    second = model.snapshot(app, shuffled, history)
    assert shuffled.webhook_errors == 0
    check_run(second, reference)
    for key in ("periods", "disputes", "summaries", "dashboard"):
        assert second[key] == first[key], key


@settings(
    max_examples=max(EXAMPLES // 3, 8),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=not SOAK,
)
@given(history=model.histories(max_gifts=MAX_GIFTS), seed=st.integers(0, 2**32 - 1))
def test_concurrent_delivery_gives_the_same_books(
    app: Flask, clock: FrozenClock, history: model.History, seed: int
) -> None:
    """Four threads with their own connections deliver each batch at once, duplicates and
    all; answers other than 200 (a deadlock PostgreSQL broke, SQLite busy) are delivered
    again, as Stripe retries."""
    if not get_database(app).is_postgres:
        pytest.skip("concurrent writers race for real only on PostgreSQL")
    reference = model.expected(model.reference_books(history))
    in_order = model.play(app, clock, history, model.Delivery(None))
    first = model.snapshot(app, in_order, history)
    check_run(first, reference)
    raced = model.play(
        app,
        clock,
        history,
        model.Delivery(random.Random(seed), 0.5),
        deliver=model.threaded_delivery(app, threads=4),
    )
    second = model.snapshot(app, raced, history)
    check_run(second, reference)
    for key in ("periods", "disputes", "summaries", "dashboard"):
        assert second[key] == first[key], key
