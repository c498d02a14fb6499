"""Rules written once: the one-row settings helper, the "counts as paid" and net amount rules
of the summary triggers, the "wants this digest" predicate and the "current donor" rule,
each checked on the database the suite runs on (SQLite, or PostgreSQL when asked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import get_database, get_or_create_row
from webapp.digests.building import get_digest_settings
from webapp.digests.models import DigestSettings
from webapp.donations.models import DonationSettings
from webapp.donations.services import get_donation_settings
from webapp.reports.models import ExchangeRate, ReportSettings
from webapp.reports.rates import get_report_settings
from webapp.site.models import SiteSettings
from webapp.site.services import get_site_settings

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

SETTINGS: list[tuple[Callable[[Session], Any], type[Any]]] = [
    (get_digest_settings, DigestSettings),
    (get_donation_settings, DonationSettings),
    (get_report_settings, ReportSettings),
    (get_site_settings, SiteSettings),
]


# --- One settings helper -----------------------------------------------------------------------


@pytest.mark.parametrize(("get_settings", "model"), SETTINGS)
def test_settings_row_is_created_once_with_defaults(
    app: Flask, get_settings: Callable[[Session], Any], model: type[Any]
) -> None:
    with get_database(app).session() as session:
        first = get_settings(session)
        session.commit()
        assert first.id == 1
    with get_database(app).session() as session:
        assert get_settings(session).id == 1
        assert session.scalar(select(model).where(model.id != 1)) is None
        assert len(session.scalars(select(model)).all()) == 1


@pytest.mark.parametrize(("get_settings", "model"), SETTINGS)
def test_a_lost_insert_race_returns_the_winners_row_and_keeps_the_callers_work(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    get_settings: Callable[[Session], Any],
    model: type[Any],
) -> None:
    database = get_database(app)
    with database.session() as winner:
        winner.add(model(id=1))
        winner.commit()
    with database.session() as session:
        # The caller's own work, written before it asks for the settings.
        session.add(ExchangeRate(currency="USD", rate=Decimal("0.9"), set_at=NOW))
        session.flush()
        # This request looked before the winner's commit: its first look finds nothing, so
        # its insert loses on the primary key.
        real_get = session.get
        looks: list[int] = []

        def first_look_misses(entity: Any, ident: Any, **kw: Any) -> Any:
            looks.append(1)
            return None if len(looks) == 1 else real_get(entity, ident, **kw)

        monkeypatch.setattr(session, "get", first_look_misses)
        settings = get_settings(session)
        monkeypatch.undo()
        assert settings.id == 1
        assert len(looks) == 2
        session.commit()
    with database.session() as session:
        assert session.get(ExchangeRate, "USD") is not None
        assert len(session.scalars(select(model)).all()) == 1


def test_two_first_requests_at_once_on_postgresql(app: Flask) -> None:
    database = get_database(app)
    if not database.is_postgres:
        pytest.skip("two writers on one row at once need PostgreSQL")
    results: list[object] = []
    with database.session() as first:
        get_or_create_row(first, SiteSettings)  # inserted, not committed yet

        def second_request() -> None:
            try:
                with database.session() as second:
                    results.append(get_or_create_row(second, SiteSettings).id)
                    second.commit()
            except Exception as exc:  # noqa: BLE001 (reported to the test thread below)
                results.append(exc)

        thread = threading.Thread(target=second_request)
        thread.start()
        time.sleep(0.5)  # the second insert now waits on the first one's key
        assert results == []
        first.commit()
        thread.join(timeout=10)
    assert results == [1]
    with database.session() as session:
        assert len(session.scalars(select(SiteSettings)).all()) == 1
