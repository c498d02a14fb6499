"""Gift histories, their reference books, and a driver that plays a history against the app.

A *history* is a timeline of steps: readers open checkouts through the app, Stripe does
what Stripe does (payments, delayed methods, renewals, failures and retries, refunds,
disputes with every closing status, cancellations by Stripe or staff in the Dashboard),
donors act through the app's self-service (change the amount, cancel) and the nightly
reconciliation runs. `reference_books` computes, straight from the history, what the books
must say. `play` runs the history against the app with a `StripeWorld` standing in for
Stripe, delivering the events it emits either in order or shuffled with duplicates
(interleaved with the steps), and `snapshot` reads back the books, the emails, the kept
report summaries and the dashboard, keyed by Stripe ids so two runs compare.

Used by tests/donations/test_books_model.py (and its longer soak run).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.donations import stripe_events as se
from tests.donations.stripe_world import DAY, StripeWorld, at
from webapp.core.clock import FrozenClock, as_utc
from webapp.db import Base, get_database
from webapp.donations import selfservice
from webapp.donations.books import books_context
from webapp.donations.checkout import GiftRequest, start_checkout
from webapp.donations.models import (
    Dispute,
    Donation,
    Frequency,
    Plan,
    PlanFailure,
    StripeEvent,
)
from webapp.donations.reconcile import reconcile_stripe
from webapp.donations.services import donation_config
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import OutboxMessage
from webapp.reports import summary
from webapp.reports.dashboard import build_dashboard
from webapp.reports.rates import Rates

#: The first step's time, and the time between steps: renewals and months both happen.
START = int(datetime(2026, 1, 5, 10, 0).timestamp())
STEP = 9 * DAY

DISPUTE_PATHS = [
    ("needs_response", "under_review", "won"),
    ("needs_response", "under_review", "lost"),
    ("needs_response", "lost"),
    ("needs_response",),
    ("needs_response", "under_review"),
    ("warning_needs_response", "warning_under_review", "warning_closed"),
    ("warning_needs_response", "warning_closed"),
    ("warning_needs_response",),
    ("warning_needs_response", "prevented"),
]
WITHDRAWN = {"needs_response", "under_review", "lost"}
AMOUNTS = [500, 1000, 1500, 2500, 5000]


@dataclass(frozen=True)
class Gift:
    """One gift's fixed facts."""

    index: int
    interval: str | None  # None: one time; "month" / "year"
    amount: int
    currency: str
    wants_newsletter: bool

    @property
    def email(self) -> str:
        return f"giver{self.index}@model.example"


Step = tuple[Any, ...]


@dataclass
class History:
    """The gifts and the timeline of steps (each step at `START + (i + 1) * STEP`)."""

    gifts: list[Gift]
    steps: list[Step]

    def time_of(self, position: int) -> int:
        return START + (position + 1) * STEP


# --- generating histories ------------------------------------------------------------------


@st.composite
def _money_back(draw: Any, gift: int, payment: int, amount: int) -> list[Step]:
    kind = draw(st.sampled_from(["none", "none", "refund", "dispute"]))
    if kind == "refund":
        parts = draw(st.lists(st.integers(1, amount), min_size=1, max_size=3))
        return [("refund", gift, payment, part) for part in parts]
    if kind == "dispute":
        path = draw(st.sampled_from(DISPUTE_PATHS))
        return [("dispute", gift, payment, status) for status in path]
    return []


@st.composite
def _one_time_script(draw: Any, gift: Gift) -> list[Step]:
    g = gift.index
    steps: list[Step] = [("open", g)]
    outcome = draw(
        st.sampled_from(
            ["paid", "paid", "paid", "delayed_paid", "delayed_failed", "expired", "abandoned"]
        )
    )
    if outcome == "paid":
        steps.append(("pay", g))
    elif outcome.startswith("delayed"):
        steps += [("pay_delayed", g), ("settle", g, outcome == "delayed_paid")]
    elif outcome == "expired":
        steps.append(("expire", g))
    if outcome in ("paid", "delayed_paid"):
        steps += draw(_money_back(g, 0, gift.amount))
    return steps


@st.composite
def _recurring_script(draw: Any, gift: Gift) -> list[Step]:
    g = gift.index
    steps: list[Step] = [("open", g)]
    if draw(st.integers(0, 9)) == 0:
        return steps + [("expire", g)]
    steps.append(("pay", g))
    paid = [0]  # invoice positions of paid payments
    invoices = 1
    amount = gift.amount
    charged = {0: amount}
    for _cycle in range(draw(st.integers(0, 4))):
        action = draw(
            st.sampled_from(
                ["none", "none", "none", "amount", "donor_cancel", "staff_cancel", "period_end"]
            )
        )
        if action == "amount":
            amount = draw(st.sampled_from([a for a in AMOUNTS if a != amount]))
            steps.append(("donor_amount", g, amount))
        elif action in ("donor_cancel", "staff_cancel"):
            steps.append((action, g))
            break
        elif action == "period_end":
            steps += [("period_end", g), ("stripe_cancel", g)]
            break
        if draw(st.booleans()) or draw(st.booleans()):
            steps.append(("renew", g))
            paid.append(invoices)
            charged[invoices] = amount
            invoices += 1
            continue
        steps.append(("fail", g))
        failed = invoices
        charged[failed] = amount
        invoices += 1
        steps += [("retry_fail", g)] * draw(st.integers(0, 2))
        ending = draw(st.sampled_from(["recover", "recover", "give_up", "stay"]))
        if ending == "recover":
            steps.append(("retry_pay", g))
            paid.append(failed)
        elif ending == "give_up":
            steps.append(("stripe_cancel", g))
            break
        else:
            break  # the history ends with the plan past due
    for position in paid:
        steps += draw(_money_back(g, position, charged[position]))
    return steps


@st.composite
def histories(draw: Any, max_gifts: int = 3) -> History:
    """A few gifts' scripts interleaved into one timeline, with reconciliation runs."""
    count = draw(st.integers(1, max_gifts))
    gifts = [
        Gift(
            index=i,
            interval=draw(st.sampled_from([None, None, "month", "month", "year"])),
            amount=draw(st.sampled_from(AMOUNTS)),
            currency=draw(st.sampled_from(["EUR", "EUR", "USD"])),
            wants_newsletter=draw(st.booleans()),
        )
        for i in range(count)
    ]
    scripts = [
        draw(_recurring_script(gift) if gift.interval else _one_time_script(gift)) for gift in gifts
    ]
    steps: list[Step] = []
    while any(scripts):
        live = [i for i, script in enumerate(scripts) if script]
        chosen = live[draw(st.integers(0, len(live) - 1))]
        steps.append(scripts[chosen].pop(0))
        if draw(st.integers(0, 7)) == 0:
            steps.append(("reconcile",))
    return History(gifts, steps)


# --- the reference books -------------------------------------------------------------------


@dataclass
class PaymentModel:
    amount: int
    currency: str
    paid_at: int | None = None
    status: str = "pending"
    refunded: int = 0
    dispute: str | None = None

    @property
    def disputed(self) -> int:
        return self.amount if self.dispute in WITHDRAWN and self.status == "paid" else 0

    def books(self) -> dict[str, Any]:
        paid = self.status == "paid"
        refunded = min(self.refunded, self.amount)
        return {
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "refunded": refunded,
            "disputed": self.disputed,
            "net": max(self.amount - refunded - self.disputed, 0) if paid else None,
            "paid_at": self.paid_at,
            "numbered": paid,
        }


@dataclass
class PlanModel:
    amount: int
    currency: str
    interval: str
    started_at: int
    status: str = "active"
    canceled_at: int | None = None
    cancel_at_period_end: bool = False
    failures: dict[int, int] = field(default_factory=dict)  # invoice position -> first fail
    fail_times: list[int] = field(default_factory=list)

    def books(self, paid_times: list[int]) -> dict[str, Any]:
        latest_fail = max(self.fail_times, default=None)
        last_failed = (
            latest_fail
            if latest_fail is not None and latest_fail > max(paid_times, default=0)
            else None
        )
        return {
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "interval": self.interval,
            "started_at": self.started_at,
            "canceled_at": self.canceled_at,
            "cancel_at_period_end": self.cancel_at_period_end,
            "last_failed_at": last_failed,
        }


@dataclass
class ReferenceBooks:
    """What the books must say, keyed by (gift, invoice position) and gift."""

    payments: dict[tuple[int, int], dict[str, Any]]
    plans: dict[int, dict[str, Any]]
    failures: dict[tuple[int, int], int]
    emails: Counter[str]


def reference_books(history: History) -> ReferenceBooks:
    """Fold the history into the books it must give (no app code involved)."""
    payments: dict[tuple[int, int], PaymentModel] = {}
    plans: dict[int, PlanModel] = {}
    invoices: dict[int, int] = {}  # gift -> invoices so far
    open_failure: dict[int, int] = {}
    delayed_at: dict[int, int] = {}
    emails: Counter[str] = Counter()
    gifts = {gift.index: gift for gift in history.gifts}
    for position, step in enumerate(history.steps):
        now = history.time_of(position)
        action, g = step[0], (step[1] if len(step) > 1 else None)
        gift = gifts.get(g) if g is not None else None
        if action == "open" and gift is not None:
            payments[(g, 0)] = PaymentModel(gift.amount, gift.currency)
        elif action == "pay" and gift is not None:
            payment = payments[(g, 0)]
            payment.status, payment.paid_at = "paid", now
            emails["donation_receipt"] += 1
            if gift.wants_newsletter:
                emails["confirm_subscription"] += 1
            if gift.interval:
                plans[g] = PlanModel(gift.amount, gift.currency, gift.interval, now)
                invoices[g] = 1
        elif action == "pay_delayed":
            payments[(g, 0)].status = "processing"
            delayed_at[g] = now
        elif action == "settle" and gift is not None:
            payment = payments[(g, 0)]
            if step[2]:
                # A gift is dated when the donor paid at Checkout, not when the bank
                # settled a delayed method days later.
                payment.status, payment.paid_at = "paid", delayed_at[g]
                emails["donation_receipt"] += 1
                if gift.wants_newsletter:
                    emails["confirm_subscription"] += 1
            else:
                payment.status = "failed"
        elif action == "expire":
            payments[(g, 0)].status = "expired"
        elif action == "renew":
            plan = plans[g]
            payments[(g, invoices[g])] = PaymentModel(plan.amount, plan.currency, now, "paid")
            invoices[g] += 1
            emails["donation_receipt"] += 1
            if plan.status == "past_due":  # pragma: no cover - scripts renew only when paying
                plan.status = "active"
        elif action == "fail":
            plan = plans[g]
            open_failure[g] = invoices[g]
            payments[(g, invoices[g])] = PaymentModel(plan.amount, plan.currency)
            plan.failures[invoices[g]] = now
            plan.fail_times.append(now)
            plan.status = "past_due"
            invoices[g] += 1
            emails["donation_payment_failed"] += 1
        elif action == "retry_fail":
            plans[g].fail_times.append(now)
        elif action == "retry_pay":
            payment = payments[(g, open_failure.pop(g))]
            payment.status, payment.paid_at = "paid", now
            plans[g].status = "active"
            emails["donation_receipt"] += 1
        elif action == "donor_amount":
            plans[g].amount = step[2]
            emails["donation_plan_changed"] += 1
        elif action in ("donor_cancel", "staff_cancel", "stripe_cancel"):
            plan = plans[g]
            plan.status, plan.canceled_at = "canceled", now
            if action == "donor_cancel":
                emails["donation_plan_changed"] += 1
        elif action == "period_end":
            plans[g].cancel_at_period_end = True
        elif action == "refund":
            payments[(g, step[2])].refunded += step[3]
        elif action == "dispute":
            payments[(g, step[2])].dispute = step[3]
    unpaid_renewals = {key for key, p in payments.items() if key[1] > 0 and p.status != "paid"}
    return ReferenceBooks(
        payments={
            key: payment.books()
            for key, payment in payments.items()
            if key not in unpaid_renewals  # a failed renewal is no donation
        },
        plans={
            g: plan.books(
                [p.paid_at for (pg, _), p in payments.items() if pg == g and p.paid_at is not None]
            )
            for g, plan in plans.items()
        },
        failures={
            (g, position): first
            for g, plan in plans.items()
            for position, first in plan.failures.items()
        },
        emails=emails,
    )


# --- playing a history against the app ------------------------------------------------------


@dataclass
class Run:
    """One play of a history: the world, and how its gifts map to Stripe ids."""

    world: StripeWorld
    sessions: dict[int, str] = field(default_factory=dict)
    webhook_errors: int = 0

    def subscription(self, gift: int) -> str | None:
        session = self.world.sessions.get(self.sessions.get(gift, ""))
        return session["subscription"] if session else None

    def invoice_ids(self, gift: int) -> list[str]:
        sub = self.subscription(gift)
        return list(self.world.subscriptions[sub]["invoices"]) if sub else []


class Delivery:
    """How events reach the app: `in_order` right after each step, or shuffled with
    duplicates, a random part of the backlog delivered between steps."""

    def __init__(self, rng: random.Random | None, duplicates: float = 0.25) -> None:
        self.rng = rng
        self.duplicates = duplicates
        self.pool: list[dict[str, Any]] = []

    @property
    def in_order(self) -> bool:
        return self.rng is None

    def add(self, events: list[dict[str, Any]]) -> None:
        for evt in events:
            self.pool.append(evt)
            if self.rng is not None and self.rng.random() < self.duplicates:
                self.pool.append(evt)

    def take_some(self) -> list[dict[str, Any]]:
        if self.rng is None:
            taken, self.pool = self.pool, []
            return taken
        self.rng.shuffle(self.pool)
        count = self.rng.randint(0, len(self.pool))
        taken, self.pool = self.pool[:count], self.pool[count:]
        return taken

    def take_all(self) -> list[dict[str, Any]]:
        if self.rng is not None:
            self.rng.shuffle(self.pool)
        taken, self.pool = self.pool, []
        return taken


def empty_database(app: Flask) -> None:
    """Every table emptied (the summaries included), as a fresh install."""
    with get_database(app).engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def post(client: Any, evt: dict[str, Any]) -> int:
    return int(se.post_event(client, evt).status_code)


def play(
    app: Flask,
    clock: FrozenClock,
    history: History,
    delivery: Delivery,
    *,
    deliver: Callable[[list[dict[str, Any]]], int] | None = None,
    forgetful: bool = False,
) -> Run:
    """Play `history` against `app` (its tables emptied first); returns the run's ids.

    `deliver` posts a batch of events and returns how many must be retried (the threaded
    variant); by default they are posted one by one with the app's test client.
    """
    empty_database(app)
    world = StripeWorld(now=START)
    app.extensions["stripe_gateway"] = world
    run = Run(world)
    client = app.test_client()
    gifts = {gift.index: gift for gift in history.gifts}
    config = donation_config(app.config)
    database = get_database(app)
    backlog: list[dict[str, Any]] = []

    def send(events: list[dict[str, Any]]) -> None:
        nonlocal backlog
        batch = backlog + events
        backlog = []
        if deliver is not None:
            failed = deliver(batch)
            run.webhook_errors += failed
            return
        for evt in batch:
            status = post(client, evt)
            if status != 200:
                run.webhook_errors += 1
                backlog.append(evt)  # Stripe retries

    def plan_of(g: int) -> int:
        """The app's plan for gift g; the donor has their receipt (and link) only once the
        first payment reached the app, so deliver its checkout event if it has not."""
        sub = run.subscription(g)
        with database.session() as session:
            plan_id = session.scalar(select(Plan.id).where(Plan.stripe_subscription_id == sub))
        if plan_id is None:
            completed = next(
                evt
                for evt in world.events
                if evt["type"] == "checkout.session.completed"
                and evt["data"]["object"]["id"] == run.sessions[g]
            )
            send([completed])
            with database.session() as session:
                plan_id = session.scalar(select(Plan.id).where(Plan.stripe_subscription_id == sub))
        assert plan_id is not None
        return int(plan_id)

    for position, step in enumerate(history.steps):
        world.now = history.time_of(position)
        clock.current = at(world.now)
        seen = len(world.events)
        action = step[0]
        g = step[1] if len(step) > 1 else None
        sub = run.subscription(g) if g is not None else None
        if action == "open":
            gift = gifts[g]
            with database.session() as session:
                start_checkout(
                    session,
                    world,
                    GiftRequest(
                        email=gift.email,
                        name=f"Giver {g}",
                        language="en",
                        frequency=Frequency(gift.interval or "one_time"),
                        gift_minor=gift.amount,
                        fee_minor=0,
                        currency=gift.currency,
                        checkout_token=f"token-{g}-{position}",
                        wants_newsletter=gift.wants_newsletter,
                    ),
                    config=config,
                    publication="Model Review",
                    now=clock.now(),
                )
                session.commit()
            run.sessions[g] = next(reversed(world.sessions))
        elif action in ("pay", "pay_delayed"):
            world.complete_checkout(run.sessions[g], delayed=action == "pay_delayed")
            if forgetful and sub is None:
                sub = run.subscription(g)
                if sub:
                    world.forgetful_invoices.update(world.subscriptions[sub]["invoices"])
        elif action == "settle":
            world.settle_delayed(run.sessions[g], succeeded=bool(step[2]))
        elif action == "expire":
            world.expire_checkout(run.sessions[g])
        elif action == "renew":
            invoice = world.renew(str(sub))
            if forgetful:
                world.forgetful_invoices.add(invoice)
        elif action == "fail":
            world.fail_renewal(str(sub))
        elif action == "retry_fail":
            world.retry_fails(run.invoice_ids(g)[-1])
        elif action == "retry_pay":
            world.retry_pays(run.invoice_ids(g)[-1])
        elif action in ("stripe_cancel", "staff_cancel"):
            world.cancel_by_stripe(str(sub))
        elif action == "period_end":
            world.cancel_at_period_end(str(sub))
        elif action in ("donor_amount", "donor_cancel"):
            plan_id = plan_of(g)
            with database.session() as session:
                if action == "donor_amount":
                    selfservice.change_plan_amount(
                        session,
                        world,
                        get_mailer(app),
                        plan_id,
                        int(step[2]),
                        request_token=f"change-{position}",
                        config=config,
                        now=clock.now(),
                    )
                else:
                    selfservice.cancel_plan(
                        session,
                        world,
                        get_mailer(app),
                        plan_id,
                        config=config,
                        now=clock.now(),
                    )
        elif action == "refund":
            charge = _charge(run, gifts[g], step[2])
            world.refund(charge, int(step[3]))
        elif action == "dispute":
            charge = _charge(run, gifts[g], step[2])
            world.dispute(charge, str(step[3]))
        elif action == "reconcile":
            with app.app_context():
                reconcile_stripe(
                    database,
                    world,
                    lambda: books_context(app, clock.now()),
                    now=clock.now(),
                    lookback=timedelta(days=3650),
                )
        delivery.add(world.events[seen:])
        send(delivery.take_some())
    world.now += STEP
    clock.current = at(world.now)
    for _attempt in range(20):
        send(delivery.take_all())
        if not backlog:
            break
        delivery.add(backlog)
        backlog = []
    return run


def _charge(run: Run, gift: Gift, position: int) -> str:
    if gift.interval is None:
        return run.world.charge_of_payment(session_id=run.sessions[gift.index])
    return run.world.charge_of_payment(invoice_id=run.invoice_ids(gift.index)[position])


def threaded_delivery(app: Flask, threads: int) -> Callable[[list[dict[str, Any]]], int]:
    """Deliver a batch from `threads` threads at once, each with its own client (and so
    its own database connection); returns how many answers were not 200 (re-delivered
    until they are, as Stripe does)."""

    def deliver(batch: list[dict[str, Any]]) -> int:
        failures = 0
        lock = threading.Lock()
        queue = list(batch)

        def work() -> None:
            nonlocal failures
            client = app.test_client()
            while True:
                with lock:
                    if not queue:
                        return
                    evt = queue.pop()
                if post(client, evt) != 200:
                    with lock:
                        failures += 1
                        queue.insert(0, evt)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return failures

    return deliver


# --- reading the books back ------------------------------------------------------------------


def _ts(moment: datetime | None) -> int | None:
    return int(as_utc(moment).timestamp()) if moment else None


def snapshot(app: Flask, run: Run, history: History) -> dict[str, Any]:
    """The books as the app has them, keyed like `reference_books` (gift, invoice
    position), plus what must also agree between runs: emails, parked events, the kept
    summaries (with ids replaced by Stripe ids) and every dashboard figure."""
    database = get_database(app)
    by_invoice: dict[str, tuple[int, int]] = {}
    for gift in history.gifts:
        for position, invoice in enumerate(run.invoice_ids(gift.index)):
            by_invoice[invoice] = (gift.index, position)
    by_session = {session_id: g for g, session_id in run.sessions.items()}
    with database.session() as session:
        payments: dict[tuple[int, int], dict[str, Any]] = {}
        for d in session.scalars(select(Donation)):
            if d.stripe_invoice_id in by_invoice:
                key = by_invoice[d.stripe_invoice_id]
            else:
                key = (by_session[str(d.stripe_checkout_session_id)], 0)
            assert key not in payments, f"two donations for {key}"
            paid = d.status == "paid"
            payments[key] = {
                "status": str(d.status),
                "amount": d.amount_minor,
                "currency": d.currency,
                "refunded": d.refunded_minor,
                "disputed": d.disputed_minor,
                "net": d.net_minor if paid else None,
                "paid_at": _ts(d.paid_at),
                "numbered": d.receipt_seq is not None,
            }
        subs = {run.subscription(g.index): g.index for g in history.gifts}
        plans = {
            subs[p.stripe_subscription_id]: {
                "status": str(p.status),
                "amount": p.amount_minor,
                "currency": p.currency,
                "interval": str(p.interval),
                "started_at": _ts(p.started_at),
                "canceled_at": _ts(p.canceled_at),
                "cancel_at_period_end": p.cancel_at_period_end,
                "last_failed_at": _ts(p.last_failed_at),
            }
            for p in session.scalars(select(Plan))
        }
        failures = {
            by_invoice[f.stripe_invoice_id]: _ts(f.failed_at)
            for f in session.scalars(select(PlanFailure))
        }
        emails = Counter(session.scalars(select(OutboxMessage.purpose)))
        parked = session.scalars(
            select(StripeEvent.outcome).where(StripeEvent.parked.is_(True))
        ).all()
        periods = {
            subs[p.stripe_subscription_id]: _ts(p.current_period_end)
            for p in session.scalars(select(Plan))
        }
        disputes = sorted((str(d.status), d.amount_minor) for d in session.scalars(select(Dispute)))
        receipts = sorted(n for n in session.scalars(select(Donation.receipt_seq)) if n is not None)
        summaries = _summaries(session, subs)
        rebuilt = _rebuilt_summaries(session, subs)
        dashboard = _dashboard(session, at(run.world.now))
    return {
        "payments": payments,
        "plans": plans,
        "failures": failures,
        "emails": emails,
        "parked": parked,
        "periods": periods,
        "disputes": disputes,
        "receipts_gapless": receipts == list(range(1, len(receipts) + 1))
        or receipts == []
        or receipts == list(range(receipts[0], receipts[0] + len(receipts))),
        "summaries": summaries,
        "summaries_rebuilt": rebuilt,
        "dashboard": dashboard,
    }


_SUMMARY_TABLES = [
    "donation_month_totals",
    "donation_month_kinds",
    "donation_month_amounts",
    "plan_month_deltas",
    "plan_cohort_counts",
    "donor_plan_counts",
    "plan_failure_months",
]


def _summaries(session: Session, subs: dict[str | None, int]) -> dict[str, list[str]]:
    """Each kept summary table as sorted rows, donor and plan ids replaced by what they
    stand for (ids differ between runs)."""
    donors = {d_id: email for d_id, email in session.execute(text("SELECT id, email FROM donors"))}
    plans = {
        p_id: subs.get(sub_id)
        for p_id, sub_id in session.execute(text("SELECT id, stripe_subscription_id FROM plans"))
    }
    tables: dict[str, list[str]] = {}
    for table in _SUMMARY_TABLES:
        rows = session.execute(text(f"SELECT * FROM {table}")).mappings().all()  # noqa: S608
        out = []
        for row in rows:
            values = dict(row)
            if "donor_id" in values:
                values["donor_id"] = donors.get(values["donor_id"])
            if "plan_id" in values:
                values["plan_id"] = plans.get(values["plan_id"])
            if not any(v for k, v in values.items() if k not in _KEY_COLUMNS):
                continue  # a row counted down to nothing is no row
            out.append(json.dumps(values, sort_keys=True, default=str))
        tables[table] = sorted(out)
    return tables


_KEY_COLUMNS = {
    "month",
    "kind",
    "currency",
    "campaign_id",
    "source",
    "language",
    "net_minor",
    "start_month",
    "end_month",
    "donor_id",
    "plan_id",
}


def _rebuilt_summaries(session: Session, subs: dict[str | None, int]) -> dict[str, list[str]]:
    """The summaries rebuilt from the books (in a savepoint, rolled back)."""
    nested = session.begin_nested()
    summary.rebuild(session.connection())
    rebuilt = _summaries(session, subs)
    nested.rollback()
    return rebuilt


def _dashboard(session: Session, now: datetime) -> list[tuple[Any, ...]]:
    rates = Rates(base="EUR", per_unit={"USD": Decimal("0.9")}, set_at={})
    board = build_dashboard(session, now, rates)
    return [
        (f.key, f.value, f.previous, tuple(f.trend), tuple(sorted(f.per_currency.items())))
        for f in board.figures
    ]


def expected(reference: ReferenceBooks) -> dict[str, Any]:
    """The reference in the shape of `snapshot`'s books."""
    return {
        "payments": reference.payments,
        "plans": reference.plans,
        "failures": reference.failures,
        "emails": +reference.emails,
    }
