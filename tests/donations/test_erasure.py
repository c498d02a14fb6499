"""Erasing a person pseudonymises their donor record; every total stays the same."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.donations.factories import make_donation, make_donor
from tests.helpers.html import csrf_token
from tests.staff.factories import force_login, make_staff
from tests.subscribers.erasure_support import traces
from tests.subscribers.factories import make_subscriber
from webapp.donations.models import Donation, DonationKind, Donor, OfflineMethod

ADDRESS = "giver@example.com"


def totals(session: Session) -> list[tuple[str, int]]:
    session.expire_all()
    rows = session.execute(
        select(Donation.currency, func.sum(Donation.amount_minor - Donation.refunded_minor))
        .group_by(Donation.currency)
        .order_by(Donation.currency)
    )
    return [(currency, int(total)) for currency, total in rows]


def test_erasure_keeps_the_gifts_and_removes_the_person(
    client: FlaskClient, db_session: Session
) -> None:
    subscriber = make_subscriber(db_session, email=ADDRESS, name="Gia Giver")
    donor = make_donor(db_session, email=ADDRESS, name="Gia Giver")
    make_donation(db_session, donor=donor, amount_minor=2500, currency="EUR")
    make_donation(db_session, donor=donor, amount_minor=1000, currency="USD", refunded_minor=300)
    make_donation(
        db_session,
        donor=donor,
        amount_minor=5000,
        currency="EUR",
        kind=DonationKind.OFFLINE,
        offline_method=OfflineMethod.BANK_TRANSFER,
        note="Transfer from Gia Giver, IBAN DE00",
    )
    other = make_donor(db_session, email="other@example.com")
    make_donation(db_session, donor=other, amount_minor=700, currency="EUR")
    staff = make_staff(db_session, role="admin")
    db_session.commit()
    before = totals(db_session)

    force_login(client, db_session, staff)
    path = f"/staff/subscribers/{subscriber.id}/erase"
    form = client.get(path)
    done = client.post(path, data={"csrf_token": csrf_token(form.text), "confirm_email": ADDRESS})
    assert done.status_code == 303

    assert totals(db_session) == before
    assert traces(db_session, ADDRESS, "Gia Giver") == []
    erased = db_session.get(Donor, donor.id)
    assert erased is not None and erased.email.endswith("@erased.invalid")
    assert len(erased.donations) == 3
