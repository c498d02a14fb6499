"""reports: the supporter dashboard and every report over a large history, as a ratio to one
full `count(*)` of the donations table in the same run.

The history is `readership demo --donors N --donations M --subscribers S`'s generators
(`webapp.donations.history`, `webapp.subscribers.demo`): 100,000 donors, 1,000,000
donations and 100,000 subscribers by default (2,000 / 20,000 / 2,000 with `--quick`),
written once into a scratch database. Each measurement is the best
of two runs (the first warms the caches, as a staff member's second look would); the
baseline is the best of three `SELECT count(*) FROM donations`.

QUALITY.md target: the dashboard <= 5x the count; the reports are held to the same.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

import webapp.models  # noqa: F401  (every table on Base.metadata)
from bench.common import is_postgres_url, scratch_database
from bench.report import BenchResult
from webapp import create_app
from webapp.db import Base, get_database

NAME = "reports"
TARGET_RATIO = 5.0
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ReportSizes:
    """How big the history is."""

    donors: int = 100_000
    donations: int = 1_000_000
    #: The newsletter list beside them (`readership demo --subscribers`: statuses,
    #: confirmations and unsubscribes spread over the demo's two years).
    subscribers: int = 100_000


QUICK = ReportSizes(donors=2_000, donations=20_000, subscribers=2_000)


def _best(function: Any, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def _measure(kind: str, url: str, sizes: ReportSizes, workdir: Path, result: BenchResult) -> None:
    from webapp.donations.history import generate_history
    from webapp.reports import metrics
    from webapp.reports.dashboard import build_dashboard
    from webapp.reports.rates import load_rates, set_rate
    from webapp.reports.tables import REPORTS, Query
    from webapp.subscribers.demo import load_demo_subscribers

    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "bench-" * 8, "MAILBOX_DIR": str(workdir / "mb")}
    )
    database = get_database(app)
    Base.metadata.create_all(database.engine)
    with app.app_context(), database.session() as session:
        from decimal import Decimal

        started = time.perf_counter()
        written = generate_history(session, donors=sizes.donors, donations=sizes.donations, now=NOW)
        generated_s = time.perf_counter() - started
        started = time.perf_counter()
        listed = load_demo_subscribers(
            session,
            count=sizes.subscribers,
            now=NOW,
            languages=("en", "ru"),
            site_url="https://bench.example.org",
            base_url="http://localhost:5000",
        )
        session.commit()
        subscribers_s = time.perf_counter() - started
        set_rate(session, "USD", Decimal("0.92"), now=NOW, staff_id=None)
        set_rate(session, "GBP", Decimal("1.17"), now=NOW, staff_id=None)
        session.commit()
        if kind == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
        baseline = _best(
            lambda: session.execute(text("SELECT count(*) FROM donations")).scalar(), 3
        )
        rates = load_rates(session)
        dashboard = _best(lambda: build_dashboard(session, NOW, rates), 2)
        query = Query(
            metrics.add_months(metrics.month_start(NOW), -11),
            metrics.month_start(NOW),
            metrics.ReportFilter(),
            NOW,
        )
        timings = {
            report.slug: _best(lambda report=report: report.build(session, query, rates), 2)
            for report in REPORTS
        }
    database.engine.dispose()
    result.add(f"{kind}: history written ({written})", generated_s, "s")
    result.add(f"{kind}: subscribers written ({listed.created})", subscribers_s, "s")
    result.add(f"{kind}: count(*) of donations", baseline * 1000, "ms")
    ratio = dashboard / baseline
    result.add(
        f"{kind}: dashboard / count(*)",
        ratio,
        "x",
        f"<= {TARGET_RATIO:.0f}x",
        ratio <= TARGET_RATIO,
    )
    for slug, seconds in timings.items():
        report_ratio = seconds / baseline
        result.add(
            f"{kind}: {slug} / count(*)",
            report_ratio,
            "x",
            f"<= {TARGET_RATIO:.0f}x",
            report_ratio <= TARGET_RATIO,
        )
    result.details[kind] = {
        "generated_s": generated_s,
        "subscribers_s": subscribers_s,
        "count_ms": baseline * 1000,
        "dashboard_ms": dashboard * 1000,
        "reports_ms": {slug: s * 1000 for slug, s in timings.items()},
    }


def run(sizes: ReportSizes, database_url: str | None = None) -> BenchResult:
    """Measure on SQLite, and on PostgreSQL too when `database_url` points at a server."""
    result = BenchResult(NAME, params=asdict(sizes))
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as folder:
        workdir = Path(folder)
        kinds: list[tuple[str, str | None]] = [("sqlite", None)]
        if is_postgres_url(database_url):
            kinds.append(("postgresql", database_url))
        for kind, server in kinds:
            with scratch_database(kind, workdir, server, label="reports") as url:
                _measure(kind, url, sizes, workdir, result)
    return result
