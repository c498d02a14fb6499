"""The resources localstripe lacks, registered on its aiohttp app by `install()`.

Shapes. New objects here (Price, Checkout Session, billing-portal session) follow the
current API. localstripe's own objects follow an OLD version (events say `2017-08-15`) and
are left so; the app reads both through its own tolerant module:

- invoice: `subscription`, `payment_intent` and `charge` (the whole Charge) at the top level;
  the current API has `invoice.parent.subscription_details.subscription` (localstripe also
  sends `parent`) and `invoice.payments` (absent here). `billing_reason` is set by this
  module (`subscription_create` / `subscription_update`) from `invoice.finalized` on.
- payment intent: `latest_charge` is the whole Charge object, not its id; `charges` is there.
- subscription: `plan`, `quantity`, `current_period_start/end` at the top level (current API:
  on the items); this module adds `price` and `current_period_start/end` to every item.
- invoice line: `plan` plus the `price` added here; no `pricing`/`parent` blocks.
- checkout session `customer_details` has only email, name, address, phone, tax_exempt.

Importing this module changes nothing; `install()` patches localstripe and adds the routes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import html
import json
import logging
import operator
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from localstripe import resources as ls
from localstripe import server, webhooks
from localstripe.errors import UserError

log = logging.getLogger("stripe_emulator")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ZERO_DECIMAL = frozenset(("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
                          "ugx", "vnd", "vuv", "xaf", "xof", "xpf"))  # fmt: skip
INTERVALS = ("day", "week", "month", "year")
TEST_CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}


class Settings:
    """What `install()` was given; read at request time."""

    base_url = "http://127.0.0.1:12111"
    store_path: Path | None = None
    webhook_delay = 0.1  # seconds between an event and its delivery, like Stripe's lag
    webhook_timeout = 5.0  # seconds a receiver gets before the delivery counts as failed


settings = Settings()


# --- small helpers -----------------------------------------------------------------------


def _bad(message: str) -> UserError:
    return UserError(400, message)


def _int(value: Any, name: str, minimum: int = 0) -> int:
    number = ls.try_convert_to_int(value)
    if type(number) is not int or number < minimum:
        raise _bad(f"Invalid integer: {name}")
    return number


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3:
        raise _bad("Invalid currency")
    return value.lower()


def _dict(value: Any, name: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _bad(f"Invalid object: {name}")
    return dict(value)


def _recurring(value: Any) -> dict[str, Any] | None:
    recurring = _dict(value, "recurring")
    if not recurring:
        return None
    if recurring.get("interval") not in INTERVALS:
        raise _bad("Invalid recurring[interval]")
    count = _int(recurring.get("interval_count", 1), "interval_count", 1)
    return {"interval": recurring["interval"], "interval_count": count, "usage_type": "licensed"}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's `previous_attributes`: the old values of the top-level fields that changed."""
    return {key: old for key, old in before.items() if after.get(key) != old}


def _emit(event_type: str, obj: Any, previous: dict[str, Any] | None = None) -> ls.Event:
    event = ls.Event(event_type, obj)
    if previous:
        event.data["previous_attributes"] = previous
    _schedule_webhook(event)
    return event


_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _created_filter(created: Any) -> Callable[[Any], bool]:
    if created is None or created == "":
        return lambda obj: True
    if not isinstance(created, dict):
        created = {"gte": created, "lte": created}
    bounds = [(_OPS[op], _int(v, "created")) for op, v in created.items() if op in _OPS]
    return lambda obj: all(op(obj.created, bound) for op, bound in bounds)


def _newest_first(cls: Any, url: str, params: dict[str, Any], **wanted: Any) -> ls.List:
    """A list page newest first, filtered by `created` and by equal attributes."""
    page = ls.List(url, limit=params.get("limit"), starting_after=params.get("starting_after"))
    when = _created_filter(params.get("created"))
    found = [
        obj
        for key, obj in ls.store.items()
        if key.startswith(cls.object + ":")
        and when(obj)
        and all(v is None or getattr(obj, k) == v for k, v in wanted.items())
    ]
    found.reverse()  # the store keeps insertion order; sorting is stable within a second
    found.sort(key=lambda obj: obj.created, reverse=True)
    page._list = found
    return page


def _money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS


# --- Prices ------------------------------------------------------------------------------


def _price_fields(currency: str, amount: int, product: str, recurring: Any) -> dict[str, Any]:
    return {
        "active": True, "billing_scheme": "per_unit", "currency": currency, "product": product,
        "recurring": recurring, "tax_behavior": "unspecified", "unit_amount": amount,
        "type": "recurring" if recurring else "one_time", "unit_amount_decimal": str(amount),
    }  # fmt: skip


class Price(ls.StripeObject):
    """A Price; a recurring one also creates a Plan with the same id for subscriptions."""

    object = "price"
    _id_prefix = "price_"

    def __init__(self, **params: Any) -> None:
        currency = _currency(params.get("currency"))
        amount = _int(params.get("unit_amount"), "unit_amount")
        recurring = _recurring(params.get("recurring"))
        product, product_data = params.get("product"), _dict(params.get("product_data"), "p")
        if product:
            ls.Product._api_retrieve(product)  # 404 when missing
        elif not isinstance(product_data.get("name"), str) or not product_data["name"]:
            raise _bad("Missing required param: product or product_data[name]")

        # All exceptions must be raised before this point.
        super().__init__()
        if not product:
            product = ls.Product(
                name=product_data["name"], metadata=product_data.get("metadata")
            ).id
        vars(self).update(_price_fields(currency, amount, product, recurring))
        self.active = ls.try_convert_to_bool(params.get("active", True)) is not False
        self.metadata = _dict(params.get("metadata"), "metadata")
        self.nickname = params.get("nickname")
        self.lookup_key = params.get("lookup_key")
        if recurring:
            interval, count = recurring["interval"], recurring["interval_count"]
            ls.Plan(id=self.id, amount=amount, currency=currency, product=product,
                 interval=interval, interval_count=count, nickname=self.nickname)  # fmt: skip
        _emit("price.created", self)

    @classmethod
    def _api_list_all(cls, url, **params):
        p = params.get
        active = ls.try_convert_to_bool(p("active"))
        return _newest_first(cls, url, params, active=active, product=p("product"),
                             type=p("type"), currency=p("currency"))  # fmt: skip


def _price_of(plan: Any) -> dict[str, Any] | None:
    """The current-API `price` of a subscription item or invoice line, when one made its Plan."""
    price = ls.store.get("price:" + plan.id) if plan is not None else None
    return price._export() if price is not None else None


# --- Checkout Sessions -------------------------------------------------------------------


def _line_item(item: Any, mode: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad("Invalid line_items")
    quantity = _int(item.get("quantity", 1), "quantity", 1)
    price_data = None
    if item.get("price"):
        price = Price._api_retrieve(item["price"])
        currency, amount, recurring = price.currency, price.unit_amount, price.recurring
        name = ls.Product._api_retrieve(price.product).name
    else:
        price_data = _dict(item.get("price_data"), "price_data")
        currency = _currency(price_data.get("currency"))
        amount = _int(price_data.get("unit_amount"), "unit_amount")
        recurring = _recurring(price_data.get("recurring"))
        name = _dict(price_data.get("product_data"), "product_data").get("name")
        if price_data.get("product"):
            name = ls.Product._api_retrieve(price_data["product"]).name
        if not isinstance(name, str) or not name:
            raise _bad("Missing required param: line_items[][price_data][product_data][name]")
    if (mode == "subscription") != (recurring is not None):
        kind = "recurring" if mode == "subscription" else "one-time"
        raise _bad(f"Prices in {mode} mode must be {kind}")
    return {"price": item.get("price") or None, "price_data": price_data, "name": name,
            "quantity": quantity, "currency": currency, "amount": amount * quantity,
            "recurring": recurring}  # fmt: skip


class CheckoutSession(ls.StripeObject):
    """A hosted Checkout Session; its `url` is the emulator's test-only pay page."""

    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, **params: Any) -> None:
        p = params.get
        mode, line_items, success_url = p("mode"), p("line_items"), p("success_url")
        if mode not in ("payment", "subscription"):
            raise _bad("Invalid mode: the emulator supports payment and subscription")
        if not isinstance(success_url, str) or not success_url.startswith("http"):
            raise _bad("Missing required param: success_url")
        if p("customer") and p("customer_email"):
            raise _bad("You may only specify one of these parameters: customer, customer_email.")
        if p("customer"):
            ls.Customer._api_retrieve(p("customer"))  # 404 when missing
        if not isinstance(line_items, list) or not line_items:
            raise _bad("Missing required param: line_items")
        items = [_line_item(item, mode) for item in line_items]
        if len({item["currency"] for item in items}) != 1:
            raise _bad("All line items must use the same currency")
        if mode == "subscription" and len(items) != 1:
            raise _bad("The emulator supports one line item in subscription mode")
        amount = sum(item["amount"] for item in items)
        if mode == "payment" and amount <= 0:
            raise _bad("The amount must be greater than zero")
        metadata = _dict(p("metadata"), "metadata")
        self._payment_intent_data = _dict(p("payment_intent_data"), "payment_intent_data")
        self._subscription_data = _dict(p("subscription_data"), "subscription_data")
        expires_at = _int(p("expires_at"), "expires_at") if p("expires_at") else None

        # All exceptions must be raised before this point.
        super().__init__()
        self._line_items = items
        self.mode, self.status, self.payment_status = mode, "open", "unpaid"
        self.currency = items[0]["currency"]
        self.amount_subtotal = self.amount_total = amount
        self.customer, self.customer_email = p("customer") or None, p("customer_email") or None
        self.customer_details = None
        self.client_reference_id, self.metadata = p("client_reference_id"), metadata
        self.locale = p("locale")
        self.submit_type = p("submit_type") if mode == "payment" else None
        self.payment_intent = self.subscription = self.invoice = None
        self.success_url, self.cancel_url = success_url, p("cancel_url")
        self.expires_at = expires_at or self.created + 86400
        self.payment_method_types, self.ui_mode = ["card"], "hosted"

    @property
    def url(self):
        return f"{settings.base_url}/_checkout/{self.id}" if self.status == "open" else None

    @classmethod
    def _api_list_all(cls, url, **params):
        wanted = ("customer", "payment_intent", "subscription", "status")
        return _newest_first(cls, url, params, **{k: params.get(k) for k in wanted})

    @classmethod
    def _api_expire(cls, id, **_ignored):
        obj = cls._api_retrieve(id)
        if obj.status != "open":
            raise _bad(f"Only open sessions can be expired; this one is {obj.status}.")
        obj.status = "expired"
        _emit("checkout.session.expired", obj)
        return obj

    def _complete(self, outcome: str, email: str, name: str | None) -> None:
        """What Stripe does when the donor pays: customer, card, then payment or subscription."""
        if self.customer:
            customer = ls.Customer._api_retrieve(self.customer)
        else:
            customer = ls.Customer(email=email, name=name or None)
        details = {"email": email, "name": name}
        card = ls.PaymentMethod(type="card", card=dict(TEST_CARD), billing_details=details)
        ls.PaymentMethod._api_attach(card.id, customer=customer.id)
        self.customer = customer.id
        self.customer_details = {**details, "address": None, "phone": None,
                                 "tax_exempt": "none", "tax_ids": []}  # fmt: skip
        if self.mode == "payment":
            data = self._payment_intent_data
            intent = ls.PaymentIntent(amount=self.amount_total, currency=self.currency,
                                   customer=customer.id, payment_method=card.id,
                                   metadata=_dict(data.get("metadata"), "metadata"))  # fmt: skip
            intent.description = data.get("description")
            self.payment_intent = intent.id
            if outcome == "success":
                _confirm(intent)
                self.payment_status = "paid"
        else:
            item = self._line_items[0]
            price = Price._api_retrieve(item["price"]) if item["price"] else None
            price = price or Price(**item["price_data"])
            # localstripe's invoices charge the customer's default payment method.
            customer.invoice_settings["default_payment_method"] = card.id
            metadata = _dict(self._subscription_data.get("metadata"), "metadata")
            items = [{"plan": price.id, "quantity": item["quantity"]}]
            subscription = ls.Subscription(customer=customer.id, items=items, metadata=metadata)
            self.subscription, self.invoice = subscription.id, subscription.latest_invoice
            invoice = ls.Invoice._api_retrieve(self.invoice) if self.invoice else None
            paid = invoice is None or invoice.status == "paid"
            self.payment_status = "paid" if paid else "unpaid"
        self.status = "complete"
        _emit("checkout.session.completed", self)

    def _settle(self, outcome: str) -> None:
        intent = ls.PaymentIntent._api_retrieve(self.payment_intent)
        if outcome == "success":
            _confirm(intent)
            self.payment_status = "paid"
            _emit("checkout.session.async_payment_succeeded", self)
        else:
            ls.PaymentIntent._api_cancel(intent.id)
            _emit("payment_intent.canceled", intent)
            _emit("checkout.session.async_payment_failed", self)


def _confirm(intent: Any) -> None:
    intent._confirm(on_failure_now=intent._report_failure)
    charge = intent.latest_charge
    charge.description, charge.metadata = intent.description, dict(intent.metadata)
    _emit("charge.succeeded", charge)


# --- billing portal ----------------------------------------------------------------------


class BillingPortalSession(ls.StripeObject):
    """A customer-portal session; its `url` is a placeholder page on the emulator."""

    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer=None, return_url=None, locale=None, **_ignored):
        if not isinstance(customer, str) or not customer:
            raise _bad("Missing required param: customer")
        ls.Customer._api_retrieve(customer)  # 404 when missing
        super().__init__()
        self.customer, self.return_url, self.locale = customer, return_url, locale
        self.configuration, self.flow, self.on_behalf_of = "bpc_emulator", None, None

    @property
    def url(self):
        return f"{settings.base_url}/_portal/{self.id}"


# --- localstripe patches -----------------------------------------------------------------


def _event_list_all(cls, url, **params):
    """Events newest first, filtered by `type` (wildcards allowed), `types` and `created`."""
    patterns = [params["type"]] if params.get("type") else list(params.get("types") or [])
    page = _newest_first(cls, url, params)
    page._list = [e for e in page._list if not patterns or any(
        fnmatch.fnmatchcase(e.type, pattern) for pattern in patterns)]  # fmt: skip
    return page


def _subscription_update(cls, id, **data):
    """localstripe's update plus item prices (`price`/`price_data`) and an `updated` event."""
    sub = ls.Subscription._api_retrieve(id)
    if sub.status == "canceled":
        raise _bad("A canceled subscription can only update its metadata.")
    before = sub._export()
    if "items" in data:
        _update_item(sub, data["items"])
    known = ("metadata", "trial_end", "cancel_at_period_end", "cancel_at")
    changes = {k: v for k, v in data.items() if k in known}
    if changes:
        sub._update(**changes)
    if "cancel_at_period_end" in changes:
        ending = bool(sub.cancel_at_period_end)
        sub.cancel_at = sub.current_period_end if ending else None
        sub.canceled_at = int(time.time()) if ending else None
    _emit("customer.subscription.updated", sub, _changes(before, sub._export()))
    return sub


def _update_item(sub: Any, items: Any) -> None:
    # Only in-place changes of the one item; no prorations (as `proration_behavior=none`).
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise _bad("The emulator updates exactly one subscription item")
    item, current = items[0], sub.items._list[0]
    if item.get("id") not in (None, current.id):
        raise UserError(404, f"No such subscription item: '{item['id']}'")
    quantity = _int(item.get("quantity", current.quantity), "quantity", 1)
    plan = current.plan
    if item.get("price_data"):
        price_data = _dict(item["price_data"], "price_data")
        if not price_data.get("recurring"):
            raise _bad("Missing required param: items[][price_data][recurring]")
        plan = ls.Plan._api_retrieve(Price(**price_data).id)
    elif item.get("price") or item.get("plan"):
        plan = ls.Plan._api_retrieve(item.get("price") or item.get("plan"))
    current.plan = plan
    current.quantity = sub.quantity = quantity
    current.metadata.update(_dict(item.get("metadata"), "metadata"))


def _subscription_delete(cls, id, **_ignored):
    """Cancel now; cancelling a cancelled subscription answers it again with no new event."""
    sub = ls.Subscription._api_retrieve(id)
    if sub.status != "canceled":
        before = sub._export()
        sub.ended_at = sub.canceled_at = int(time.time())
        sub.status = "canceled"
        _emit("customer.subscription.deleted", sub, _changes(before, sub._export()))
    return sub


_original_finalize = ls.Invoice._finalize
_original_payment_success = ls.Invoice._on_payment_success


def _invoice_finalize(self):
    _original_finalize(self)
    if self.subscription and self.billing_reason is None:
        first = ls.Subscription._api_retrieve(self.subscription).status == "incomplete"
        self.billing_reason = "subscription_create" if first else "subscription_update"
    _emit("invoice.finalized", self)


def _invoice_paid(self):
    _original_payment_success(self)
    _emit("invoice.paid", self)


def _dump_store(self):
    # One atomic write per changing request (localstripe rewrote the file on every set).
    if settings.store_path is None:
        return
    partial = settings.store_path.with_name(settings.store_path.name + ".partial")
    with open(partial, "wb") as f:
        pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, settings.store_path)


def _load_store(self):
    if settings.store_path is not None and settings.store_path.exists():
        with open(settings.store_path, "rb") as f:
            saved = pickle.load(f)  # noqa: S301 (our own store file)
        self.clear()
        self.update(saved)


# --- webhooks ----------------------------------------------------------------------------

_outbox: asyncio.Queue[tuple[float, ls.Event, list[tuple[str, Any]]]] | None = None
deliveries: list[dict[str, Any]] = []


def _schedule_webhook(event: ls.Event) -> None:
    # The receivers registered when the event happens get it, as with Stripe's endpoints.
    if _outbox is not None:
        hooks = list(webhooks._webhooks.items())
        _outbox.put_nowait((time.monotonic() + settings.webhook_delay, event, hooks))


async def _deliver_forever(app: web.Application) -> None:
    # One worker: events reach receivers one at a time, in the order they happened.
    assert _outbox is not None
    timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            due, event, hooks = await _outbox.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
            for hook_id, hook in hooks:
                if hook.events is None or event.type in hook.events:
                    await _deliver(http, hook_id, hook, event, payload)


async def _deliver(http: aiohttp.ClientSession, hook_id: str, hook: Any, event: ls.Event,
                   payload: bytes) -> None:  # fmt: skip
    record = {"event": event.id, "type": event.type, "webhook": hook_id, "url": hook.url,
              "status": None, "error": None}  # fmt: skip
    timestamp = int(time.time())
    signed = b"%d.%s" % (timestamp, payload)
    signature = hmac.new(hook.secret.encode(), signed, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Stripe-Signature": f"t={timestamp},v1={signature}"}  # fmt: skip
    try:
        async with http.post(hook.url, data=payload, headers=headers) as response:
            record["status"] = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        record["error"] = repr(exc)
    ok = record["status"] is not None and record["status"] < 300
    log.log(logging.INFO if ok else logging.WARNING, "webhook %s %s -> %s: %s", event.type,
            event.id, hook.url, record["status"] or record["error"])  # fmt: skip
    deliveries.append(record)
    del deliveries[:-1000]


async def _start_delivery(app: web.Application) -> None:
    global _outbox
    _outbox = asyncio.Queue()
    app["stripe_emulator_delivery"] = asyncio.ensure_future(_deliver_forever(app))


async def _stop_delivery(app: web.Application) -> None:
    app["stripe_emulator_delivery"].cancel()


# --- middlewares -------------------------------------------------------------------------

_replays: OrderedDict[tuple[str, str, str], tuple[str, int, bytes]] = OrderedDict()
# Handlers do not wait between the look-up and the save, but one lock keeps that true.
_replay_lock = asyncio.Lock()


@web.middleware
async def _idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
    """Same `Idempotency-Key` on the same path: the first answer again, nothing new made."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    ident = (server.get_api_key(request) or "", request.path, key)
    body_hash = hashlib.sha256(await request.read()).hexdigest()
    async with _replay_lock:
        saved = _replays.get(ident)
        if saved is not None and saved[0] != body_hash:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request."
            )
            error = {"error": {"type": "idempotency_error", "message": message}}
            return server.json_response(error, status=400)
        if saved is not None:
            replayed = {"Idempotent-Replayed": "true"}
            return web.Response(body=saved[2], status=saved[1], headers=replayed,
                                content_type="application/json")  # fmt: skip
        try:
            response = await handler(request)
        except UserError as exc:
            response = exc.to_response()
        # Like Stripe: validation errors are not saved, results (and card errors) are.
        if isinstance(response, web.Response) and (response.status < 300 or response.status == 402):
            _replays[ident] = (body_hash, response.status, bytes(response.body))
            while len(_replays) > 10000:
                _replays.popitem(last=False)
    return response


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """localstripe's check, except for the browser pages; webhook receivers must be local."""
    if request.path.startswith(("/_checkout/", "/_portal/")):
        return await handler(request)
    if request.method == "POST" and request.path.startswith("/_config/webhooks/"):
        data = await server.get_post_data(request) or {}
        if not isinstance(data.get("url"), str) or not _is_loopback(data["url"]):
            raise _bad("Webhook receivers must be on 127.0.0.1, localhost or ::1")
    return await server.auth_middleware(request, handler)


# --- pages -------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}</body></html>
"""
_PAY_FORM = """<form method="post" action="/_checkout/{id}/pay">
<p><label>Email <input name="email" type="email" value="{email}"></label></p>
<p><label>Name on card <input name="name" value="Test Donor"></label></p>
<p>Card: 4242 4242 4242 4242 (test)</p>
<button id="pay" name="outcome" value="success">Pay</button>
<button id="pay-fail" name="outcome" value="fail">Pay with a declined card</button>
<button id="pay-async" name="outcome" value="async">Pay later (bank debit)</button>
</form><p><a id="cancel" href="{cancel_url}">Cancel</a></p>"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    return web.Response(text=text, status=status, content_type="text/html")


def _checkout_page(session: Any, error: str | None = None, status: int = 200) -> web.Response:
    esc = html.escape
    if session.status != "open":
        body = f"<p>This session is {esc(session.status)}.</p>"
        return _page("Checkout (emulator)", body, 409 if status == 200 else status)
    rows = "".join(
        f"<li>{esc(i['name'])} × {i['quantity']}: {_money(i['amount'], i['currency'])}"
        + (f" every {esc(i['recurring']['interval'])}" if i["recurring"] else "")
        + "</li>"
        for i in session._line_items
    )
    email = session.customer_email or ""
    if session.customer:
        email = ls.Customer._api_retrieve(session.customer).email or ""
    total = _money(session.amount_total, session.currency)
    body = (
        (f'<p id="error" role="alert">{esc(error)}</p>' if error else "")
        + f'<p>Mode: <span id="mode">{esc(session.mode)}</span>. '
        + f'Total: <strong id="amount">{total}</strong></p><ul>{rows}</ul>'
        + _PAY_FORM.format(
            id=esc(session.id), email=esc(email), cancel_url=esc(session.cancel_url or "#")
        )  # fmt: skip
    )
    return _page("Checkout (emulator)", body, status)


def _missing(title: str) -> web.Response:
    return _page(title, "<p>No such session.</p>", 404)


async def _show_checkout(request: web.Request) -> web.Response:
    session = ls.store.get("checkout.session:" + request.match_info["id"])
    return _checkout_page(session) if session else _missing("Checkout (emulator)")


async def _pay_checkout(request: web.Request) -> web.StreamResponse:
    session = ls.store.get("checkout.session:" + request.match_info["id"])
    if session is None:
        return _missing("Checkout (emulator)")
    form = await request.post()
    outcome = str(form.get("outcome") or "success")
    if session.status != "open":
        return _checkout_page(session, status=409)
    if outcome == "fail":
        return _checkout_page(session, "Your card was declined.", 402)
    if outcome not in ("success", "async"):
        return _checkout_page(session, f"Unknown outcome {outcome!r}.", 400)
    if outcome == "async" and session.mode != "payment":
        return _checkout_page(session, "Delayed payment is emulated in payment mode only.", 400)
    email = session.customer_email or str(form.get("email") or "").strip()
    if session.customer:
        email = ls.Customer._api_retrieve(session.customer).email or email
    if not email:
        return _checkout_page(session, "Enter your email address.", 400)
    session._complete(outcome, email, str(form.get("name") or "").strip() or None)
    raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))


async def _settle_checkout(request: web.Request) -> web.Response:
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    form = await request.post()
    pending = session.status == "complete" and session.payment_status == "unpaid"
    if not pending or not session.payment_intent:
        raise _bad("Only a complete session paid with `outcome=async` can be settled")
    session._settle("fail" if form.get("outcome") == "fail" else "success")
    return server.json_response(session._export())


async def _show_portal(request: web.Request) -> web.Response:
    portal = ls.store.get("billing_portal.session:" + request.match_info["id"])
    if portal is None:
        return _missing("Billing portal (emulator)")
    back = html.escape(portal.return_url or "#")
    body = (
        f'<p>ls.Customer {html.escape(portal.customer)}.</p><a id="return" href="{back}">Return</a>'
    )
    return _page("Billing portal (emulator)", body)


async def _remove_webhook(request: web.Request) -> web.Response:
    webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


async def _list_deliveries(request: web.Request) -> web.Response:
    return server.json_response(deliveries)


# --- install -----------------------------------------------------------------------------

_installed = False


def install(base_url: str, store_path: Path | None, webhook_delay: float = 0.1,
            webhook_timeout: float = 5.0) -> web.Application:  # fmt: skip
    """Patch localstripe, add the new routes and load the store; returns the aiohttp app.

    `base_url` is the emulator's own origin (for the pay and portal page links),
    `store_path` the pickle file (None keeps everything in memory). Call once per process.
    """
    global _installed
    if _installed:
        raise RuntimeError("the Stripe emulator is already installed in this process")
    _installed = True
    settings.base_url = base_url.rstrip("/")
    settings.store_path = store_path
    settings.webhook_delay, settings.webhook_timeout = webhook_delay, webhook_timeout

    ls.Store.__setitem__ = dict.__setitem__
    ls.Store.__delitem__ = dict.__delitem__
    ls.Store.dump_to_disk = _dump_store
    ls.Store.try_load_from_disk = _load_store
    ls.schedule_webhook = webhooks.schedule_webhook = _schedule_webhook
    ls.Event._api_list_all = classmethod(_event_list_all)
    ls.Subscription._api_update = classmethod(_subscription_update)
    ls.Subscription._api_delete = classmethod(_subscription_delete)
    ls.Invoice._finalize = _invoice_finalize
    ls.Invoice._on_payment_success = _invoice_paid
    for cls in (ls.SubscriptionItem, ls.InvoiceLineItem):
        cls.price = property(lambda self: _price_of(self.plan))
    ls.SubscriptionItem.current_period_start = property(
        lambda self: self._current_period()["start"]
    )
    ls.SubscriptionItem.current_period_end = property(lambda self: self._current_period()["end"])

    app = server.app
    app.middlewares[:] = [
        server.error_middleware, _auth, _idempotency, server.save_store_middleware
    ]  # fmt: skip
    route = app.router.add_route
    for url, cls in (("/v1/prices", Price), ("/v1/checkout/sessions", CheckoutSession)):
        route("POST", url, server.api_create(cls, url))
        route("GET", url, server.api_list_all(cls, url))
        route("GET", url + "/{id}", server.api_retrieve(cls, url))
    expire_url = "/v1/checkout/sessions/{id}/expire"
    route("POST", expire_url, server.api_extra(CheckoutSession._api_expire, expire_url))
    portal_url = "/v1/billing_portal/sessions"
    route("POST", portal_url, server.api_create(BillingPortalSession, portal_url))
    route("GET", "/_checkout/{id}", _show_checkout)
    route("POST", "/_checkout/{id}/pay", _pay_checkout)
    route("POST", "/_checkout/{id}/settle", _settle_checkout)
    route("GET", "/_portal/{id}", _show_portal)
    route("DELETE", "/_config/webhooks/{id}", _remove_webhook)
    route("GET", "/_config/deliveries", _list_deliveries)
    app.on_startup.append(_start_delivery)
    app.on_cleanup.append(_stop_delivery)

    ls.store.try_load_from_disk()
    return app
