"""The donation page through the real Stripe SDK and the emulator: validation before any
Stripe call, Checkout in both modes, double-click idempotency, cancel and resume, the
thank-you page, rate limits and campaign pages."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.donations.factories import make_campaign, make_donation, make_donor
from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from webapp.donations.fees import fee_to_cover
from webapp.donations.models import Donation, DonationStatus, Donor, Frequency


@pytest.fixture
def app_config(app_config: dict[str, Any], stripe_emulator: StripeEmulator) -> dict[str, Any]:
    app_config["STRIPE_SECRET_KEY"] = stripe_emulator.api_key
    app_config["STRIPE_API_BASE"] = stripe_emulator.api_base
    app_config["STRIPE_WEBHOOK_SECRET"] = "whsec_page_tests"
    return app_config


class CountingGateway:
    """Wraps the real gateway and counts the calls (to prove bad input reaches no Stripe)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


@pytest.fixture
def gateway(app: Flask) -> CountingGateway:
    counting = CountingGateway(app.extensions["stripe_gateway"])
    app.extensions["stripe_gateway"] = counting
    return counting


def form_data(page: str, **fields: str) -> dict[str, str]:
    token = page.split('name="checkout_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    data = {
        "csrf_token": csrf_token(page),
        "checkout_token": token,
        "frequency": "one_time",
        "currency": "EUR",
        "amount": "25.00",
        "custom_amount": "",
        "email": "reader@example.com",
        "name": "Ann",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def donations(db_session: Session) -> list[Donation]:
    db_session.expire_all()
    return list(db_session.scalars(select(Donation).order_by(Donation.id)))


@pytest.mark.parametrize("path", ["/donate", "/en/donate", "/ru/donate"])
def test_the_page_shows_presets_and_choices(client: FlaskClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert 'name="frequency"' in page.text and 'name="custom_amount"' in page.text
    text = page.text.replace("\xa0", " ")
    assert 'value="25.00"' in text and ("€25" in text or "25 €" in text)
    for currency in ("EUR", "USD", "GBP"):
        assert f'value="{currency}"' in page.text
    if path.startswith("/ru"):
        assert 'lang="ru"' in page.text


def test_query_links_choose_currency_frequency_and_carry_source(client: FlaskClient) -> None:
    page = client.get("/donate?currency=USD&frequency=monthly&source=article-42&utm_medium=email")
    assert 'value="USD" checked' in page.text and 'value="monthly" checked' in page.text
    assert 'value="article-42"' in page.text and 'value="email"' in page.text
    assert "$10" in page.text  # the monthly USD presets


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "", "custom_amount": ""}, "Please choose or enter an amount."),
        ({"amount": "other", "custom_amount": "abc"}, "Please enter an amount in numbers"),
        ({"custom_amount": "0.50"}, "The smallest gift is €1"),
        ({"custom_amount": "999999999"}, "The largest gift"),
        ({"custom_amount": "10.555"}, "Please enter an amount in numbers"),
        ({"currency": "XYZ"}, "Please choose one of the currencies offered."),
        ({"frequency": "weekly"}, "Please choose one time, monthly or yearly."),
        ({"email": "not-an-address"}, "valid email address"),
        ({"email": ""}, "Please enter your email address"),
    ],
)
def test_bad_input_gets_a_clear_message_and_no_stripe_call(
    client: FlaskClient,
    db_session: Session,
    gateway: CountingGateway,
    fields: dict[str, str],
    message: str,
) -> None:
    page = client.get("/donate")
    response = client.post("/donate", data=form_data(page.text, **fields))
    assert response.status_code == 400
    assert message in response.text.replace("\xa0", "")
    assert gateway.calls == [] and donations(db_session) == []


def test_messages_come_in_the_readers_language(
    client: FlaskClient, db_session: Session, gateway: CountingGateway
) -> None:
    page = client.get("/ru/donate")
    response = client.post("/ru/donate", data=form_data(page.text, custom_amount="0,5"))
    assert response.status_code == 400
    assert "The smallest gift" not in response.text
    assert gateway.calls == []


def test_the_honeypot_sends_nothing_to_stripe(
    client: FlaskClient, db_session: Session, gateway: CountingGateway
) -> None:
    page = client.get("/donate")
    response = client.post("/donate", data=form_data(page.text, website="http://spam"))
    assert response.status_code == 400 and gateway.calls == [] and donations(db_session) == []


def test_a_one_time_gift_opens_checkout_with_our_metadata(
    client: FlaskClient, db_session: Session, stripe_emulator: StripeEmulator
) -> None:
    page = client.get("/donate?source=article-7&utm_source=newsletter")
    response = client.post(
        "/donate",
        data=form_data(
            page.text,
            cover_fee="y",
            subscribe="y",
            source="article-7",
            utm_source="newsletter",
        ),
    )
    assert response.status_code == 303
    url = response.headers["Location"]
    assert url.startswith(stripe_emulator.api_base + "/_checkout/cs_")
    (donation,) = donations(db_session)
    fee = fee_to_cover(2500, percent_bp=150, fixed_minor=25)
    assert (donation.status, donation.amount_minor, donation.fee_covered_minor) == (
        DonationStatus.PENDING,
        2500 + fee,
        fee,
    )
    assert donation.source == "article-7" and donation.utm_source == "newsletter"
    assert donation.wants_newsletter and donation.donor.stripe_customer_id
    checkout = stripe_emulator.client().v1.checkout.sessions.retrieve(
        donation.stripe_checkout_session_id
    )
    assert checkout.metadata["donation_id"] == str(donation.id)
    assert checkout.amount_total == 2500 + fee and checkout.mode == "payment"


def test_a_monthly_gift_opens_a_subscription_checkout(
    client: FlaskClient, db_session: Session, stripe_emulator: StripeEmulator
) -> None:
    page = client.get("/ru/donate")
    response = client.post(
        "/ru/donate",
        data=form_data(
            page.text,
            frequency="monthly",
            amount="other",
            custom_amount="7,50",
            currency="GBP",
        ),
    )
    assert response.status_code == 303
    (donation,) = donations(db_session)
    assert (donation.frequency, donation.amount_minor, donation.currency, donation.language) == (
        Frequency.MONTHLY,
        750,
        "GBP",
        "ru",
    )
    checkout = stripe_emulator.client().v1.checkout.sessions.retrieve(
        donation.stripe_checkout_session_id
    )
    assert checkout.mode == "subscription" and checkout.locale == "ru"


def test_a_double_click_opens_one_checkout(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    page = client.get("/donate")
    data = form_data(page.text)
    first = client.post("/donate", data=data)
    second = client.post("/donate", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert len(donations(db_session)) == 1


def test_two_simultaneous_clicks_open_one_checkout(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    page = client.get("/donate")
    data = form_data(page.text, email="twice@example.com")
    cookie = client.get_cookie("session")
    locations: list[str] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        other = app.test_client()
        if cookie is not None:
            other.set_cookie("session", cookie.value, domain="localhost")
        barrier.wait()
        locations.append(other.post("/donate", data=data).headers.get("Location", ""))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(locations)) == 1 and locations[0]
    assert len(donations(db_session)) == 1
    assert db_session.scalar(select(func.count()).select_from(Donor)) == 1


def test_cancel_returns_to_the_form_with_the_values_kept(
    client: FlaskClient, db_session: Session, stripe_emulator: StripeEmulator
) -> None:
    page = client.get("/donate")
    response = client.post(
        "/donate",
        data=form_data(
            page.text,
            custom_amount="12.34",
            amount="other",
            frequency="yearly",
            name="Kept Name",
        ),
    )
    status, pay_page = stripe_emulator.get(response.headers["Location"])
    cancel_url = pay_page.split('id="cancel" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    parts = urlsplit(cancel_url)
    back = client.get(f"{parts.path}?{parts.query}")
    assert back.status_code == 200
    assert "nothing was charged" in back.text
    assert 'value="12.34"' in back.text and 'value="yearly" checked' in back.text
    assert 'value="Kept Name"' in back.text and 'value="reader@example.com"' in back.text


def test_the_thank_you_page_confirms_by_asking_stripe_when_no_webhook_came(
    client: FlaskClient,
    db_session: Session,
    stripe_emulator: StripeEmulator,
    smtp_sink: SmtpSink,
) -> None:
    page = client.get("/donate")
    response = client.post("/donate", data=form_data(page.text))
    paid = stripe_emulator.pay(response.headers["Location"])
    assert paid.status == 303 and paid.location
    parts = urlsplit(paid.location)
    assert parts.path == "/en/donate/thanks"
    thanks = client.get(f"{parts.path}?{parts.query}")
    assert thanks.status_code == 200 and "Thank you" in thanks.text
    assert "€25" in thanks.text
    (donation,) = donations(db_session)
    assert donation.status == DonationStatus.PAID
    receipt = smtp_sink.wait_for(1)[0]
    assert receipt.rcpt_tos == ["reader@example.com"]
    assert client.get(f"{parts.path}?{parts.query}").status_code == 200
    assert len(smtp_sink.messages) == 1


def test_an_unpaid_session_shows_a_confirming_page(
    client: FlaskClient, db_session: Session
) -> None:
    page = client.get("/donate")
    response = client.post("/donate", data=form_data(page.text))
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    thanks = client.get(f"/donate/thanks?session_id={session_id}")
    assert thanks.status_code == 200 and thanks.headers.get("Refresh") == "5"
    assert client.get("/donate/thanks?session_id=cs_unknown").status_code == 404
    assert client.get("/donate/thanks?session_id=<script>").status_code == 404


def test_stripe_down_gives_a_clear_503_and_the_values_stay(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    from webapp.donations.gateway import StripeApiGateway

    app.extensions["stripe_gateway"] = StripeApiGateway("sk_test_x", "http://127.0.0.1:9")
    page = client.get("/donate")
    response = client.post("/donate", data=form_data(page.text, name="Still Here"))
    assert response.status_code == 503
    assert "Nothing was charged" in response.text and 'value="Still Here"' in response.text


def test_too_many_checkouts_answer_429_with_a_page(app: Flask, client: FlaskClient) -> None:
    app.config["DONATE_EMAIL_LIMIT"] = "2 per hour"
    page = client.get("/donate")
    codes = [
        client.post("/donate", data=form_data(page.text, checkout_token=f"tok{i}" * 6)).status_code
        for i in range(3)
    ]
    assert codes == [303, 303, 429]
    assert (
        "Too many requests"
        in client.post("/donate", data=form_data(page.text, checkout_token="tok9" * 6)).text
    )


def test_a_campaign_page_shows_its_progress_and_records_the_campaign(
    client: FlaskClient, db_session: Session
) -> None:
    campaign = make_campaign(db_session, slug="winter-drive", goal_minor=100_000)
    donor = make_donor(db_session)
    make_donation(db_session, donor=donor, campaign_id=campaign.id, amount_minor=30_000)
    make_donation(
        db_session, donor=donor, campaign_id=campaign.id, amount_minor=10_000, refunded_minor=10_000
    )
    make_donation(
        db_session, donor=donor, campaign_id=campaign.id, amount_minor=5_000, currency="USD"
    )
    db_session.commit()
    page = client.get("/ru/donate/winter-drive")
    assert page.status_code == 200
    assert "Сохраним независимость" in page.text
    assert 'value="30"' in page.text  # <progress> at 30% (refund left out)
    response = client.post("/ru/donate/winter-drive", data=form_data(page.text))
    assert response.status_code == 303
    new = donations(db_session)[-1]
    assert new.campaign_id == campaign.id
    assert client.get("/donate/no-such-campaign").status_code == 404


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "frequency",
                "amount",
                "custom_amount",
                "currency",
                "email",
                "name",
                "cover_fee",
                "source",
                "utm_source",
                "checkout_token",
            ]
        ),
        st.text(max_size=300),
        max_size=6,
    )
)
def test_hostile_input_never_breaks_the_page(
    client: FlaskClient, db_session: Session, gateway: CountingGateway, fields: dict[str, str]
) -> None:
    page = client.get("/donate")
    data = form_data(page.text, **{"email": "x-not-valid", **fields})
    response = client.post("/donate", data=data)
    assert response.status_code in (303, 400, 429)
    if response.status_code != 303:
        assert all(d.status == DonationStatus.PENDING for d in donations(db_session))


def test_utm_values_are_kept_from_the_query(client: FlaskClient) -> None:
    page = client.get("/donate?utm_campaign=" + "x" * 500)
    value = page.text.split('name="utm_campaign"', 1)[1]
    assert "x" * 100 in value and "x" * 101 not in value
