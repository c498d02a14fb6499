"""The base currency and the exchange rates staff set; converting per-currency totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.core.money import precision, to_major
from webapp.db import get_or_create_row
from webapp.reports.models import ExchangeRate, ReportSettings


class RateError(ValueError):
    """A rate that cannot be used (not a positive number, unknown currency)."""


@dataclass(frozen=True)
class Converted:
    """A per-currency total in the base currency."""

    #: Base-currency minor units of the currencies that have a rate.
    base_minor: int
    #: Currencies left out because no rate is set for them.
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Rates:
    """The base currency and the rates to it, as set by staff."""

    base: str
    #: Base units per one unit of each currency (the base itself is 1).
    per_unit: Mapping[str, Decimal]
    #: When each rate was set.
    set_at: Mapping[str, datetime]

    def convert(self, totals: Mapping[str, int]) -> Converted:
        """`totals` (minor units per currency) as base-currency minor units."""
        total = Decimal(0)
        missing = []
        for currency, amount in sorted(totals.items()):
            rate = Decimal(1) if currency == self.base else self.per_unit.get(currency)
            if rate is None:
                if amount:
                    missing.append(currency)
                continue
            total += to_major(amount, currency) * rate
        minor = (total.scaleb(precision(self.base))).quantize(Decimal(1), ROUND_HALF_UP)
        return Converted(int(minor), tuple(missing))


def rate_text(rate: Decimal) -> str:
    """A rate as staff typed it: "0.95", not "0.95000000" or "9.5E-1"."""
    return format(rate.normalize(), "f")


def get_report_settings(session: Session) -> ReportSettings:
    """The one settings row, created with defaults the first time (race-safe)."""
    return get_or_create_row(session, ReportSettings)


def load_rates(session: Session) -> Rates:
    """The base currency and every rate set."""
    base = get_report_settings(session).base_currency
    rows = list(session.scalars(select(ExchangeRate)))
    return Rates(
        base=base,
        per_unit={row.currency: Decimal(row.rate) for row in rows if row.currency != base},
        set_at={row.currency: row.set_at for row in rows},
    )


def parse_rate(text: str) -> Decimal:
    """A rate typed by staff ("0.92" or "0,92"); raises `RateError` unless positive."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except (InvalidOperation, AttributeError) as exc:
        raise RateError(text) from exc
    if not value.is_finite() or value <= 0 or value > Decimal("1000000"):
        raise RateError(text)
    return value


def set_rate(
    session: Session, currency: str, rate: Decimal, *, now: datetime, staff_id: int | None
) -> ExchangeRate:
    """Set (or replace) the rate of `currency` (the caller commits)."""
    row = session.get(ExchangeRate, currency)
    if row is None:
        row = ExchangeRate(currency=currency, rate=rate, set_at=now, set_by_id=staff_id)
        session.add(row)
    else:
        row.rate, row.set_at, row.set_by_id = rate, now, staff_id
    session.flush()
    return row
