"""Yearly statements: one email per donor and calendar year listing the gifts (net of
refunds), on demand from the self-service page and by the `yearly-statements` job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.donations import mail
from webapp.donations.models import Donation, DonationStatus, Donor, DonorStatement
from webapp.donations.records import DonationConfig
from webapp.outbox.services import Mailer

#: Donors per transaction in the yearly run: a crash loses at most one batch of work, and
#: the rows already committed say who has their statement.
BATCH = 200


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


def statement_donations(session: Session, donor: Donor, year: int) -> list[Donation]:
    """The donor's paid gifts of `year` (UTC) that kept some money, oldest first."""
    start, end = _year_bounds(year)
    rows = session.scalars(
        select(Donation)
        .where(
            Donation.donor_id == donor.id,
            Donation.status == DonationStatus.PAID,
            Donation.paid_at >= start,
            Donation.paid_at < end,
        )
        .order_by(Donation.paid_at, Donation.id)
    )
    return [donation for donation in rows if donation.net_minor > 0]


def queue_statement(
    session: Session,
    mailer: Mailer,
    donor: Donor,
    year: int,
    *,
    config: DonationConfig,
    now: datetime,
) -> int | None:
    """Queue the donor's statement for `year`; None when there were no gifts that year."""
    donations = statement_donations(session, donor, year)
    if not donations:
        return None
    return mail.queue_yearly_statement_email(
        session, mailer, donor, donations, year=year, config=config, now=now
    )


#: At most one statement on request per donor in this window, however often it is asked.
STATEMENT_REQUEST_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class StatementRequest:
    """What asking for a statement did."""

    #: "queued", "no_gifts" (nothing that year) or "throttled" (one was sent just now).
    outcome: str
    message_id: int | None = None


def request_statement(
    session: Session,
    mailer: Mailer,
    donor: Donor,
    year: int,
    *,
    config: DonationConfig,
    now: datetime,
) -> StatementRequest:
    """A statement the donor asked for on the self-service page: at most one per
    `STATEMENT_REQUEST_WINDOW` (a conditional update claims the slot, so parallel clicks
    queue one email). The caller commits."""
    if not statement_donations(session, donor, year):
        return StatementRequest("no_gifts")
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Donor)
        .where(
            Donor.id == donor.id,
            (Donor.statement_sent_at.is_(None))
            | (Donor.statement_sent_at < now - STATEMENT_REQUEST_WINDOW),
        )
        .values(statement_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        return StatementRequest("throttled")
    return StatementRequest(
        "queued", queue_statement(session, mailer, donor, year, config=config, now=now)
    )


def queue_yearly_statements(
    session: Session,
    mailer: Mailer,
    year: int,
    *,
    config: DonationConfig,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Queue `year`'s statement for every donor who gave that year and has none yet.

    The `DonorStatement` row and the email are written in the same transaction, so a rerun
    (after a crash, or by mistake) sends nobody twice and skips nobody. Returns how many
    were queued."""
    start, end = _year_bounds(year)
    already = select(DonorStatement.donor_id).where(DonorStatement.year == year)
    donor_ids = list(
        session.scalars(
            select(Donation.donor_id)
            .where(
                Donation.status == DonationStatus.PAID,
                Donation.paid_at >= start,
                Donation.paid_at < end,
                Donation.donor_id.not_in(already),
            )
            .distinct()
            .order_by(Donation.donor_id)
        )
    )
    sent = 0
    for offset in range(0, len(donor_ids), BATCH):
        for donor_id in donor_ids[offset : offset + BATCH]:
            donor = session.get(Donor, donor_id)
            if donor is None or donor.email.endswith("@erased.invalid"):
                continue
            try:
                with session.begin_nested():
                    session.add(DonorStatement(donor_id=donor_id, year=year, sent_at=now))
            except IntegrityError:
                continue  # another run took this donor
            if queue_statement(session, mailer, donor, year, config=config, now=now) is None:
                continue
            sent += 1
        session.commit()
        if progress is not None:
            progress(min(offset + BATCH, len(donor_ids)))
    return sent
