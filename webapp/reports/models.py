"""The report settings: a base currency and the exchange rates staff set for it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


class ReportSettings(Base):
    """One row (id 1): the currency every total is also shown in."""

    __tablename__ = "report_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    base_currency: Mapped[str] = mapped_column(String(3), default="EUR")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExchangeRate(Base):
    """What one unit of `currency` is worth in the base currency, as staff set it (reports use
    the latest rate for every period: they show money, not market history)."""

    __tablename__ = "exchange_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    #: Base-currency units per one unit of `currency`, e.g. 0.92 for USD when the base is EUR.
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    #: When it was set, and by whom (shown next to every converted figure).
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    set_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
