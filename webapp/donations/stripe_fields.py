"""Reading Stripe objects: the one place that knows where each field lives.

The app pins the API version of its `stripe` SDK (see `gateway.API_VERSION`), where e.g. an
invoice names its subscription under `parent.subscription_details.subscription` and a
subscription's period lives on its items. Older versions (and the localstripe emulator)
put them at the top level (`invoice.subscription`, `subscription.current_period_end`).
Every function here accepts both shapes, as plain dicts (parsed webhook bodies) or SDK
objects (`as_dict` turns them into dicts), and returns None when a field is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict from an SDK object (or the dict itself)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"not a Stripe object: {type(obj).__name__}")


def dig(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None as soon as a step is missing."""
    current = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def object_id(value: Any) -> str | None:
    """An id from a field that is either the id or the expanded object."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def timestamp(value: Any) -> datetime | None:
    """A UTC datetime from a Unix timestamp field."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's metadata (empty when absent)."""
    found = obj.get("metadata")
    return dict(found) if isinstance(found, Mapping) else {}


# --- invoices --------------------------------------------------------------------------------


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills."""
    return object_id(dig(invoice, "parent", "subscription_details", "subscription")) or object_id(
        invoice.get("subscription")
    )


def invoice_subscription_metadata(invoice: Mapping[str, Any]) -> dict[str, str]:
    """The subscription's metadata as copied onto the invoice (our donation id lives there)."""
    for path in (
        ("parent", "subscription_details", "metadata"),
        ("subscription_details", "metadata"),
    ):
        found = dig(invoice, *path)
        if isinstance(found, Mapping) and found:
            return dict(found)
    lines = dig(invoice, "lines", "data") or []
    for line in lines:
        found = line.get("metadata") if isinstance(line, Mapping) else None
        if isinstance(found, Mapping) and found:
            return dict(found)
    return {}


def invoice_subscription_metadata_known(invoice: Mapping[str, Any]) -> dict[str, str] | None:
    """Like `invoice_subscription_metadata`, but None when the payload carries no copy of
    the subscription's metadata at all (older shapes), rather than an empty one."""
    found = invoice_subscription_metadata(invoice)
    if found:
        return found
    for path in (("parent", "subscription_details"), ("subscription_details",)):
        details = dig(invoice, *path)
        if isinstance(details, Mapping) and isinstance(details.get("metadata"), Mapping):
            return {}
    return None


def metadata_known(obj: Mapping[str, Any]) -> dict[str, str] | None:
    """The object's metadata, or None when the payload has no `metadata` field."""
    found = obj.get("metadata")
    return dict(found) if isinstance(found, Mapping) else None


def invoice_payment_intent_id(invoice: Mapping[str, Any]) -> str | None:
    """The PaymentIntent that paid an invoice, when the payload names it.

    Current API versions list it under `payments` (only when expanded); older ones have
    `payment_intent` at the top level.
    """
    for payment in dig(invoice, "payments", "data") or []:
        found = object_id(dig(payment, "payment", "payment_intent"))
        if found:
            return found
    return object_id(invoice.get("payment_intent"))


def invoice_charge_id(invoice: Mapping[str, Any]) -> str | None:
    """The charge that paid an invoice (older API versions only)."""
    for payment in dig(invoice, "payments", "data") or []:
        found = object_id(dig(payment, "payment", "charge"))
        if found:
            return found
    return object_id(invoice.get("charge"))


def invoice_amount_paid(invoice: Mapping[str, Any]) -> int:
    """Minor units paid on the invoice."""
    value = invoice.get("amount_paid")
    if value is None:
        value = invoice.get("total") or 0
    return int(value)


def invoice_paid_at(invoice: Mapping[str, Any]) -> datetime | None:
    """When the invoice was paid."""
    return timestamp(dig(invoice, "status_transitions", "paid_at")) or timestamp(
        invoice.get("created")
    )


def invoice_next_attempt(invoice: Mapping[str, Any]) -> datetime | None:
    """When Stripe will retry a failed invoice."""
    return timestamp(invoice.get("next_payment_attempt"))


def invoice_is_first(invoice: Mapping[str, Any]) -> bool:
    """True for the invoice that opened a subscription (paid through Checkout)."""
    return invoice.get("billing_reason") == "subscription_create"


# --- subscriptions ---------------------------------------------------------------------------


def _first_item(subscription: Mapping[str, Any]) -> Mapping[str, Any]:
    items = dig(subscription, "items", "data") or []
    return items[0] if items and isinstance(items[0], Mapping) else {}


def subscription_price(
    subscription: Mapping[str, Any],
) -> tuple[int | None, str | None, str | None]:
    """(unit amount in minor units, currency, interval) of the subscription's first item."""
    item = _first_item(subscription)
    price = item.get("price") or item.get("plan") or subscription.get("plan") or {}
    if not isinstance(price, Mapping):
        price = {}
    amount = price.get("unit_amount", price.get("amount"))
    quantity = item.get("quantity") or subscription.get("quantity") or 1
    interval = dig(price, "recurring", "interval") or price.get("interval")
    currency = price.get("currency") or subscription.get("currency")
    total = int(amount) * int(quantity) if amount is not None else None
    return total, (currency.upper() if currency else None), interval


def subscription_item_id(subscription: Mapping[str, Any]) -> str | None:
    """The id of the subscription's (single) item, needed to change its price."""
    return object_id(_first_item(subscription).get("id"))


def subscription_product_id(subscription: Mapping[str, Any]) -> str | None:
    """The product the subscription's price belongs to."""
    item = _first_item(subscription)
    price = item.get("price") or item.get("plan") or {}
    return object_id(price.get("product")) if isinstance(price, Mapping) else None


def subscription_period_end(subscription: Mapping[str, Any]) -> datetime | None:
    """End of the current period (on the item in current versions, top level before)."""
    return timestamp(_first_item(subscription).get("current_period_end")) or timestamp(
        subscription.get("current_period_end")
    )


# --- charges and disputes --------------------------------------------------------------------


def charge_payment_intent_id(charge: Mapping[str, Any]) -> str | None:
    """The PaymentIntent a charge belongs to."""
    return object_id(charge.get("payment_intent"))


def charge_invoice_id(charge: Mapping[str, Any]) -> str | None:
    """The invoice a charge paid (older API versions only)."""
    return object_id(charge.get("invoice"))
