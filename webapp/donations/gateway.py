"""The Stripe gateway: every call the app makes to Stripe, behind one small protocol.

`StripeApiGateway` talks to Stripe (or, through `STRIPE_API_BASE`, to the localstripe
emulator) with the real `stripe` SDK. Results come back as plain dicts read through
`stripe_fields`. Every create call carries an idempotency key so a retried request (a
double click, a network error) never makes a second object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import stripe
from flask import Flask, current_app
from stripe._base_address import BaseAddresses

from webapp.donations.stripe_fields import as_dict

#: The Stripe API version the SDK pins; webhook payloads are expected in this shape (older
#: shapes are tolerated by `stripe_fields`). Set the same version on the webhook endpoint.
API_VERSION = stripe.api_version


class StripeUnavailable(Exception):
    """Stripe could not be reached or refused the request; the reader may try again."""


@dataclass(frozen=True)
class CheckoutRequest:
    """What a Checkout Session is opened for."""

    mode: str  # "payment" or "subscription"
    customer_id: str
    amount_minor: int
    currency: str
    interval: str | None  # "month" / "year" for subscriptions
    product_name: str
    description: str
    success_url: str
    cancel_url: str
    locale: str
    metadata: Mapping[str, str]


class StripeGateway(Protocol):
    """What the donation services need from Stripe."""

    def find_or_create_customer(self, email: str, name: str, idempotency_key: str) -> str:
        """The id of the Stripe customer with this email, created when there is none."""

    def create_checkout_session(
        self, request: CheckoutRequest, idempotency_key: str
    ) -> dict[str, Any]:
        """A new Checkout Session (has `id` and `url`)."""

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """A Checkout Session as Stripe has it now."""

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """A subscription as Stripe has it now."""

    def change_subscription_amount(
        self, subscription: Mapping[str, Any], amount_minor: int, idempotency_key: str
    ) -> dict[str, Any]:
        """Charge `amount_minor` from the next period on (no proration)."""

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        """End the subscription now."""

    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """The URL of a Stripe billing-portal session for the customer."""

    def list_events(self, since: datetime, types: list[str]) -> Iterator[dict[str, Any]]:
        """Every event of `types` created since `since`, newest first."""

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid an invoice, or None when Stripe does not say."""

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent paid, or None when it paid no invoice."""

    def payment_intent_metadata(self, payment_intent_id: str) -> dict[str, str]:
        """A PaymentIntent's metadata (our one-time gifts name their donation there)."""

    def checkout_paid_at(self, checkout: Mapping[str, Any]) -> datetime | None:
        """When a completed Checkout Session's payment went through: its invoice's payment
        time (subscriptions) or its PaymentIntent's creation (one-time gifts)."""


class StripeApiGateway:
    """`StripeGateway` over the real Stripe SDK."""

    def __init__(self, api_key: str, api_base: str | None = None) -> None:
        base: BaseAddresses | None = {"api": api_base.rstrip("/")} if api_base else None
        # Two quick retries on network errors; the SDK reuses the idempotency key for them.
        self._client = stripe.StripeClient(api_key, base_addresses=base, max_network_retries=2)

    def _call(
        self, method: Any, *ids: str, params: Mapping[str, Any] | None = None, key: str = ""
    ) -> Any:
        options: dict[str, Any] = {"idempotency_key": key} if key else {}
        try:
            return method(*ids, dict(params or {}), options)
        except stripe.StripeError as exc:
            raise StripeUnavailable(str(exc)) from exc

    def find_or_create_customer(self, email: str, name: str, idempotency_key: str) -> str:
        found = self._call(self._client.v1.customers.list, params={"email": email, "limit": 1})
        for customer in found.data:
            return str(customer.id)
        params: dict[str, Any] = {"email": email}
        if name:
            params["name"] = name
        created = self._call(self._client.v1.customers.create, params=params, key=idempotency_key)
        return str(created.id)

    def create_checkout_session(
        self, request: CheckoutRequest, idempotency_key: str
    ) -> dict[str, Any]:
        price_data: dict[str, Any] = {
            "currency": request.currency.lower(),
            "unit_amount": request.amount_minor,
            "product_data": {"name": request.product_name},
        }
        if request.interval:
            price_data["recurring"] = {"interval": request.interval}
        params: dict[str, Any] = {
            "mode": request.mode,
            "customer": request.customer_id,
            "line_items": [{"price_data": price_data, "quantity": 1}],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "locale": request.locale,
            "metadata": dict(request.metadata),
            "client_reference_id": request.metadata.get("donation_id", ""),
        }
        if request.mode == "payment":
            params["submit_type"] = "donate"
            params["payment_intent_data"] = {
                "metadata": dict(request.metadata),
                "description": request.description,
            }
        else:
            params["subscription_data"] = {
                "metadata": dict(request.metadata),
                "description": request.description,
            }
        session = self._call(
            self._client.v1.checkout.sessions.create, params=params, key=idempotency_key
        )
        return as_dict(session)

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return as_dict(self._call(self._client.v1.checkout.sessions.retrieve, session_id))

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return as_dict(self._call(self._client.v1.subscriptions.retrieve, subscription_id))

    def change_subscription_amount(
        self, subscription: Mapping[str, Any], amount_minor: int, idempotency_key: str
    ) -> dict[str, Any]:
        from webapp.donations import stripe_fields as f

        _, currency, interval = f.subscription_price(subscription)
        params = {
            "items": [
                {
                    "id": f.subscription_item_id(subscription),
                    "price_data": {
                        "currency": (currency or "eur").lower(),
                        "product": f.subscription_product_id(subscription),
                        "unit_amount": amount_minor,
                        "recurring": {"interval": interval or "month"},
                    },
                }
            ],
            "proration_behavior": "none",
        }
        updated = self._call(
            self._client.v1.subscriptions.update,
            str(subscription["id"]),
            params=params,
            key=idempotency_key,
        )
        return as_dict(updated)

    def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> dict[str, Any]:
        canceled = self._call(
            self._client.v1.subscriptions.cancel, subscription_id, key=idempotency_key
        )
        return as_dict(canceled)

    def create_portal_session(self, customer_id: str, return_url: str) -> str:
        portal = self._call(
            self._client.v1.billing_portal.sessions.create,
            params={"customer": customer_id, "return_url": return_url},
        )
        return str(portal.url)

    def list_events(self, since: datetime, types: list[str]) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "created": {"gte": int(since.timestamp())},
            "types": types,
            "limit": 100,
        }
        while True:
            page = self._call(self._client.v1.events.list, params=params)
            for event in page.data:
                yield as_dict(event)
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        try:
            payments = self._client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 1})
        except stripe.StripeError:
            return None  # older APIs and the emulator: the invoice itself names it
        for payment in payments.data:
            found = as_dict(payment).get("payment", {}).get("payment_intent")
            return found if isinstance(found, str) else None
        return None

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        payments = self._call(
            self._client.v1.invoice_payments.list,
            params={
                "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                "limit": 1,
            },
        )
        for payment in payments.data:
            found = as_dict(payment).get("invoice")
            return found if isinstance(found, str) else None
        return None

    def payment_intent_metadata(self, payment_intent_id: str) -> dict[str, str]:
        intent = as_dict(self._call(self._client.v1.payment_intents.retrieve, payment_intent_id))
        found = intent.get("metadata")
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}

    def checkout_paid_at(self, checkout: Mapping[str, Any]) -> datetime | None:
        from webapp.donations import stripe_fields as f

        invoice_id = f.object_id(checkout.get("invoice"))
        if invoice_id:
            invoice = as_dict(self._call(self._client.v1.invoices.retrieve, invoice_id))
            return f.invoice_paid_at(invoice)
        intent_id = f.object_id(checkout.get("payment_intent"))
        if intent_id:
            intent = as_dict(self._call(self._client.v1.payment_intents.retrieve, intent_id))
            return f.timestamp(intent.get("created"))
        return f.timestamp(checkout.get("created"))


def build_gateway(config: Mapping[str, Any]) -> StripeGateway | None:
    """The gateway for this configuration, or None when no Stripe key is set."""
    key = config.get("STRIPE_SECRET_KEY")
    if not key:
        return None
    return StripeApiGateway(str(key), config.get("STRIPE_API_BASE"))


def init_app(app: Flask) -> None:
    """Build the app's gateway once (tests may replace `app.extensions["stripe_gateway"]`)."""
    app.extensions["stripe_gateway"] = build_gateway(app.config)


def get_gateway(app: Flask | None = None) -> StripeGateway:
    """The current app's gateway; raises `StripeUnavailable` when Stripe is not configured."""
    gateway = (app or current_app).extensions.get("stripe_gateway")
    if gateway is None:
        raise StripeUnavailable("STRIPE_SECRET_KEY is not set")
    return gateway
