"""Staff donation pages: who may see them, the list and its CSV, the donor page, offline
gifts, refunds seen, campaigns and settings — each change audit-logged."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.donations.factories import make_campaign, make_donation, make_donor, make_plan
from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import make_subscriber
from webapp.core.clock import FrozenClock
from webapp.donations import queries
from webapp.donations.models import (
    Campaign,
    Donation,
    DonationKind,
    DonationSettings,
    DonationStatus,
    Donor,
    OfflineMethod,
    PlanStatus,
)
from webapp.outbox.models import OutboxMessage
from webapp.staff.models import AuditLog

LIST = "/staff/donations/"
EXPORT = "/staff/donations/export.csv"
OFFLINE = "/staff/donations/offline/new"
SETTINGS = "/staff/donations/settings"


def login(client: FlaskClient, db_session: Session, role: str = "fundraiser") -> None:
    staff = make_staff(db_session, role=role)
    db_session.commit()
    force_login(client, db_session, staff)


def audit_entries(db_session: Session, action: str | None = None) -> list[AuditLog]:
    db_session.expire_all()
    stmt = select(AuditLog).order_by(AuditLog.id)
    if action is not None:
        stmt = stmt.where(AuditLog.action == action)
    return list(db_session.scalars(stmt))


def audit_actions(db_session: Session) -> list[str]:
    return [entry.action for entry in audit_entries(db_session)]


def count(db_session: Session, model: type) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(model)) or 0)


def export_csv(client: FlaskClient, **filters: str) -> list[dict[str, str]]:
    page = client.get(LIST, query_string=filters)
    response = client.post(EXPORT, data={"csrf_token": csrf_token(page.text), **filters})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"), [("fundraiser", 200), ("admin", 200), ("editor", 403), ("viewer", 403)]
)
def test_only_fundraisers_and_admins_see_donations(
    client: FlaskClient, db_session: Session, role: str, status: int
) -> None:
    donor = make_donor(db_session)
    campaign = make_campaign(db_session)
    login(client, db_session, role)
    for path in (
        LIST,
        "/staff/donations/campaigns",
        "/staff/donations/campaigns/new",
        f"/staff/donations/campaigns/{campaign.id}",
        SETTINGS,
        OFFLINE,
        f"/staff/donations/donors/{donor.id}",
    ):
        assert client.get(path).status_code == status, path
    token = csrf_token(client.get("/staff/").text)
    assert client.post(EXPORT, data={"csrf_token": token}).status_code == status


def test_denied_roles_change_nothing(client: FlaskClient, db_session: Session) -> None:
    donation = make_donation(db_session, donor=make_donor(db_session), refunded_minor=500)
    login(client, db_session, "editor")
    token = csrf_token(client.get("/staff/").text)
    assert (
        client.post(
            f"/staff/donations/{donation.id}/refund-seen", data={"csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        client.post(
            OFFLINE, data={"csrf_token": token, "email": "x@example.com", "amount": "5"}
        ).status_code
        == 403
    )
    db_session.expire_all()
    assert db_session.get(Donation, donation.id).refund_seen_at is None
    assert count(db_session, Donation) == 1


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in (LIST, OFFLINE, SETTINGS, "/staff/donations/donors/1"):
        response = client.get(path)
        assert response.status_code in (302, 303), path
        assert "/staff/login" in response.headers["Location"]


def test_the_csv_download_needs_a_csrf_token(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    assert client.post(EXPORT).status_code == 400
    assert client.get(EXPORT).status_code == 405
    assert "donations.export" not in audit_actions(db_session)


# --- The list -----------------------------------------------------------------------------


def test_list_filters_search_and_totals(client: FlaskClient, db_session: Session) -> None:
    ann = make_donor(
        db_session, email="ann@example.com", name="Ann Lee", stripe_customer_id="cus_ann"
    )
    bob = make_donor(db_session, email="bob@example.com", name="Bob Stone")
    spring = make_campaign(db_session, slug="spring")
    make_donation(
        db_session, donor=ann, amount_minor=1000, currency="EUR", source="art-1", campaign=spring
    )
    refunded = make_donation(
        db_session,
        donor=ann,
        amount_minor=3000,
        currency="EUR",
        refunded_minor=3000,
        stripe_payment_intent_id="pi_find_me",
        stripe_charge_id="ch_find_me",
    )
    make_donation(
        db_session,
        donor=bob,
        amount_minor=2000,
        currency="USD",
        stripe_checkout_session_id="cs_bob",
        stripe_invoice_id="in_bob",
        plan=make_plan(db_session, donor=bob, stripe_subscription_id="sub_bob"),
    )
    make_donation(db_session, donor=bob, amount_minor=500, status=DonationStatus.PENDING)
    make_donation(
        db_session,
        donor=bob,
        amount_minor=700,
        kind=DonationKind.OFFLINE,
        offline_method=OfflineMethod.CASH,
        paid_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )
    login(client, db_session)

    page = client.get(LIST).text
    assert "5 donations match" in page
    # Totals of the paid gifts per currency: gross €47, refunded €30, net €17; $20.
    assert "€47" in page and "€30" in page and "€17" in page and "$20" in page
    assert "not yet seen" in page and "Mark seen" in page and "Ann Lee" in page

    def matches(**filters: str) -> str:
        text = client.get(LIST, query_string=filters).text
        return text[text.index('id="result-count"') :].split("<", 1)[0].split(">", 1)[1]

    assert matches(q="ann") == "2 donations match"
    assert matches(q="ANN@EXAMPLE") == "2 donations match"
    assert matches(q="Stone") == "3 donations match"
    assert matches(q="an%") == "0 donations match"  # LIKE wildcards are literal
    for stripe_id in ("pi_find_me", "ch_find_me"):
        assert matches(q=stripe_id) == "1 donation matches", stripe_id
    for stripe_id in ("cs_bob", "in_bob", "sub_bob"):
        assert matches(q=stripe_id) == "1 donation matches", stripe_id
    assert matches(q="cus_ann") == "2 donations match"
    assert matches(q=refunded.receipt_number) == "1 donation matches"
    assert matches(q=refunded.receipt_number.lower()) == "1 donation matches"
    assert matches(currency="EUR", status="paid") == "3 donations match"
    assert matches(status="pending") == "1 donation matches"
    assert matches(kind="offline") == "1 donation matches"
    assert matches(frequency="month") == "1 donation matches"
    assert matches(campaign=str(spring.id)) == "1 donation matches"
    assert matches(date_from="2026-03-01", date_to="2026-03-01") == "1 donation matches"
    assert matches(date_to="2026-02-28") == "0 donations match"
    assert matches(unseen="y") == "1 donation matches"
    assert (
        "No donations match these filters." in client.get(LIST, query_string={"q": "nobody"}).text
    )


@pytest.mark.parametrize(
    "query",
    [
        {"status": "nonsense"},
        {"currency": "XYZ"},
        {"campaign": "9" * 30},
        {"date_from": "yesterday"},
        {"date_from": "2026-05-02", "date_to": "2026-05-01"},
        {"q": "x" * 300},
    ],
)
def test_bad_filters_answer_400(
    client: FlaskClient, db_session: Session, query: dict[str, str]
) -> None:
    login(client, db_session)
    response = client.get(LIST, query_string=query)
    assert response.status_code == 400 and "Please check the search and filters" in response.text


def test_the_list_is_newest_first_and_paged(client: FlaskClient, db_session: Session) -> None:
    donor = make_donor(db_session)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        make_donation(
            db_session, donor=donor, amount_minor=100 + i, paid_at=start + timedelta(hours=i)
        )
        for i in range(queries.PAGE_SIZE + 5)
    ]
    login(client, db_session)
    first = client.get(LIST, query_string={"status": "paid"}).text
    newest, oldest = made[-1], made[0]
    assert f"{queries.PAGE_SIZE + 5} donations match" in first
    assert newest.receipt_number in first and oldest.receipt_number not in first
    assert first.index(newest.receipt_number) < first.index(made[-2].receipt_number)
    assert "Page 1 of 2" in first and 'rel="next"' in first
    assert "page=2" in first and "status=paid" in first  # the filter stays in the links
    second = client.get(LIST, query_string={"status": "paid", "page": "2"}).text
    assert oldest.receipt_number in second and newest.receipt_number not in second
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    # Out of range or nonsense page numbers show a real page instead of failing.
    assert "Page 2 of 2" in client.get(LIST, query_string={"page": "99"}).text
    assert "Page 1 of 2" in client.get(LIST, query_string={"page": "-1"}).text


def test_the_empty_list_says_so(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    page = client.get(LIST).text
    assert "No donations yet." in page and "Download CSV" not in page


# --- CSV ----------------------------------------------------------------------------------


def test_csv_has_the_filtered_rows_documented_columns_and_an_audit_row(
    client: FlaskClient, db_session: Session
) -> None:
    ann = make_donor(db_session, email="ann@example.com", name='Ann, "the" donor')
    spring = make_campaign(db_session, slug="spring")
    make_donation(
        db_session,
        donor=ann,
        amount_minor=1050,
        currency="EUR",
        campaign=spring,
        source="art-1",
        fee_covered_minor=50,
    )
    make_donation(
        db_session,
        donor=ann,
        amount_minor=3000,
        currency="EUR",
        refunded_minor=1000,
        disputed_minor=500,
    )
    make_donation(db_session, donor=ann, amount_minor=500, currency="JPY")
    make_donation(db_session, donor=ann, amount_minor=2000, currency="USD")
    db_session.add(DonationSettings(id=1, currencies=["EUR", "USD", "JPY"]))
    db_session.commit()
    login(client, db_session)

    rows = export_csv(client, currency="EUR")
    assert list(rows[0]) == list(queries.CSV_COLUMNS)
    assert len(rows) == 2
    first, second = rows
    assert (first["amount"], first["fee_covered"], first["net"]) == ("10.50", "0.50", "10.50")
    assert (first["campaign"], first["source"], first["donor_name"]) == (
        "spring",
        "art-1",
        'Ann, "the" donor',
    )
    assert (second["refunded"], second["disputed"], second["net"]) == ("10.00", "5.00", "15.00")
    assert first["kind"] == "one_time" and first["status"] == "paid"

    entry = audit_entries(db_session, "donations.export")[-1]
    assert json.loads(entry.details) == {"filters": {"currency": "EUR"}, "rows": 2}
    assert entry.actor_email and entry.ip_hash

    # Major units follow each currency's precision.
    assert export_csv(client, currency="JPY")[0]["amount"] == "500"


def test_csv_streams_every_row(client: FlaskClient, db_session: Session) -> None:
    donor = make_donor(db_session)
    for i in range(1203):
        db_session.add(
            Donation(
                donor_id=donor.id,
                kind="one_time",
                status="paid",
                frequency="one_time",
                amount_minor=100 + i,
                currency="EUR",
                receipt_seq=i + 1,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    db_session.commit()
    login(client, db_session)
    rows = export_csv(client)
    assert len(rows) == 1203
    assert {row["receipt_number"] for row in rows} == {
        f"R-{i:06d}" for i in db_session.scalars(select(Donation.receipt_seq))
    }


# --- Refunds and disputes seen ------------------------------------------------------------


def test_marking_a_refund_seen(client: FlaskClient, db_session: Session) -> None:
    donor = make_donor(db_session)
    donation = make_donation(db_session, donor=donor, refunded_minor=1000)
    login(client, db_session)
    page = client.get(LIST, query_string={"unseen": "y"})
    response = client.post(
        f"/staff/donations/{donation.id}/refund-seen",
        data={"csrf_token": csrf_token(page.text), "next": "//evil.example"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/donations/")
    db_session.expire_all()
    assert db_session.get(Donation, donation.id).refund_seen_at is not None
    assert "0 donations match" in client.get(LIST, query_string={"unseen": "y"}).text
    assert len(audit_entries(db_session, "donations.refund_seen")) == 1
    # Twice is once: no second audit row.
    client.post(
        f"/staff/donations/{donation.id}/refund-seen", data={"csrf_token": csrf_token(page.text)}
    )
    assert len(audit_entries(db_session, "donations.refund_seen")) == 1


def test_refund_seen_goes_back_to_the_filtered_list(
    client: FlaskClient, db_session: Session
) -> None:
    donation = make_donation(db_session, donor=make_donor(db_session), disputed_minor=1000)
    login(client, db_session)
    page = client.get(LIST, query_string={"unseen": "y"})
    response = client.post(
        f"/staff/donations/{donation.id}/refund-seen",
        data={"csrf_token": csrf_token(page.text), "next": "/staff/donations/?unseen=y"},
    )
    assert response.headers["Location"].endswith("/staff/donations/?unseen=y")


def test_a_gift_without_refund_cannot_be_marked(client: FlaskClient, db_session: Session) -> None:
    donation = make_donation(db_session, donor=make_donor(db_session))
    login(client, db_session)
    token = csrf_token(client.get(LIST).text)
    assert (
        client.post(
            f"/staff/donations/{donation.id}/refund-seen", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert (
        client.post("/staff/donations/999999/refund-seen", data={"csrf_token": token}).status_code
        == 404
    )
    db_session.expire_all()
    assert db_session.get(Donation, donation.id).refund_seen_at is None
    assert "donations.refund_seen" not in audit_actions(db_session)


# --- The donor page -----------------------------------------------------------------------


def test_the_donor_page_shows_plans_gifts_newsletter_and_totals(
    client: FlaskClient, db_session: Session
) -> None:
    donor = make_donor(
        db_session, email="cara@example.com", name="Cara", stripe_customer_id="cus_cara"
    )
    plan = make_plan(
        db_session,
        donor=donor,
        amount_minor=900,
        current_period_end=datetime(2026, 12, 1, tzinfo=UTC),
    )
    ended = make_plan(
        db_session,
        donor=donor,
        amount_minor=5000,
        status=PlanStatus.CANCELED,
        canceled_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    first = make_donation(db_session, donor=donor, plan=plan, amount_minor=900)
    make_donation(db_session, donor=donor, amount_minor=2000, currency="USD", refunded_minor=500)
    make_donation(db_session, donor=donor, amount_minor=7777, status=DonationStatus.FAILED)
    subscriber = make_subscriber(db_session, email="cara@example.com", status="confirmed")
    db_session.commit()
    login(client, db_session)
    page = client.get(f"/staff/donations/donors/{donor.id}")
    assert page.status_code == 200
    text = page.text
    assert "cara@example.com" in text and "cus_cara" in text
    assert plan.stripe_subscription_id in text and ended.stripe_subscription_id in text
    assert "2026-12-01" in text and "2026-06-01" in text
    assert first.receipt_number in text
    # Net totals count paid gifts only: €9 and $15.
    totals = text[text.index('id="donor-totals"') :].split("</dd>", 1)[0]
    assert "€9" in totals and "$15" in totals and "77" not in totals
    assert f"/staff/subscribers/{subscriber.id}" in text
    assert "No emails." in text
    assert client.get("/staff/donations/donors/999999").status_code == 404


def test_a_donor_without_a_newsletter_subscription(
    client: FlaskClient, db_session: Session
) -> None:
    donor = make_donor(db_session)
    db_session.commit()
    login(client, db_session)
    text = client.get(f"/staff/donations/donors/{donor.id}").text
    assert "not subscribed" in text and "No regular gifts." in text and "No gifts." in text


# --- Offline gifts ------------------------------------------------------------------------


def offline_data(client: FlaskClient, **fields: str) -> dict[str, str]:
    form = client.get(OFFLINE)
    return {
        "csrf_token": csrf_token(form.text),
        "email": "e@example.com",
        "amount": "10",
        "currency": "EUR",
        "received_on": "2026-09-30",
        "method": "cash",
        "language": "en",
        **fields,
    }


def test_recording_an_offline_gift_with_a_receipt(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    campaign = make_campaign(db_session, slug="spring")
    login(client, db_session)
    response = client.post(
        OFFLINE,
        data=offline_data(
            client,
            email="Dana@Example.com",
            name="Dana",
            amount="150",
            currency="GBP",
            method="bank_transfer",
            note="ref 42",
            campaign=str(campaign.id),
            source="letter",
            language="ru",
            send_receipt="y",
        ),
    )
    assert response.status_code == 303
    db_session.expire_all()
    donation = db_session.scalars(select(Donation)).one()
    assert (donation.kind, donation.status, donation.amount_minor, donation.currency) == (
        DonationKind.OFFLINE,
        DonationStatus.PAID,
        15000,
        "GBP",
    )
    assert donation.paid_at is not None and donation.paid_at.date().isoformat() == "2026-09-30"
    assert (donation.offline_method, donation.note, donation.source) == (
        OfflineMethod.BANK_TRANSFER,
        "ref 42",
        "letter",
    )
    assert donation.donor.email == "dana@example.com" and donation.recorded_by_id
    assert donation.campaign_id == campaign.id
    assert response.headers["Location"].endswith(f"/staff/donations/donors/{donation.donor_id}")
    received = smtp_sink.wait_for(1)
    assert len(received) == 1 and received[0].rcpt_tos == ["dana@example.com"]
    assert donation.receipt_number in received[0].part("text/plain")
    entry = audit_entries(db_session, "donations.offline_gift")[-1]
    assert json.loads(entry.details)["amount"] == 15000

    # The donor page shows the gift, the flash and the receipt email.
    donor_page = client.get(response.headers["Location"]).text
    assert "recorded" in donor_page and donation.receipt_number in donor_page
    emails = donor_page[donor_page.index('id="donor-emails"') :]
    assert "donation_receipt" in emails and "No emails." not in emails


def test_an_offline_gift_links_to_the_existing_donor_without_a_receipt(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    donor = make_donor(db_session, email="eve@example.com", name="Eve")
    db_session.commit()
    login(client, db_session)
    form = client.get(OFFLINE, query_string={"email": donor.email})
    assert 'value="eve@example.com"' in form.text
    response = client.post(OFFLINE, data=offline_data(client, email=" EVE@example.com "))
    assert response.status_code == 303
    assert count(db_session, Donor) == 1
    assert db_session.scalars(select(Donation)).one().donor_id == donor.id
    assert count(db_session, OutboxMessage) == 0 and smtp_sink.messages == []


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "abc"},
        {"amount": "0"},
        {"amount": "10.001"},
        {"amount": "9" * 40},
        {"amount": ""},
        {"email": "nope"},
        {"email": ""},
        {"email": "a@" + "b" * 400 + ".com"},
        {"received_on": "2026-11-03"},
        {"received_on": ""},
        {"received_on": "31/12/2025"},
        {"currency": "XYZ"},
        {"currency": "JPY", "amount": "10.50"},
        {"method": "gold"},
        {"campaign": "12345"},
        {"language": "de"},
        {"name": "n" * 300},
        {"note": "x" * 3000},
    ],
)
def test_bad_offline_gifts_are_refused_and_nothing_is_written(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink, fields: dict[str, str]
) -> None:
    settings = DonationSettings(id=1, currencies=["EUR", "USD", "GBP", "JPY"])
    db_session.add(settings)
    db_session.commit()
    login(client, db_session)
    response = client.post(OFFLINE, data=offline_data(client, send_receipt="y", **fields))
    assert response.status_code == 400
    assert 'class="field-error"' in response.text
    assert count(db_session, Donation) == 0 and count(db_session, Donor) == 0
    assert count(db_session, OutboxMessage) == 0
    assert "donations.offline_gift" not in audit_actions(db_session)


def test_today_is_a_valid_date(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    login(client, db_session)
    today = clock.now().date().isoformat()
    assert client.post(OFFLINE, data=offline_data(client, received_on=today)).status_code == 303


# --- Campaigns ----------------------------------------------------------------------------


def campaign_data(client: FlaskClient, path: str, **fields: str) -> dict[str, str]:
    form = client.get(path)
    return {
        "csrf_token": csrf_token(form.text),
        "slug": "Winter-2026",
        "title_en": "Winter",
        "title_ru": "Зима",
        "description_en": "Help",
        "goal": "5000",
        "currency": "EUR",
        "ends_on": "2026-12-31",
        "is_active": "y",
        **fields,
    }


def test_campaigns_are_created_listed_and_edited(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    new = "/staff/donations/campaigns/new"
    assert client.post(new, data=campaign_data(client, new)).status_code == 303
    campaign = db_session.scalars(select(Campaign)).one()
    assert (campaign.slug, campaign.goal_minor, campaign.titles, campaign.descriptions) == (
        "winter-2026",
        500000,
        {"en": "Winter", "ru": "Зима"},
        {"en": "Help"},
    )
    assert campaign.ends_at is not None and campaign.ends_at.date().isoformat() == "2026-12-31"
    assert client.get("/ru/donate/winter-2026").status_code == 200

    make_donation(db_session, donor=make_donor(db_session), amount_minor=12500, campaign=campaign)
    db_session.commit()
    listing = client.get("/staff/donations/campaigns").text
    assert "Winter" in listing and "€125" in listing and "€5,000" in listing

    path = f"/staff/donations/campaigns/{campaign.id}"
    edit = client.get(path)
    assert 'value="Зима"' in edit.text and 'value="5000.00"' in edit.text
    response = client.post(path, data=campaign_data(client, path, is_active="", goal=""))
    assert response.status_code == 303
    db_session.expire_all()
    assert campaign.goal_minor is None and campaign.is_active is False
    assert client.get("/donate/winter-2026").status_code == 404

    created, saved = (
        audit_entries(db_session, action)
        for action in ("donations.campaign_created", "donations.campaign_saved")
    )
    assert len(created) == 1 and len(saved) == 1
    assert set(json.loads(saved[0].details)["changed"]) == {"goal_minor", "is_active"}
    assert client.get("/staff/donations/campaigns/999999").status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        {"slug": "manage"},
        {"slug": "thanks"},
        {"slug": "has space"},
        {"slug": "ünï"},
        {"slug": "-lead"},
        {"slug": ""},
        {"slug": "x" * 100},
        {"title_en": ""},
        {"title_en": "x" * 300},
        {"goal": "-5"},
        {"goal": "0"},
        {"goal": "5000.123"},
        {"goal": "1e3"},
        {"goal": "NaN"},
        {"goal": "9" * 40},
        {"currency": "XYZ"},
        {"ends_on": "soon"},
    ],
)
def test_bad_campaigns_are_refused(
    client: FlaskClient, db_session: Session, bad: dict[str, str]
) -> None:
    login(client, db_session)
    new = "/staff/donations/campaigns/new"
    response = client.post(new, data=campaign_data(client, new, **bad))
    assert response.status_code == 400, bad
    assert "Please check the fields" in response.text
    assert count(db_session, Campaign) == 0


def test_two_campaigns_cannot_share_an_address(client: FlaskClient, db_session: Session) -> None:
    make_campaign(db_session, slug="winter-2026")
    other = make_campaign(db_session, slug="summer")
    db_session.commit()
    login(client, db_session)
    new = "/staff/donations/campaigns/new"
    response = client.post(new, data=campaign_data(client, new))
    assert response.status_code == 400 and "Another campaign uses this address" in response.text
    path = f"/staff/donations/campaigns/{other.id}"
    assert client.post(path, data=campaign_data(client, path)).status_code == 400
    # Keeping its own address is fine.
    assert client.post(path, data=campaign_data(client, path, slug="summer")).status_code == 303
    assert count(db_session, Campaign) == 2


# --- Settings -----------------------------------------------------------------------------


def settings_data(client: FlaskClient, **fields: str) -> dict[str, str]:
    page = client.get(SETTINGS)
    return {
        "csrf_token": csrf_token(page.text),
        "currencies": "usd eur",
        "minimum": "2",
        "maximum": "5000",
        "fee_percent": "2.9",
        "fee_fixed": "0.30",
        "default-en": "USD",
        "default-ru": "EUR",
        "preset-USD-one_time": "5, 15, 30",
        "preset-USD-month": "3 6",
        "preset-USD-year": "",
        "preset-EUR-one_time": "10",
        "preset-EUR-month": "",
        "preset-EUR-year": "100",
        **fields,
    }


def test_settings_round_trip(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    page = client.get(SETTINGS)
    assert page.status_code == 200 and 'value="10.00, 25.00, 50.00, 100.00"' in page.text
    assert client.post(SETTINGS, data=settings_data(client)).status_code == 303
    db_session.expire_all()
    settings = db_session.get(DonationSettings, 1)
    assert settings.currencies == ["USD", "EUR"] and settings.minimum_minor == 200
    assert settings.maximum_minor == 500000
    assert settings.presets["USD"] == {
        "one_time": [500, 1500, 3000],
        "month": [300, 600],
        "year": [],
    }
    assert settings.default_currency == {"en": "USD", "ru": "EUR"}
    assert settings.fee_percent_bp == 290 and settings.fee_fixed_minor == 30
    assert "$15" in client.get("/donate").text

    # What the page shows is what was saved; saving it again changes nothing.
    again = client.get(SETTINGS).text
    assert 'value="5.00, 15.00, 30.00"' in again and 'value="2.90"' in again
    entries = audit_entries(db_session, "donations.settings_saved")
    assert len(entries) == 1
    changed = json.loads(entries[0].details)["changed"]
    assert changed["fee_percent_bp"] == {"from": 150, "to": 290}
    assert "currencies" in changed and "presets" in changed
    form = {**settings_data(client), "preset-USD-one_time": "5.00, 15.00, 30.00"}
    response = client.post(SETTINGS, data=form, follow_redirects=True)
    assert "Nothing changed." in response.text
    assert len(audit_entries(db_session, "donations.settings_saved")) == 1


def test_a_card_fee_of_zero_is_allowed(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    response = client.post(SETTINGS, data=settings_data(client, fee_percent="0", fee_fixed="0"))
    assert response.status_code == 303
    db_session.expire_all()
    settings = db_session.get(DonationSettings, 1)
    assert (settings.fee_percent_bp, settings.fee_fixed_minor) == (0, 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"currencies": "EUR XYZ"},
        {"currencies": ""},
        {"currencies": "EURO"},
        {"currencies": "X" * 5000},
        {"minimum": "0"},
        {"minimum": "9000"},
        {"minimum": "abc"},
        {"maximum": "9" * 40},
        {"preset-USD-one_time": "five"},
        {"preset-USD-one_time": "1"},
        {"preset-USD-month": "6000"},
        {"preset-EUR-year": "0"},
        {"fee_percent": "50"},
        {"fee_percent": "NaN"},
        {"fee_percent": "-1"},
        {"fee_percent": ""},
        {"fee_fixed": "0.001"},
        {"default-en": "GBP"},
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(
    client: FlaskClient, db_session: Session, bad: dict[str, str]
) -> None:
    login(client, db_session)
    response = client.post(SETTINGS, data=settings_data(client, **bad))
    assert response.status_code == 400, bad
    assert "Nothing was saved" in response.text
    db_session.expire_all()
    settings = db_session.get(DonationSettings, 1)
    if settings is not None:  # never saved: the defaults apply
        assert settings.currencies == ["EUR", "USD", "GBP"] and settings.fee_percent_bp == 150
    assert "donations.settings_saved" not in audit_actions(db_session)
