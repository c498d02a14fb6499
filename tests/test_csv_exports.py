"""Every CSV export escapes cells a spreadsheet would run as formulas (OWASP's rule).

The hostile values come in the way an attacker would bring them: a name and an address on
the public signup form, a name and a `source` on the public donation form paid through the
Stripe emulator, and a bad row in a file someone else made. Each export is downloaded
through the staff pages as an admin and read back with `csv`.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token, first_url_containing
from tests.helpers.smtp import SmtpSink
from tests.helpers.stripe_emulator import StripeEmulator
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import (
    get_subscriber,
    make_subscriber,
    one_email_to,
    path_of,
    sign_up,
    upload_import,
    wait_for_import,
)
from webapp.core.clock import FrozenClock
from webapp.core.csv_out import (
    FORMULA_STARTS,
    CsvWriter,
    PlainNumber,
    escape_cell,
    unescape_cell,
)
from webapp.donations.models import Donation, DonationStatus
from webapp.subscribers import csv_io
from webapp.subscribers.models import ConsentRecord, Subscriber, SubscriberEvent

HOSTILE_NAME = '=HYPERLINK("http://evil.example","x")'
HOSTILE_SOURCE = "@SUM(1+1)*cmd|' /C calc'!A0"
HOSTILE_EMAIL = "-2+3@example.org"  # a valid address that a spreadsheet reads as a sum


# --- The writer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),  # text that looks like a number is still text
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),  # one quote more, so re-import gives back what was written
        ("'quoted'", "'quoted'"),
        ("Ann = Bob", "Ann = Bob"),
        ("", ""),
        (None, ""),
        (-5, "-5"),
        (-0.5, "-0.5"),
        (Decimal("-5.00"), "-5.00"),
        (PlainNumber("-5.00"), "-5.00"),
    ],
)
def test_escape_cell(value: Any, written: str) -> None:
    assert escape_cell(value) == written


@pytest.mark.parametrize("text", ["=1", "-5.00x", "1e5", " 5", "5.", "-", "--5", "0x10", ""])
def test_only_plain_decimals_are_plain_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="not a plain decimal number"):
        PlainNumber(text)


@given(st.text())
def test_no_text_cell_starts_a_formula_and_unescaping_gives_it_back(text: str) -> None:
    written = escape_cell(text)
    assert written[:1] not in FORMULA_STARTS
    assert unescape_cell(written) == text


@given(st.lists(st.lists(st.one_of(st.text(), st.integers(), st.none()), max_size=5), max_size=5))
def test_written_rows_read_back_as_escaped_cells(rows: list[list[Any]]) -> None:
    buffer = io.StringIO(newline="")
    CsvWriter(buffer, bom=True).writerows(rows)
    text = buffer.getvalue()
    assert text.startswith("\ufeff")
    read = list(csv.reader(io.StringIO(text[1:], newline="")))
    assert read == [[escape_cell(cell) for cell in row] for row in rows]


# --- Through the public forms and the staff downloads -------------------------------------------


@pytest.fixture
def app_config(app_config: dict[str, Any], stripe_emulator: StripeEmulator) -> dict[str, Any]:
    app_config["STRIPE_SECRET_KEY"] = stripe_emulator.api_key
    app_config["STRIPE_API_BASE"] = stripe_emulator.api_base
    app_config["STRIPE_WEBHOOK_SECRET"] = "whsec_csv_exports"
    return app_config


def sign_up_and_confirm(client: FlaskClient, smtp_sink: SmtpSink, email: str, name: str) -> None:
    """A reader signs up on the public page and clicks the confirmation link."""
    answer = sign_up(client, email, name=name)
    assert answer.status_code == 303, answer.text[:500]
    link = first_url_containing(
        one_email_to(smtp_sink, email).part("text/plain"), "/subscribe/confirm/"
    )
    page = client.get(path_of(link))
    confirmed = client.post(path_of(link), data={"csrf_token": csrf_token(page.text)})
    assert confirmed.status_code == 200


def donate_and_pay(
    client: FlaskClient, stripe_emulator: StripeEmulator, email: str, name: str, source: str
) -> None:
    """A donor gives on the public page (with a `source` link) and pays at Checkout."""
    page = client.get("/donate", query_string={"source": source})
    assert page.status_code == 200
    token = page.text.split('name="checkout_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/donate",
        data={
            "csrf_token": csrf_token(page.text),
            "checkout_token": token,
            "frequency": "one_time",
            "currency": "EUR",
            "amount": "25.00",
            "custom_amount": "",
            "email": email,
            "name": name,
            "source": source,
        },
    )
    assert response.status_code in (302, 303), response.text[:500]
    paid = stripe_emulator.pay(response.headers["Location"])
    assert paid.status == 303 and paid.location
    parts = urlsplit(paid.location)
    thanks = client.get(f"{parts.path}?{parts.query}")  # confirms by asking Stripe
    assert thanks.status_code == 200


@pytest.fixture
def hostile_reader(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, stripe_emulator: StripeEmulator
) -> str:
    """A reader with a hostile name who subscribed and gave, all through public pages."""
    public = app.test_client()
    sign_up_and_confirm(public, smtp_sink, HOSTILE_EMAIL, HOSTILE_NAME)
    donate_and_pay(public, stripe_emulator, HOSTILE_EMAIL, HOSTILE_NAME, HOSTILE_SOURCE)
    db_session.expire_all()
    donation = db_session.scalar(select(Donation))
    assert donation is not None and donation.status == DonationStatus.PAID
    assert donation.donor.name == HOSTILE_NAME  # stored as typed; only the CSV escapes it
    subscriber = get_subscriber(db_session, HOSTILE_EMAIL)
    assert subscriber is not None and subscriber.name == HOSTILE_NAME
    return HOSTILE_EMAIL


@pytest.fixture
def admin(client: FlaskClient, db_session: Session) -> FlaskClient:
    force_login(client, db_session, make_staff(db_session, role="admin"))
    return client


def read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def assert_no_formula_cells(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for column, cell in row.items():
            assert cell[:1] not in FORMULA_STARTS, (column, cell)


def test_subscriber_export_escapes_the_public_signup_name(
    admin: FlaskClient, hostile_reader: str
) -> None:
    token = csrf_token(admin.get("/staff/subscribers/").text)
    response = admin.post("/staff/subscribers/export", data={"csrf_token": token, "status": ""})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = read_csv(response.data)
    assert_no_formula_cells(rows)
    (row,) = rows
    assert row["name"] == "'" + HOSTILE_NAME
    assert row["email"] == "'" + HOSTILE_EMAIL


def test_donation_export_escapes_the_public_donation_name_and_source(
    admin: FlaskClient, hostile_reader: str
) -> None:
    page = admin.get("/staff/donations/")
    response = admin.post("/staff/donations/export.csv", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = read_csv(response.data)
    assert_no_formula_cells(rows)
    (row,) = rows
    assert row["donor_name"] == "'" + HOSTILE_NAME
    assert row["donor_email"] == "'" + HOSTILE_EMAIL
    assert row["source"] == "'" + HOSTILE_SOURCE
    assert row["amount"] == "25.00"  # numbers stay numbers


def report_csv(admin: FlaskClient, month: str, slug: str) -> list[dict[str, str]]:
    query = f"from={month}&to={month}"
    page = admin.get(f"/staff/reports/{slug}?{query}")
    assert page.status_code == 200, slug
    response = admin.post(
        f"/staff/reports/{slug}.csv?{query}", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return read_csv(response.data)


def test_report_exports_escape_names_and_sources(
    admin: FlaskClient, db_session: Session, hostile_reader: str
) -> None:
    paid_at = db_session.scalar(select(Donation.paid_at))
    assert paid_at is not None
    month = f"{paid_at:%Y-%m}"  # Stripe's time of payment
    (person,) = report_csv(admin, month, "donor-subscribers")
    assert person["name"] == "'" + HOSTILE_NAME and person["email"] == "'" + HOSTILE_EMAIL
    sources = report_csv(admin, month, "sources")
    assert_no_formula_cells(sources)
    assert "'" + HOSTILE_SOURCE in {cell for row in sources for cell in row.values()}


def test_import_rejections_report_escapes_the_offending_value(
    admin: FlaskClient, db_session: Session, tmp_path: Path
) -> None:
    file = io.StringIO(newline="")
    csv.writer(file).writerows([["email", "name"], [HOSTILE_NAME, "x"], ["good@example.org", "G"]])
    upload = file.getvalue().encode()
    response = upload_import(admin, upload)
    assert response.status_code == 303
    job_path = response.headers["Location"]
    wait_for_import(admin, job_path)
    report = admin.get(f"{job_path}/rejected.csv")
    assert report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.text, newline="")))
    assert rows[0] == ["line", "email", "reason"]
    assert rows[1] == ["2", "'" + HOSTILE_NAME, "bad_email"]


def test_our_export_imports_back_to_the_same_names_and_addresses(
    db_session: Session, clock: FrozenClock, tmp_path: Path
) -> None:
    people = {
        HOSTILE_EMAIL: HOSTILE_NAME,
        "=1+2@example.org": "'=already quoted",
        "+plus@example.org": "+44 Reader",
        "plain@example.org": "'Tis Plain",
    }
    for email, name in people.items():
        make_subscriber(db_session, email=email, name=name)
    db_session.commit()
    out = io.StringIO(newline="")
    assert csv_io.export_subscribers(db_session, out) == len(people)
    assert_no_formula_cells(read_csv(out.getvalue().encode()))
    export = tmp_path / "export.csv"
    export.write_text(out.getvalue(), encoding="utf-8", newline="")
    for model in (SubscriberEvent, ConsentRecord, Subscriber):
        db_session.query(model).delete()
    db_session.commit()
    job = csv_io.start_import(
        db_session,
        filename="export.csv",
        requested_format="auto",
        default_language="en",
        now=clock.now(),
    )
    db_session.commit()
    job = csv_io.run_import(db_session, job, export, languages=("en", "ru"), now=clock.now)
    assert job.detected_format == "readership" and job.rejected_count == 0
    db_session.expire_all()
    restored = {s.email: s.name for s in db_session.scalars(select(Subscriber))}
    assert restored == people
