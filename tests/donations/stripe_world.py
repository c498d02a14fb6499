"""A small in-memory Stripe for the model tests of the books.

Why not the emulator: the model tests replay hundreds of generated gift histories, each
twice, and need what localstripe cannot do (move time, renew, fail and retry invoices,
refund, dispute). Stripe itself cannot run here. So this is the test double of the
`StripeGateway` protocol (tests/donations/test_gateway_protocol.py checks it keeps the
protocol): the app talks to it exactly as to Stripe, and it records every event Stripe
would send, in the pinned API shape (built by `stripe_events`), for the test to deliver
in any order.

Ids are deterministic per world (`cs_w1`, `sub_w2`...), so two runs of one history name
the same objects.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.donations import stripe_events as se
from webapp.donations.gateway import CheckoutRequest, StripeUnavailable

DAY = 86400


def at(seconds: int) -> datetime:
    """A world time as a datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass
class StripeWorld:
    """Stripe's side of a history: its objects, and the events it sent so far."""

    now: int
    #: Every event emitted, oldest first.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Invoices whose PaymentIntent Stripe "cannot say" the first time it is asked
    #: (the invoice-payment lookup failing), as happens with older API versions.
    forgetful_invoices: set[str] = field(default_factory=set)
    customers: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _counter: int = 0
    _replies: dict[str, Any] = field(default_factory=dict)
    _asked: set[str] = field(default_factory=set)

    # --- helpers -----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_w{self._counter}"

    def _emit(self, event_type: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        evt = se.event(event_type, copy.deepcopy(dict(obj)), created=self.now)
        evt["id"] = self._id("evt")
        self.events.append(evt)
        return evt

    def _once(self, key: str, make: Any) -> Any:
        # Stripe's idempotency keys: the same key answers the same result.
        if key not in self._replies:
            self._replies[key] = make()
        return copy.deepcopy(self._replies[key])

    def _subscription_object(self, sub: Mapping[str, Any]) -> dict[str, Any]:
        obj = se.subscription(
            subscription_id=sub["id"],
            customer=sub["customer"],
            status=sub["status"],
            amount=sub["amount"],
            currency=sub["currency"],
            interval=sub["interval"],
            cancel_at_period_end=sub["cancel_at_period_end"],
            period_end=sub["period_end"],
        )
        obj["metadata"] = dict(sub["metadata"])
        obj["canceled_at"] = sub.get("canceled_at")
        obj["items"]["data"][0]["id"] = f"si_{sub['id']}"
        obj["items"]["data"][0]["price"]["product"] = f"prod_{sub['id']}"
        return obj

    def _period(self, interval: str) -> int:
        return self.now + (365 if interval == "year" else 30) * DAY

    def _new_payment(
        self, amount: int, currency: str, metadata: dict[str, str], invoice_id: str | None
    ) -> tuple[str, str]:
        intent = self._id("pi")
        charge = self._id("ch")
        # A plan's PaymentIntents carry no metadata of ours: only their invoice says.
        self.intents[intent] = {
            "id": intent,
            "created": self.now,
            "invoice": invoice_id,
            "metadata": {} if invoice_id else dict(metadata),
        }
        self.charges[charge] = se.charge(
            payment_intent=intent,
            amount=amount,
            charge_id=charge,
            # Renewal charges carry no metadata of ours; a one-time gift's carry its
            # PaymentIntent's (the donation id).
            metadata={} if invoice_id else metadata,
            currency=currency,
        )
        return intent, charge

    def _invoice(self, sub: dict[str, Any], *, first: bool, paid: bool) -> dict[str, Any]:
        invoice_id = self._id("in")
        obj = se.invoice(
            subscription=sub["id"],
            customer=sub["customer"],
            amount=sub["amount"],
            currency=sub["currency"],
            invoice_id=invoice_id,
            billing_reason="subscription_create" if first else "subscription_cycle",
            status="paid" if paid else "open",
            paid_at=self.now,
            period_end=self._period(sub["interval"]),
        )
        obj["parent"]["subscription_details"]["metadata"] = dict(sub["metadata"])
        obj["created"] = self.now
        obj["lines"]["data"][0]["id"] = f"il_{invoice_id}"
        obj["lines"]["data"][0]["period"]["start"] = self.now
        obj["next_payment_attempt"] = None if paid else self.now + 3 * DAY
        if paid:
            obj["_intent"], obj["_charge"] = self._new_payment(
                sub["amount"], sub["currency"], sub["metadata"], invoice_id
            )
        self.invoices[invoice_id] = obj
        return obj

    @staticmethod
    def _public(invoice: Mapping[str, Any]) -> dict[str, Any]:
        # The pinned API names no PaymentIntent on the invoice (only when expanded).
        return {k: v for k, v in invoice.items() if not k.startswith("_")}

    # --- the StripeGateway protocol ----------------------------------------------------------

    def find_or_create_customer(self, email: str, name: str, idempotency_key: str) -> str:
        if email not in self.customers:
            self.customers[email] = self._id("cus")
        return self.customers[email]

    def create_checkout_session(
        self, request: CheckoutRequest, idempotency_key: str
    ) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            session_id = self._id("cs")
            self.sessions[session_id] = {
                "id": session_id,
                "object": "checkout.session",
                "mode": request.mode,
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": request.amount_minor,
                "currency": request.currency.lower(),
                "customer": request.customer_id,
                "metadata": dict(request.metadata),
                "client_reference_id": request.metadata.get("donation_id"),
                "payment_intent": None,
                "subscription": None,
                "invoice": None,
                "created": self.now,
                "url": f"https://checkout.world.test/{session_id}",
                "_interval": request.interval,
            }
            return self._session(session_id)

        return self._once(idempotency_key, make)

    def _session(self, session_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.sessions[session_id].items() if not k.startswith("_")}

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        if session_id not in self.sessions:
            raise StripeUnavailable(f"No such checkout.session: {session_id}")
        return self._session(session_id)

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        if subscription_id not in self.subscriptions:
            raise StripeUnavailable(f"No such subscription: {subscription_id}")
        return self._subscription_object(self.subscriptions[subscription_id])

    def change_subscription_amount(
        self, subscription: Mapping[str, Any], amount_minor: int, idempotency_key: str
    ) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            sub = self.subscriptions[str(subscription["id"])]
            if sub["status"] == "canceled":
                raise StripeUnavailable("A canceled subscription can only update its metadata.")
            sub["amount"] = amount_minor
            obj = self._subscription_object(sub)
            self._emit("customer.subscription.updated", obj)
            return obj

        return self._once(idempotency_key, make)

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            sub = self.subscriptions[subscription_id]
            if sub["status"] == "canceled":
                raise StripeUnavailable("This subscription is already canceled.")
            return self._cancel(sub)

        return self._once(idempotency_key, make)

    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        return f"https://billing.world.test/{customer_id}"

    def list_events(self, since: datetime, types: list[str]) -> Iterator[dict[str, Any]]:
        wanted = set(types)
        for evt in reversed(self.events):
            if evt["created"] >= int(since.timestamp()) and evt["type"] in wanted:
                yield copy.deepcopy(evt)

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        if invoice_id in self.forgetful_invoices and invoice_id not in self._asked:
            self._asked.add(invoice_id)
            return None
        found = self.invoices.get(invoice_id, {}).get("_intent")
        return str(found) if found else None

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        found = self.intents.get(payment_intent_id, {}).get("invoice")
        return str(found) if found else None

    def payment_intent_metadata(self, payment_intent_id: str) -> dict[str, str]:
        if payment_intent_id not in self.intents:
            raise StripeUnavailable(f"No such payment_intent: {payment_intent_id}")
        return dict(self.intents[payment_intent_id]["metadata"])

    def checkout_paid_at(self, checkout: Mapping[str, Any]) -> datetime | None:
        invoice = self.invoices.get(str(checkout.get("invoice") or ""))
        if invoice is not None:
            return at(int(invoice["status_transitions"]["paid_at"]))
        intent = self.intents.get(str(checkout.get("payment_intent") or ""))
        return at(int(intent["created"])) if intent else None

    # --- what happens at Stripe (the history's steps) ----------------------------------------

    def complete_checkout(self, session_id: str, *, delayed: bool = False) -> None:
        """The donor pays on Checkout (a delayed method leaves it unpaid for now)."""
        session = self.sessions[session_id]
        session["status"] = "complete"
        if session["mode"] == "payment":
            intent, _charge = self._new_payment(
                session["amount_total"], session["currency"], session["metadata"], None
            )
            session["payment_intent"] = intent
            session["payment_status"] = "unpaid" if delayed else "paid"
            self._emit("checkout.session.completed", self._session(session_id))
            return
        sub_id = self._id("sub")
        sub = {
            "id": sub_id,
            "customer": session["customer"],
            "status": "active",
            "amount": session["amount_total"],
            "currency": session["currency"],
            "interval": session["_interval"] or "month",
            "cancel_at_period_end": False,
            "period_end": self._period(session["_interval"] or "month"),
            "metadata": dict(session["metadata"]),
        }
        self.subscriptions[sub_id] = sub
        invoice = self._invoice(sub, first=True, paid=True)
        sub["invoices"] = [invoice["id"]]
        session.update(subscription=sub_id, invoice=invoice["id"], payment_status="paid")
        self._emit("customer.subscription.created", self._subscription_object(sub))
        self._emit("invoice.paid", self._public(invoice))
        self._emit("checkout.session.completed", self._session(session_id))

    def settle_delayed(self, session_id: str, *, succeeded: bool) -> None:
        """A delayed payment method settles (or fails) days later."""
        session = self.sessions[session_id]
        if succeeded:
            session["payment_status"] = "paid"
            self._emit("checkout.session.async_payment_succeeded", self._session(session_id))
        else:
            self._emit("checkout.session.async_payment_failed", self._session(session_id))

    def expire_checkout(self, session_id: str) -> None:
        """Checkout Sessions expire after 24 hours unpaid (declined cards included)."""
        session = self.sessions[session_id]
        session["status"] = "expired"
        self._emit("checkout.session.expired", self._session(session_id))

    def renew(self, sub_id: str) -> str:
        """A renewal paid at once; returns its invoice id."""
        sub = self.subscriptions[sub_id]
        invoice = self._invoice(sub, first=False, paid=True)
        sub["invoices"].append(invoice["id"])
        sub["period_end"] = self._period(sub["interval"])
        self._emit("invoice.paid", self._public(invoice))
        return str(invoice["id"])

    def fail_renewal(self, sub_id: str) -> str:
        """A renewal's first attempt fails: the subscription goes past due."""
        sub = self.subscriptions[sub_id]
        invoice = self._invoice(sub, first=False, paid=False)
        sub["invoices"].append(invoice["id"])
        sub["status"] = "past_due"
        self._emit("invoice.payment_failed", self._public(invoice))
        self._emit("customer.subscription.updated", self._subscription_object(sub))
        return str(invoice["id"])

    def retry_fails(self, invoice_id: str) -> None:
        """Stripe's next attempt at a failed invoice fails too."""
        invoice = self.invoices[invoice_id]
        invoice["attempt_count"] += 1
        invoice["next_payment_attempt"] = self.now + 3 * DAY
        self._emit("invoice.payment_failed", self._public(invoice))

    def retry_pays(self, invoice_id: str) -> None:
        """A retry goes through: the invoice is paid, the subscription active again."""
        invoice = self.invoices[invoice_id]
        sub = self.subscriptions[invoice["parent"]["subscription_details"]["subscription"]]
        invoice.update(status="paid", amount_paid=invoice["amount_due"], next_payment_attempt=None)
        invoice["attempt_count"] += 1
        invoice["status_transitions"] = {"paid_at": self.now}
        invoice["_intent"], invoice["_charge"] = self._new_payment(
            invoice["amount_due"], sub["currency"], sub["metadata"], invoice_id
        )
        sub["status"] = "active"
        sub["period_end"] = self._period(sub["interval"])
        self._emit("invoice.paid", self._public(invoice))
        self._emit("customer.subscription.updated", self._subscription_object(sub))

    def _cancel(self, sub: dict[str, Any]) -> dict[str, Any]:
        sub["status"] = "canceled"
        sub["canceled_at"] = self.now
        obj = self._subscription_object(sub)
        self._emit("customer.subscription.deleted", obj)
        return obj

    def cancel_by_stripe(self, sub_id: str) -> None:
        """Stripe ends the subscription (retries exhausted, or staff in the Dashboard)."""
        self._cancel(self.subscriptions[sub_id])

    def cancel_at_period_end(self, sub_id: str) -> None:
        """The donor asks, in Stripe's billing portal, to stop at the end of the period."""
        sub = self.subscriptions[sub_id]
        sub["cancel_at_period_end"] = True
        self._emit("customer.subscription.updated", self._subscription_object(sub))

    def charge_of_payment(
        self, *, session_id: str | None = None, invoice_id: str | None = None
    ) -> str:
        """The charge that paid a checkout (one-time) or an invoice."""
        if invoice_id:
            return str(self.invoices[invoice_id]["_charge"])
        intent = self.sessions[str(session_id)]["payment_intent"]
        return next(c for c, obj in self.charges.items() if obj["payment_intent"] == intent)

    def refund(self, charge_id: str, amount: int) -> None:
        """Staff refund part or all of a charge; the event carries the running total."""
        charge = self.charges[charge_id]
        charge["amount_refunded"] = min(charge["amount"], charge["amount_refunded"] + amount)
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._emit("charge.refunded", charge)

    def dispute(self, charge_id: str, status: str) -> None:
        """A dispute on a charge moves to `status` (its first status opens it)."""
        charge = self.charges[charge_id]
        dispute_id = f"dp_{charge_id}"
        opening = dispute_id not in self.disputes
        self.disputes[dispute_id] = se.dispute(
            payment_intent=charge["payment_intent"],
            charge_id=charge_id,
            amount=charge["amount"],
            status=status,
            dispute_id=dispute_id,
        )
        closed = status in ("won", "lost", "warning_closed", "prevented")
        event_type = (
            "charge.dispute.created"
            if opening
            else "charge.dispute.closed"
            if closed
            else "charge.dispute.updated"
        )
        self._emit(event_type, self.disputes[dispute_id])
        if status == "needs_response" and opening:
            self._emit("charge.dispute.funds_withdrawn", self.disputes[dispute_id])
        if status == "won":
            self._emit("charge.dispute.funds_reinstated", self.disputes[dispute_id])
