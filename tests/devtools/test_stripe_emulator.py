"""The Stripe emulator through the real stripe SDK: every call the app makes, the pay page,
and signed webhooks checked with `stripe.Webhook.construct_event`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.helpers.stripe_emulator import StripeEmulator

SECRET = "whsec_test_emulator"


class WebhookReceiver:
    """A tiny HTTP server that accepts only events whose signature checks out."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.events: list[dict[str, Any]] = []
        self.rejected: list[bytes] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        payload, self.headers.get("Stripe-Signature"), receiver.secret
                    )
                except (stripe.SignatureVerificationError, ValueError):
                    with receiver.lock:
                        receiver.rejected.append(payload)
                    self.send_response(400)
                else:
                    with receiver.lock:
                        receiver.events.append(event.to_dict())
                    self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/webhook"

    def received(self, **match: str) -> list[dict[str, Any]]:
        """Events so far whose type and data.object.id match (when given)."""
        with self.lock:
            events = list(self.events)
        return [
            e
            for e in events
            if ("type" not in match or e["type"] == match["type"])
            and ("object_id" not in match or e["data"]["object"].get("id") == match["object_id"])
        ]

    def wait_for(self, timeout: float = 10.0, **match: str) -> dict[str, Any]:
        """The first event matching, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(**match)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no event {match}; got {[e['type'] for e in self.events]}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", autouse=True)
def no_internal_errors(stripe_emulator: StripeEmulator) -> Iterator[None]:
    """After this module, the emulator must not have logged a crash of its own."""
    yield
    assert "Traceback" not in stripe_emulator.log, stripe_emulator.log


@pytest.fixture
def stripe_client(stripe_emulator: StripeEmulator) -> stripe.StripeClient:
    return stripe_emulator.client()


@pytest.fixture
def receiver(stripe_emulator: StripeEmulator) -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    webhook_id = stripe_emulator.register_webhook(hook.url, SECRET)
    yield hook
    stripe_emulator.unregister_webhook(webhook_id)
    hook.stop()


def unique_email() -> str:
    return f"donor-{uuid.uuid4().hex[:10]}@example.org"


def payment_session(
    client: stripe.StripeClient, key: str | None = None, **extra: Any
) -> stripe.checkout.Session:
    params: dict[str, Any] = {
        "mode": "payment",
        "customer_email": unique_email(),
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2500,
                    "product_data": {"name": "Donation"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "http://127.0.0.1:5000/donate/thanks?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:5000/donate",
        "metadata": {"donation_id": "41"},
        "client_reference_id": "donation-41",
        "locale": "ru",
        "submit_type": "donate",
        "payment_intent_data": {"metadata": {"donation_id": "41"}, "description": "Gift"},
    }
    params.update(extra)
    options = {"idempotency_key": key} if key else {}
    return client.v1.checkout.sessions.create(params, options)  # type: ignore[arg-type]


def subscription_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer_email": unique_email(),
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 500,
                    "product_data": {"name": "Monthly support"},
                    "recurring": {"interval": "month"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "http://127.0.0.1:5000/thanks/{CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:5000/donate",
        "subscription_data": {"metadata": {"plan_id": "7"}},
    }
    params.update(extra)
    return client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]


def events_since(client: stripe.StripeClient, since: int, **params: Any) -> list[Any]:
    page = client.v1.events.list({"created": {"gte": since}, "limit": 100, **params})
    return list(page.data)


# --- customers and idempotency -----------------------------------------------------------


def test_customers_are_found_by_email_and_created_once_per_idempotency_key(
    stripe_client: stripe.StripeClient,
) -> None:
    email, key = unique_email(), f"customer-{uuid.uuid4()}"
    params = {"email": email, "name": "Anna", "metadata": {"supporter_id": "3"}}

    first = stripe_client.v1.customers.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
    again = stripe_client.v1.customers.create(params, {"idempotency_key": key})  # type: ignore[arg-type]

    assert again.id == first.id
    found = stripe_client.v1.customers.list({"email": email, "limit": 1})
    assert [c.id for c in found.data] == [first.id]
    assert found.data[0].metadata.to_dict() == {"supporter_id": "3"}
    assert stripe_client.v1.customers.list({"email": unique_email(), "limit": 1}).data == []
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create({"email": unique_email()}, {"idempotency_key": key})


def test_a_new_idempotency_key_makes_a_new_customer(stripe_client: stripe.StripeClient) -> None:
    email = unique_email()
    stripe_client.v1.customers.create({"email": email}, {"idempotency_key": "a-" + email})
    stripe_client.v1.customers.create({"email": email}, {"idempotency_key": "b-" + email})
    assert len(stripe_client.v1.customers.list({"email": email}).data) == 2


# --- checkout, payment mode --------------------------------------------------------------


def test_checkout_session_has_the_current_shape(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator
) -> None:
    session = payment_session(stripe_client, unknown_param="accepted", allow_promotion_codes=True)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"{stripe_emulator.api_base}/_checkout/{session.id}"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_total, session.amount_subtotal, session.currency) == (2500, 2500, "eur")
    assert session.metadata.to_dict() == {"donation_id": "41"}
    assert session.client_reference_id == "donation-41"
    assert session.payment_intent is None and session.subscription is None
    assert session.invoice is None and session.customer_details is None
    assert session.expires_at > session.created
    assert "{CHECKOUT_SESSION_ID}" in session.success_url
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).id == session.id


def test_checkout_sessions_are_listed_newest_first_from_a_time(
    stripe_client: stripe.StripeClient,
) -> None:
    since = int(time.time())
    first, second = payment_session(stripe_client), payment_session(stripe_client)

    listed = [s.id for s in stripe_client.v1.checkout.sessions.list({"created": {"gte": since}})]

    assert listed.index(second.id) < listed.index(first.id)
    assert stripe_client.v1.checkout.sessions.list({"created": {"gt": since + 3600}}).data == []


def test_double_click_opens_one_session(stripe_client: stripe.StripeClient) -> None:
    key = f"checkout-{uuid.uuid4()}"
    params = {"customer_email": "same@example.org"}
    assert (
        payment_session(stripe_client, key, **params).id
        == payment_session(stripe_client, key, **params).id
    )


def test_invalid_checkout_parameters_are_refused(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        payment_session(stripe_client, mode="bogus")
    with pytest.raises(stripe.InvalidRequestError):  # a recurring price in payment mode
        payment_session(
            stripe_client,
            line_items=[
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 100,
                        "product_data": {"name": "x"},
                        "recurring": {"interval": "month"},
                    }
                }
            ],
        )
    with pytest.raises(stripe.InvalidRequestError):
        subscription_session(stripe_client, customer="cus_missing", customer_email=None)


def test_paying_completes_the_session_and_sends_signed_events(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    session = payment_session(stripe_client)

    status, page = stripe_emulator.get(session.url)
    assert status == 200 and 'id="pay"' in page and 'id="cancel"' in page and "25.00 EUR" in page
    result = stripe_emulator.pay(session.url)

    assert result.status == 303
    assert result.location == f"http://127.0.0.1:5000/donate/thanks?session_id={session.id}"
    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    assert paid.customer_details.email == session.customer_email
    assert paid.customer_details.name == "Test Donor"
    intent = stripe_client.v1.payment_intents.retrieve(paid.payment_intent)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 2500, "eur")
    assert intent.metadata.to_dict() == {"donation_id": "41"}
    assert intent.description == "Gift" and intent.customer == paid.customer

    completed = receiver.wait_for(type="checkout.session.completed", object_id=session.id)
    assert completed["data"]["object"]["payment_intent"] == intent.id
    assert completed["data"]["object"]["metadata"] == {"donation_id": "41"}
    succeeded = receiver.wait_for(type="payment_intent.succeeded", object_id=intent.id)
    assert succeeded["data"]["object"]["metadata"] == {"donation_id": "41"}
    assert receiver.rejected == []
    assert stripe_emulator.pay(session.id).status == 409  # a session is paid once


def test_a_declined_card_leaves_the_session_open_and_emits_nothing(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator
) -> None:
    since = int(time.time())
    session = payment_session(stripe_client)

    result = stripe_emulator.pay(session.url, outcome="fail")

    assert result.status == 402 and "declined" in result.html and 'id="pay"' in result.html
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    objects = [e.to_dict()["data"]["object"] for e in events_since(stripe_client, since)]
    assert all(o.get("id") != session.id for o in objects)
    assert all(o.get("email") != session.customer_email for o in objects)


def test_a_delayed_payment_completes_unpaid_then_settles(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    session = payment_session(stripe_client)

    assert stripe_emulator.pay(session.url, outcome="async").status == 303
    pending = receiver.wait_for(type="checkout.session.completed", object_id=session.id)
    assert pending["data"]["object"]["payment_status"] == "unpaid"

    settled = stripe_emulator.settle(session.id)

    assert settled["payment_status"] == "paid"
    receiver.wait_for(type="checkout.session.async_payment_succeeded", object_id=session.id)
    intent = stripe_client.v1.payment_intents.retrieve(settled["payment_intent"])
    assert intent.status == "succeeded"


def test_an_existing_customer_pays_without_a_new_customer(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator
) -> None:
    email = unique_email()
    customer = stripe_client.v1.customers.create({"email": email, "name": "Boris"})
    session = payment_session(stripe_client, customer=customer.id, customer_email=None)

    stripe_emulator.pay(session.url)

    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert paid.customer == customer.id and paid.customer_details.email == email
    assert len(stripe_client.v1.customers.list({"email": email}).data) == 1


def test_an_open_session_can_be_expired(stripe_client: stripe.StripeClient) -> None:
    session = payment_session(stripe_client)
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)


# --- checkout, subscription mode, and subscription changes --------------------------------


def test_paying_a_subscription_session_starts_a_paid_subscription(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    session = subscription_session(stripe_client)
    assert (session.amount_total, session.mode) == (500, "subscription")

    assert stripe_emulator.pay(session.url).status == 303

    paid = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status, paid.payment_intent) == ("complete", "paid", None)
    subscription = stripe_client.v1.subscriptions.retrieve(paid.subscription)
    assert subscription.status == "active" and subscription.customer == paid.customer
    assert subscription.metadata.to_dict() == {"plan_id": "7"}
    item = subscription["items"].data[0]
    assert (item.price.unit_amount, item.price.currency) == (500, "eur")
    assert item.price.recurring.interval == "month"
    invoice = stripe_client.v1.invoices.retrieve(paid.invoice)
    assert (invoice.status, invoice.amount_paid) == ("paid", 500)
    assert invoice.parent.subscription_details.subscription == subscription.id

    for event_type, object_id in (
        ("checkout.session.completed", session.id),
        ("customer.subscription.created", subscription.id),
        ("invoice.payment_succeeded", invoice.id),
    ):
        receiver.wait_for(type=event_type, object_id=object_id)
    first_invoice = receiver.wait_for(type="invoice.paid", object_id=invoice.id)
    assert first_invoice["data"]["object"]["billing_reason"] == "subscription_create"
    assert first_invoice["data"]["object"]["subscription"] == subscription.id  # old shape


def test_subscription_amount_change_cancel_at_period_end_and_cancel(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    session = subscription_session(stripe_client)
    stripe_emulator.pay(session.url)
    sub_id = stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    subscription = stripe_client.v1.subscriptions.retrieve(sub_id)
    item = subscription["items"].data[0]

    changed = stripe_client.v1.subscriptions.update(
        sub_id,
        {
            "items": [
                {
                    "id": item.id,
                    "price_data": {
                        "currency": "eur",
                        "product": item.price.product,
                        "unit_amount": 900,
                        "recurring": {"interval": "month"},
                    },
                }
            ],
            "proration_behavior": "none",
        },
    )

    new_item = changed["items"].data[0]
    assert (new_item.id, new_item.price.unit_amount) == (item.id, 900)
    updated = receiver.wait_for(type="customer.subscription.updated", object_id=sub_id)
    assert "items" in updated["data"]["previous_attributes"]

    ending = stripe_client.v1.subscriptions.update(sub_id, {"cancel_at_period_end": True})
    assert ending.cancel_at_period_end is True and ending.cancel_at == ending.current_period_end

    cancelled = stripe_client.v1.subscriptions.cancel(sub_id)
    assert cancelled.status == "canceled" and cancelled.canceled_at
    deleted = receiver.wait_for(type="customer.subscription.deleted", object_id=sub_id)
    assert deleted["data"]["object"]["status"] == "canceled"
    updates = receiver.received(type="customer.subscription.updated", object_id=sub_id)
    assert [u["data"]["object"]["cancel_at_period_end"] for u in updates] == [False, True]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(sub_id, {"metadata": {"x": "y"}})


# --- prices, portal, events --------------------------------------------------------------


def test_prices_are_created_and_a_recurring_one_shadows_a_plan(
    stripe_client: stripe.StripeClient,
) -> None:
    price = stripe_client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1200,
            "product_data": {"name": "Yearly"},
            "recurring": {"interval": "year"},
            "metadata": {"tier": "gold"},
        }
    )
    one_time = stripe_client.v1.prices.create(
        {"currency": "eur", "unit_amount": 300, "product": price.product}
    )

    assert stripe_client.v1.prices.retrieve(price.id).to_dict() == price.to_dict()
    assert (price.type, price.recurring.interval, price.metadata.tier) == (
        "recurring",
        "year",
        "gold",
    )
    assert (one_time.type, one_time.recurring) == ("one_time", None)
    assert stripe_client.v1.plans.retrieve(price.id).amount == 1200
    session = subscription_session(stripe_client, line_items=[{"price": price.id, "quantity": 2}])
    assert (session.amount_total, session.currency) == (2400, "usd")


def test_billing_portal_session_links_to_a_page_with_the_way_back(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator
) -> None:
    customer = stripe_client.v1.customers.create({"email": unique_email()})
    portal = stripe_client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "return_url": "http://127.0.0.1:5000/account"}
    )

    assert portal.object == "billing_portal.session" and portal.id.startswith("bps_")
    status, page = stripe_emulator.get(portal.url)
    assert status == 200 and "Billing portal (emulator)" in page
    assert 'href="http://127.0.0.1:5000/account"' in page


def test_events_are_listed_newest_first_filtered_and_paged(
    stripe_client: stripe.StripeClient,
) -> None:
    since = int(time.time())
    emails = [unique_email() for _ in range(3)]
    for email in emails:
        stripe_client.v1.customers.create({"email": email})

    page = stripe_client.v1.events.list(
        {"created": {"gte": since}, "types": ["customer.created"], "limit": 2}
    )
    ours = [e for e in page.data if e.data.object.email in emails]
    assert page.has_more and [e.data.object.email for e in ours][:1] == [emails[-1]]
    rest = stripe_client.v1.events.list(
        {
            "created": {"gte": since},
            "types": ["customer.created"],
            "limit": 100,
            "starting_after": page.data[-1].id,
        }
    )
    listed = [
        e.data.object.email for e in [*page.data, *rest.data] if e.data.object.email in emails
    ]
    assert listed == emails[::-1]
    assert stripe_client.v1.events.retrieve(page.data[0].id).id == page.data[0].id
    other = events_since(stripe_client, since, type="customer.*")
    assert "customer.created" in {e.type for e in other}
    assert all(e.type.startswith("customer.") for e in other)


# --- webhooks ----------------------------------------------------------------------------


def test_webhooks_with_a_wrong_secret_or_a_dead_receiver_do_not_block_delivery(
    stripe_client: stripe.StripeClient, stripe_emulator: StripeEmulator, receiver: WebhookReceiver
) -> None:
    wrong = WebhookReceiver("whsec_someone_else")
    wrong.secret = "whsec_not_what_the_emulator_signs_with"
    wrong_id = stripe_emulator.register_webhook(wrong.url, "whsec_someone_else")
    dead_id = stripe_emulator.register_webhook("http://127.0.0.1:9/webhook", SECRET)
    try:
        customer = stripe_client.v1.customers.create({"email": unique_email()})
        receiver.wait_for(type="customer.created", object_id=customer.id)
        wait_until(lambda: bool(wrong.rejected))
        assert wrong.events == []
        dead = [d for d in stripe_emulator.deliveries() if d["webhook"] == dead_id]
        assert dead and dead[-1]["status"] is None and dead[-1]["error"]
    finally:
        stripe_emulator.unregister_webhook(wrong_id)
        stripe_emulator.unregister_webhook(dead_id)
        wrong.stop()


def test_webhook_receivers_must_be_local(stripe_emulator: StripeEmulator) -> None:
    with pytest.raises(AssertionError, match="400"):
        stripe_emulator.register_webhook("http://example.org/webhook", SECRET)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --- launcher ----------------------------------------------------------------------------


def test_the_store_folder_keeps_objects_between_runs(tmp_path: Path) -> None:
    first = StripeEmulator(store_dir=tmp_path).start()
    try:
        customer = first.client().v1.customers.create({"email": "kept@example.org"})
        session = subscription_session(first.client(), customer_email=None, customer=customer.id)
        first.pay(session.url)
    finally:
        first.stop()
    assert (tmp_path / "localstripe.pickle").exists()

    second = StripeEmulator(store_dir=tmp_path).start()
    try:
        client = second.client()
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.org"
        kept = client.v1.checkout.sessions.retrieve(session.id)
        assert kept.status == "complete"
        item = client.v1.subscriptions.retrieve(kept.subscription)["items"].data[0]
        assert item.price.unit_amount == 500
    finally:
        second.stop()
