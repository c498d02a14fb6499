"""Staff donation pages: who may see them, the list and its CSV, the donor page, offline
gifts, refunds seen, campaigns and settings — each change audit-logged."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.donations.factories import make_campaign, make_donation, make_donor, make_plan
from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import make_subscriber
from webapp.donations.models import (
    Campaign,
    Donation,
    DonationKind,
    DonationSettings,
    DonationStatus,
)
from webapp.staff.models import AuditLog


def login(client: FlaskClient, db_session: Session, role: str = "fundraiser") -> None:
    staff = make_staff(db_session, role=role)
    db_session.commit()
    force_login(client, db_session, staff)


def audit_actions(db_session: Session) -> list[str]:
    db_session.expire_all()
    return [entry.action for entry in db_session.scalars(select(AuditLog).order_by(AuditLog.id))]


@pytest.mark.parametrize(("role", "status"), [
    ("fundraiser", 200), ("admin", 200), ("editor", 403), ("viewer", 403),
])
def test_only_fundraisers_and_admins_see_donations(
    client: FlaskClient, db_session: Session, role: str, status: int
) -> None:
    login(client, db_session, role)
    for path in ("/staff/donations/", "/staff/donations/campaigns", "/staff/donations/settings",
                 "/staff/donations/offline/new", "/staff/donations/export.csv"):
        assert client.get(path).status_code == status, path


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/staff/donations/")
    assert response.status_code in (302, 303) and "/staff/login" in response.headers["Location"]


def test_list_filters_search_totals_and_csv(client: FlaskClient, db_session: Session) -> None:
    ann = make_donor(db_session, email="ann@example.com", name="Ann Lee")
    bob = make_donor(db_session, email="bob@example.com", name="Bob Stone")
    make_donation(db_session, donor=ann, amount_minor=1000, currency="EUR", source="art-1")
    refunded = make_donation(db_session, donor=ann, amount_minor=3000, currency="EUR",
                             refunded_minor=3000, stripe_payment_intent_id="pi_find_me")
    make_donation(db_session, donor=bob, amount_minor=2000, currency="USD")
    make_donation(db_session, donor=bob, amount_minor=500, status=DonationStatus.PENDING)
    login(client, db_session)

    page = client.get("/staff/donations/").text
    assert "4 donations match" in page and "€40" in page and "€10" in page  # gross and net
    assert "ann@example.com" in client.get("/staff/donations/?q=ann").text
    assert "bob@example.com" not in client.get("/staff/donations/?q=ann").text
    assert "1 donation matches" in client.get("/staff/donations/?q=pi_find_me").text
    assert "1 donation matches" in client.get(
        f"/staff/donations/?q={refunded.receipt_number}").text
    assert "2 donations match" in client.get("/staff/donations/?currency=EUR&status=paid").text
    unseen = client.get("/staff/donations/?unseen=y").text
    assert "1 donation matches" in unseen and "Mark seen" in unseen
    assert client.get("/staff/donations/?status=nonsense").status_code == 400

    export = client.get("/staff/donations/export.csv?currency=EUR")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 3
    assert {row["net"] for row in rows if row["status"] == "paid"} == {"10.00", "0.00"}
    assert "donations.export" in audit_actions(db_session)


def test_marking_a_refund_seen(client: FlaskClient, db_session: Session) -> None:
    donor = make_donor(db_session)
    donation = make_donation(db_session, donor=donor, refunded_minor=1000)
    login(client, db_session)
    page = client.get("/staff/donations/?unseen=y")
    response = client.post(f"/staff/donations/{donation.id}/refund-seen",
                           data={"csrf_token": csrf_token(page.text), "next": "/evil.example"})
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/staff/donations/")
    db_session.expire_all()
    assert db_session.get(Donation, donation.id).refund_seen_at is not None
    assert "0 donations match" in client.get("/staff/donations/?unseen=y").text
    assert "donations.refund_seen" in audit_actions(db_session)


def test_the_donor_page_shows_plans_gifts_newsletter_and_emails(
    client: FlaskClient, db_session: Session
) -> None:
    donor = make_donor(db_session, email="cara@example.com", name="Cara")
    plan = make_plan(db_session, donor=donor, amount_minor=900)
    make_donation(db_session, donor=donor, plan=plan, amount_minor=900)
    make_subscriber(db_session, email="cara@example.com", status="confirmed")
    login(client, db_session)
    page = client.get(f"/staff/donations/donors/{donor.id}")
    assert page.status_code == 200
    assert plan.stripe_subscription_id in page.text and "€9" in page.text
    assert "Confirmed" in page.text or "confirmed" in page.text
    assert client.get("/staff/donations/donors/999999").status_code == 404


def test_recording_an_offline_gift_with_a_receipt(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    campaign = make_campaign(db_session, slug="spring")
    login(client, db_session)
    form = client.get("/staff/donations/offline/new")
    response = client.post("/staff/donations/offline/new", data={
        "csrf_token": csrf_token(form.text), "email": "Dana@Example.com", "name": "Dana",
        "amount": "150", "currency": "GBP", "received_on": "2026-09-30",
        "method": "bank_transfer", "note": "ref 42", "campaign": str(campaign.id),
        "language": "ru", "send_receipt": "y",
    })
    assert response.status_code == 303
    db_session.expire_all()
    donation = db_session.scalars(select(Donation)).one()
    assert (donation.kind, donation.status, donation.amount_minor, donation.currency) == (
        DonationKind.OFFLINE, DonationStatus.PAID, 15000, "GBP",
    )
    assert donation.donor.email == "dana@example.com" and donation.recorded_by_id
    assert donation.campaign_id == campaign.id
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["dana@example.com"]
    assert "donations.offline_gift" in audit_actions(db_session)


@pytest.mark.parametrize("fields", [
    {"amount": "abc"}, {"amount": "0"}, {"email": "nope"}, {"received_on": "2999-01-01"},
    {"currency": "XYZ"}, {"method": "gold"}, {"received_on": ""},
])
def test_bad_offline_gifts_are_refused_and_nothing_is_written(
    client: FlaskClient, db_session: Session, fields: dict[str, str]
) -> None:
    login(client, db_session)
    form = client.get("/staff/donations/offline/new")
    data = {"csrf_token": csrf_token(form.text), "email": "e@example.com", "amount": "10",
            "currency": "EUR", "received_on": "2026-09-30", "method": "cash", "language": "en"}
    data.update(fields)
    assert client.post("/staff/donations/offline/new", data=data).status_code == 400
    assert db_session.scalar(select(func.count()).select_from(Donation)) == 0


def test_campaigns_are_created_edited_and_validated(
    client: FlaskClient, db_session: Session
) -> None:
    login(client, db_session)
    form = client.get("/staff/donations/campaigns/new")
    data = {"csrf_token": csrf_token(form.text), "slug": "Winter-2026", "title_en": "Winter",
            "title_ru": "Зима", "description_en": "Help", "goal": "5000", "currency": "EUR",
            "ends_on": "2026-12-31", "is_active": "y"}
    assert client.post("/staff/donations/campaigns/new", data=data).status_code == 303
    campaign = db_session.scalars(select(Campaign)).one()
    assert (campaign.slug, campaign.goal_minor, campaign.titles["ru"]) == (
        "winter-2026", 500000, "Зима")
    assert client.get("/ru/donate/winter-2026").status_code == 200
    for bad in ({"slug": "manage"}, {"slug": "has space"}, {"slug": "winter-2026"},
                {"title_en": ""}, {"goal": "-5"}):
        response = client.post("/staff/donations/campaigns/new", data={**data, **bad})
        assert response.status_code == 400, bad
    edit = client.get(f"/staff/donations/campaigns/{campaign.id}")
    assert 'value="Зима"' in edit.text
    response = client.post(f"/staff/donations/campaigns/{campaign.id}",
                           data={**data, "csrf_token": csrf_token(edit.text), "is_active": ""})
    assert response.status_code == 303
    assert client.get("/donate/winter-2026").status_code == 404
    assert audit_actions(db_session).count("donations.campaign_saved") == 2


def test_settings_round_trip_and_validation(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    page = client.get("/staff/donations/settings")
    assert page.status_code == 200 and 'value="10.00 25.00 50.00 100.00"' in page.text
    data = {"csrf_token": csrf_token(page.text), "currencies": "usd eur", "minimum": "2",
            "maximum": "5000", "fee_percent": "2.9", "fee_fixed": "0.30",
            "default-en": "USD", "default-ru": "EUR",
            "preset-USD-one_time": "5 15 30", "preset-USD-month": "3, 6", "preset-USD-year": "",
            "preset-EUR-one_time": "10", "preset-EUR-month": "", "preset-EUR-year": "100"}
    assert client.post("/staff/donations/settings", data=data).status_code == 303
    db_session.expire_all()
    settings = db_session.get(DonationSettings, 1)
    assert settings.currencies == ["USD", "EUR"] and settings.minimum_minor == 200
    assert settings.presets["USD"]["one_time"] == [500, 1500, 3000]
    assert settings.fee_percent_bp == 290 and settings.fee_fixed_minor == 30
    assert "$15" in client.get("/donate").text
    for bad in ({"currencies": "EUR XYZ"}, {"minimum": "0"}, {"minimum": "9000"},
                {"preset-USD-one_time": "five"}, {"fee_percent": "50"}):
        response = client.post("/staff/donations/settings", data={**data, **bad})
        assert response.status_code == 400, bad
    assert "donations.settings_saved" in audit_actions(db_session)
