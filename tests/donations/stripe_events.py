"""Signed Stripe events in the current API shape, for what the emulator cannot produce
(renewals, failed renewals, cancellations, refunds, disputes) and for the fault tests.

The shapes follow the API version the app pins (`webapp.donations.gateway.API_VERSION`):
invoices name their subscription under `parent.subscription_details`, subscriptions keep
their period on the item. Signatures are made exactly as Stripe makes them
(`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`), so the app's real verification runs.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from webapp.donations.gateway import API_VERSION

WEBHOOK_SECRET = "whsec_test_fixture_secret"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """A fresh Stripe-looking id."""
    return f"{prefix}_fixture{next(_ids):06d}"


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """A Stripe event wrapping `obj`."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_event(
    client: FlaskClient,
    evt: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> TestResponse:
    """POST a signed event to the app's webhook endpoint, as Stripe does."""
    raw = body if body is not None else json.dumps(evt).encode()
    return client.post(
        "/stripe/webhook",
        data=raw,
        headers={"Stripe-Signature": sign(raw, secret, timestamp)},
        content_type="application/json",
    )


def checkout_session(
    *,
    donation_id: int | None,
    mode: str = "payment",
    amount: int = 1000,
    currency: str = "eur",
    session_id: str | None = None,
    customer: str | None = None,
    email: str = "reader@example.com",
    payment_status: str = "paid",
    status: str = "complete",
    payment_intent: str | None = None,
    subscription: str | None = None,
    invoice: str | None = None,
) -> dict[str, Any]:
    """A completed Checkout Session."""
    recurring = mode == "subscription"
    return {
        "id": session_id or new_id("cs_test"),
        "object": "checkout.session",
        "mode": mode,
        "status": status,
        "payment_status": payment_status,
        "amount_total": amount,
        "amount_subtotal": amount,
        "currency": currency,
        "customer": customer or new_id("cus"),
        "customer_details": {"email": email, "name": None},
        "metadata": {"donation_id": str(donation_id)} if donation_id else {},
        "client_reference_id": str(donation_id) if donation_id else None,
        "payment_intent": None if recurring else (payment_intent or new_id("pi")),
        "subscription": subscription if recurring else None,
        "invoice": invoice if recurring else None,
        "created": int(time.time()),
    }


def invoice(
    *,
    subscription: str,
    customer: str,
    amount: int = 1000,
    currency: str = "eur",
    invoice_id: str | None = None,
    billing_reason: str = "subscription_cycle",
    status: str = "paid",
    donation_id: int | None = None,
    attempt_count: int = 1,
    paid_at: int | None = None,
    period_end: int | None = None,
    email: str = "reader@example.com",
) -> dict[str, Any]:
    """An invoice of a subscription in the current shape (no top-level `subscription`)."""
    paid = status == "paid"
    now = int(time.time())
    return {
        "id": invoice_id or new_id("in"),
        "object": "invoice",
        "status": status,
        "billing_reason": billing_reason,
        "customer": customer,
        "customer_email": email,
        "currency": currency,
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "total": amount,
        "attempt_count": attempt_count,
        "next_payment_attempt": None if paid else now + 3 * 86400,
        "status_transitions": {"paid_at": (paid_at or now) if paid else None},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": subscription,
                "metadata": {"donation_id": str(donation_id)} if donation_id else {},
            },
        },
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": new_id("il"),
                    "amount": amount,
                    "currency": currency,
                    "period": {"start": now, "end": period_end or now + 30 * 86400},
                }
            ],
        },
        "created": now,
    }


def subscription(
    *,
    subscription_id: str,
    customer: str,
    status: str = "active",
    amount: int = 1000,
    currency: str = "eur",
    interval: str = "month",
    cancel_at_period_end: bool = False,
    period_end: int | None = None,
    donation_id: int | None = None,
) -> dict[str, Any]:
    """A subscription in the current shape (period on the item); the app's own carry their
    donation's id in the metadata."""
    now = int(time.time())
    return {
        "id": subscription_id,
        "object": "subscription",
        "status": status,
        "customer": customer,
        "currency": currency,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": now if status == "canceled" else None,
        "metadata": {"donation_id": str(donation_id)} if donation_id else {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si"),
                    "quantity": 1,
                    "current_period_end": period_end or now + 30 * 86400,
                    "price": {
                        "id": new_id("price"),
                        "product": new_id("prod"),
                        "currency": currency,
                        "unit_amount": amount,
                        "recurring": {"interval": interval},
                    },
                }
            ],
        },
    }


def charge(
    *,
    payment_intent: str | None,
    amount: int = 1000,
    amount_refunded: int = 0,
    charge_id: str | None = None,
    metadata: dict[str, str] | None = None,
    currency: str = "eur",
) -> dict[str, Any]:
    """A charge (as in `charge.refunded`); one-time gifts' charges carry their
    PaymentIntent's metadata (our donation id)."""
    return {
        "id": charge_id or new_id("ch"),
        "metadata": dict(metadata or {}),
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= amount,
        "payment_intent": payment_intent,
        "currency": currency,
    }


def dispute(
    *,
    payment_intent: str | None,
    charge_id: str | None = None,
    amount: int = 1000,
    status: str = "needs_response",
    dispute_id: str | None = None,
) -> dict[str, Any]:
    """A dispute (as in `charge.dispute.created`)."""
    return {
        "id": dispute_id or new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "charge": charge_id or new_id("ch"),
        "payment_intent": payment_intent,
        "status": status,
        "reason": "fraudulent",
        "currency": "eur",
    }
