"""Monthly summaries kept by the database itself.

Reports over a million donations cannot scan them on every page view. Small tables hold
what the reports need:

* `donation_month_totals`: net amount and number of paid gifts per (month, kind, currency,
  campaign, source, language);
* `donation_month_kinds`: the same per (month, kind, currency) only, for unfiltered views;
* `donation_month_amounts`: number of paid gifts per (month, currency, net amount), for the
  median gift;
* `plan_month_deltas`, `plan_cohort_counts`: what plans started and ended per month, for
  active plans, MRR, churn and the cohort grid;
* `donor_plan_counts`: started plans per donor, to find the few donors with several;
* `plan_failure_months`: the months in which each plan had a failed renewal;
* `subscriber_month_pairs`: subscribers per (month confirmed, month unsubscribed, status).

Database triggers on `donations`, `plans`, `plan_failures` and `subscribers` keep them
right on every write, whatever wrote it (the books, staff, a bulk import, a migration): a
gift counts while it counts as paid (`webapp.donations.models.paid_condition`, written into
the triggers' SQL), in the month (UTC) of `paid_at`, with its current net amount
(`net_amount`); an update takes the old row out and puts the new one in. `rebuild` recomputes them
all from scratch (used by the migration that creates them); `tests/reports/test_summary.py`
checks them against the rows they summarise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, String, event, literal_column, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base
from webapp.donations.models import Donation, Frequency, net_amount, paid_condition
from webapp.subscribers.models import SubscriberStatus

KEY = ("month", "kind", "currency", "campaign_id", "source", "language")


class DonationMonthTotal(Base):
    """Paid gifts of one month and one (kind, currency, campaign, source, language)."""

    __tablename__ = "donation_month_totals"

    #: "YYYY-MM" of `paid_at` in UTC.
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    #: 0 for gifts without a campaign (a key column cannot be NULL).
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: Sum of amount - refunded - disputed, minor units.
    net_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Paid gifts.
    gifts: Mapped[int] = mapped_column(Integer, default=0)


class DonationMonthKind(Base):
    """`DonationMonthTotal` summed over campaigns, sources and languages: what an
    unfiltered view (the dashboard) reads, a few rows a month."""

    __tablename__ = "donation_month_kinds"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    net_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    gifts: Mapped[int] = mapped_column(Integer, default=0)


class DonationMonthAmount(Base):
    """How many paid gifts of one month and currency have this net amount."""

    __tablename__ = "donation_month_amounts"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    net_minor: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gifts: Mapped[int] = mapped_column(Integer, default=0)


class PlanMonthDelta(Base):
    """What the plans of one (currency, campaign, source) changed in one month: plans and
    monthly amounts that started (+) and ended (-), and the counts behind churn. Summed up to
    a month, the deltas give the active plans and MRR at its end."""

    __tablename__ = "plan_month_deltas"

    #: "YYYY-MM" (UTC) of the plan's `started_at` (the + side) or `canceled_at` (the - side).
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: Active plans: +1 when one starts, -1 when it ends.
    plans: Mapped[int] = mapped_column(Integer, default=0)
    #: Amounts of monthly plans and of yearly plans (minor units), + on start, - on end.
    monthly_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    yearly_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Plans that started / were cancelled this month.
    started: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    #: Cancelled this month having started in an earlier month (churn's numerator).
    churned: Mapped[int] = mapped_column(Integer, default=0)


class PlanCohortCount(Base):
    """How many plans started in one month and ended in another (or are still running)."""

    __tablename__ = "plan_cohort_counts"

    #: "YYYY-MM" (UTC) of `started_at`.
    start_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    #: "YYYY-MM" of `canceled_at`, "" while the plan runs.
    end_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    plans: Mapped[int] = mapped_column(Integer, default=0)


class DonorPlanCount(Base):
    """How many started plans (running or ended) one donor has; donors without are left out.
    Counting active donors from the plan deltas needs a look at the few donors with more
    than one plan, and this is how they are found without reading every plan."""

    __tablename__ = "donor_plan_counts"

    donor_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plans: Mapped[int] = mapped_column(Integer, default=0, index=True)


class PlanFailureMonth(Base):
    """A month (UTC) in which one plan had at least one failed renewal, and how many."""

    __tablename__ = "plan_failure_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class SubscriberMonthPair(Base):
    """How many subscribers with a status confirmed in one month and unsubscribed in another
    ("" for never). Summed, the pairs give the confirmed list at each month's end, the
    confirmations and unsubscribes of each month, and the list by status now. Pending
    signups that never confirmed or left are not counted (a signup writes nothing here)."""

    __tablename__ = "subscriber_month_pairs"

    #: "YYYY-MM" (UTC) of `confirmed_at`, "" when not confirmed.
    confirmed_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    #: "YYYY-MM" of `unsubscribed_at`, "" while subscribed.
    left_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    subscribers: Mapped[int] = mapped_column(Integer, default=0)


class _Row:
    """A donation row named in SQL text: the triggers' `OLD` and `NEW`, `rebuild`'s `d`. Its
    columns are `Donation`'s, so the rules of `webapp.donations.models` take it as a row."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, column: str) -> ColumnElement[Any]:
        return literal_column(f"{self.name}.{column}", Donation.__table__.c[column].type)


def _as_sql(expression: ColumnElement[Any]) -> str:
    # A trigger's body takes literals only, no parameters. What the rules use (-, =, AND,
    # IS NOT NULL, quoted strings) is written the same way on SQLite and PostgreSQL.
    return str(expression.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def _net(row: str) -> str:
    """`net_amount` of the donation row `row`, as SQL."""
    return _as_sql(net_amount(_Row(row)))


def _paid(row: str) -> str:
    """`paid_condition` of the donation row `row`, as SQL: the gifts the summaries count."""
    return _as_sql(paid_condition(_Row(row)))


def _take_out(dialect: str, row: str) -> list[str]:
    net, month = _net(row), _month_of(dialect, f"{row}.paid_at")
    return [
        f"UPDATE donation_month_totals SET net_minor = net_minor - ({net}), gifts = gifts - 1"
        f" WHERE {_paid(row)} AND month = {month} AND kind = {row}.kind"
        f" AND currency = {row}.currency AND campaign_id = COALESCE({row}.campaign_id, 0)"
        f" AND source = {row}.source AND language = {row}.language",
        f"UPDATE donation_month_kinds SET net_minor = net_minor - ({net}), gifts = gifts - 1"
        f" WHERE {_paid(row)} AND month = {month} AND kind = {row}.kind"
        f" AND currency = {row}.currency",
        f"UPDATE donation_month_amounts SET gifts = gifts - 1"
        f" WHERE {_paid(row)} AND month = {month} AND currency = {row}.currency"
        f" AND net_minor = {net}",
    ]


def _put_in(dialect: str, row: str) -> list[str]:
    net, month = _net(row), _month_of(dialect, f"{row}.paid_at")
    qualify = "donation_month_totals." if dialect == "postgresql" else ""
    qualify_amounts = "donation_month_amounts." if dialect == "postgresql" else ""
    qualify_kinds = "donation_month_kinds." if dialect == "postgresql" else ""
    return [
        "INSERT INTO donation_month_totals"
        " (month, kind, currency, campaign_id, source, language, net_minor, gifts)"
        f" SELECT {month}, {row}.kind, {row}.currency, COALESCE({row}.campaign_id, 0),"
        f" {row}.source, {row}.language, {net}, 1 WHERE {_paid(row)}"
        f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET"
        f" net_minor = {qualify}net_minor + excluded.net_minor,"
        f" gifts = {qualify}gifts + excluded.gifts",
        "INSERT INTO donation_month_kinds (month, kind, currency, net_minor, gifts)"
        f" SELECT {month}, {row}.kind, {row}.currency, {net}, 1 WHERE {_paid(row)}"
        " ON CONFLICT (month, kind, currency) DO UPDATE SET"
        f" net_minor = {qualify_kinds}net_minor + excluded.net_minor,"
        f" gifts = {qualify_kinds}gifts + excluded.gifts",
        "INSERT INTO donation_month_amounts (month, currency, net_minor, gifts)"
        f" SELECT {month}, {row}.currency, {net}, 1 WHERE {_paid(row)}"
        " ON CONFLICT (month, currency, net_minor) DO UPDATE SET"
        f" gifts = {qualify_amounts}gifts + excluded.gifts",
    ]


def _month_of(dialect: str, column: str) -> str:
    """The "YYYY-MM" (UTC) of a timestamp column, as SQL for this database."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


_PLAN_KEY = "currency, campaign_id, source"
_PLAN_COLUMNS = "plans, monthly_minor, yearly_minor, started, cancelled, churned"


def _plan_amounts(row: str) -> tuple[str, str]:
    """The plan row `row`'s amount as a monthly plan's and as a yearly plan's (one is 0)."""
    yearly = f"{row}.interval = '{Frequency.YEARLY.value}'"
    return (
        f"(CASE WHEN {yearly} THEN 0 ELSE {row}.amount_minor END)",
        f"(CASE WHEN {yearly} THEN {row}.amount_minor ELSE 0 END)",
    )


def _plan_upserts(dialect: str, row: str, sign: int) -> list[str]:
    """Add (sign 1) or take out (sign -1) one plan row's contributions."""
    started_month = _month_of(dialect, f"{row}.started_at")
    canceled_month = _month_of(dialect, f"{row}.canceled_at")
    monthly, yearly = _plan_amounts(row)
    churned = f"(CASE WHEN {canceled_month} > {started_month} THEN 1 ELSE 0 END)"
    prefix = "plan_month_deltas." if dialect == "postgresql" else ""
    update = ", ".join(
        f"{column} = {prefix}{column} + excluded.{column}" for column in _PLAN_COLUMNS.split(", ")
    )
    key = f"{row}.currency, COALESCE({row}.campaign_id, 0), {row}.source"
    cohort_prefix = "plan_cohort_counts." if dialect == "postgresql" else ""
    cohort = (
        f"INSERT INTO plan_cohort_counts (start_month, end_month, {_PLAN_KEY}, plans)"
        f" SELECT {started_month}, COALESCE({canceled_month}, ''), {key}, {sign}"
        f" WHERE {row}.started_at IS NOT NULL"
        f" ON CONFLICT (start_month, end_month, {_PLAN_KEY}) DO UPDATE SET"
        f" plans = {cohort_prefix}plans + excluded.plans"
    )
    donor_prefix = "donor_plan_counts." if dialect == "postgresql" else ""
    donors = [
        f"INSERT INTO donor_plan_counts (donor_id, plans) SELECT {row}.donor_id, {sign}"
        f" WHERE {row}.started_at IS NOT NULL ON CONFLICT (donor_id) DO UPDATE SET"
        f" plans = {donor_prefix}plans + excluded.plans"
    ]
    if sign < 0:  # a donor whose last started plan went is no longer listed
        donors.append(
            f"DELETE FROM donor_plan_counts WHERE donor_id = {row}.donor_id AND plans <= 0"
        )
    return [
        *donors,
        cohort,
        f"INSERT INTO plan_month_deltas (month, {_PLAN_KEY}, {_PLAN_COLUMNS})"
        f" SELECT {started_month}, {key}, {sign}, {sign} * {monthly}, {sign} * {yearly},"
        f" {sign}, 0, 0 WHERE {row}.started_at IS NOT NULL"
        f" ON CONFLICT (month, {_PLAN_KEY}) DO UPDATE SET {update}",
        f"INSERT INTO plan_month_deltas (month, {_PLAN_KEY}, {_PLAN_COLUMNS})"
        f" SELECT {canceled_month}, {key}, {-sign}, {-sign} * {monthly}, {-sign} * {yearly},"
        f" 0, {sign}, {sign} * {churned}"
        f" WHERE {row}.started_at IS NOT NULL AND {row}.canceled_at IS NOT NULL"
        f" ON CONFLICT (month, {_PLAN_KEY}) DO UPDATE SET {update}",
    ]


def _failure_upserts(dialect: str, row: str, sign: int) -> list[str]:
    """Count (sign 1) or uncount (sign -1) one failed renewal in its plan's month."""
    month = _month_of(dialect, f"{row}.failed_at")
    if sign > 0:
        prefix = "plan_failure_months." if dialect == "postgresql" else ""
        return [
            "INSERT INTO plan_failure_months (month, plan_id, failures)"
            f" SELECT {month}, {row}.plan_id, 1 WHERE {row}.failed_at IS NOT NULL"
            f" ON CONFLICT (month, plan_id) DO UPDATE SET failures = {prefix}failures + 1"
        ]
    where = f"WHERE month = {month} AND plan_id = {row}.plan_id"
    return [
        f"UPDATE plan_failure_months SET failures = failures - 1 {where}",
        f"DELETE FROM plan_failure_months {where} AND failures <= 0",
    ]


def _subscriber_upserts(dialect: str, row: str, sign: int) -> list[str]:
    """Count (sign 1) or uncount (sign -1) one subscriber in its (confirmed, left) pair."""
    confirmed = f"COALESCE({_month_of(dialect, f'{row}.confirmed_at')}, '')"
    left = f"COALESCE({_month_of(dialect, f'{row}.unsubscribed_at')}, '')"
    counted = _subscriber_counted(f"{row}.")
    if sign > 0:
        prefix = "subscriber_month_pairs." if dialect == "postgresql" else ""
        return [
            "INSERT INTO subscriber_month_pairs"
            " (confirmed_month, left_month, status, subscribers)"
            f" SELECT {confirmed}, {left}, {row}.status, 1 WHERE {counted}"
            " ON CONFLICT (confirmed_month, left_month, status) DO UPDATE SET"
            f" subscribers = {prefix}subscribers + 1"
        ]
    return [
        "UPDATE subscriber_month_pairs SET subscribers = subscribers - 1"
        f" WHERE confirmed_month = {confirmed} AND left_month = {left}"
        f" AND status = {row}.status AND {counted}"
    ]


def _subscriber_counted(prefix: str) -> str:
    """SQL: the subscriber (columns named `prefix` + name) is in the pairs: anyone but a
    signup that never confirmed nor left."""
    return (
        f"({prefix}status <> '{SubscriberStatus.PENDING.value}'"
        f" OR {prefix}confirmed_at IS NOT NULL OR {prefix}unsubscribed_at IS NOT NULL)"
    )


def _triggers(dialect: str) -> list[tuple[str, str, list[str], list[str], str]]:
    """(table, trigger name, statements taking OLD out, statements putting NEW in, the
    columns whose update matters ("" for any)) of every kept summary."""
    return [
        ("donations", "donations_month_totals", _take_out(dialect, "OLD"),
         _put_in(dialect, "NEW"), ""),
        # Only the columns the plan summaries depend on: a renewal touching the plan
        # changes none of them.
        ("plans", "plans_month_deltas", _plan_upserts(dialect, "OLD", -1),
         _plan_upserts(dialect, "NEW", 1),
         "started_at, canceled_at, amount_minor, \"interval\", currency, campaign_id, source,"
         " donor_id"),
        ("plan_failures", "plan_failures_months", _failure_upserts(dialect, "OLD", -1),
         _failure_upserts(dialect, "NEW", 1), ""),
        ("subscribers", "subscribers_month_pairs", _subscriber_upserts(dialect, "OLD", -1),
         _subscriber_upserts(dialect, "NEW", 1), "confirmed_at, unsubscribed_at, status"),
    ]  # fmt: skip


def trigger_ddl(dialect: str) -> list[str]:
    """The statements that create the triggers keeping the summaries, for this database."""
    statements: list[str] = []
    for table, name, take_out, put_in, columns in _triggers(dialect):
        of = f" OF {columns}" if columns else ""
        if dialect == "postgresql":
            body = "\n".join(
                [
                    "IF TG_OP IN ('UPDATE', 'DELETE') THEN",
                    *(f"  {statement};" for statement in take_out),
                    "END IF;",
                    "IF TG_OP IN ('INSERT', 'UPDATE') THEN",
                    *(f"  {statement};" for statement in put_in),
                    "END IF;",
                    "RETURN NULL;",
                ]
            )
            statements += [
                f"CREATE OR REPLACE FUNCTION {name}_apply() RETURNS trigger AS $$\n"
                f"BEGIN\n{body}\nEND;\n$$ LANGUAGE plpgsql",
                f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE{of} OR DELETE"
                f" ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_apply()",
            ]
            continue
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {table}"
            f" BEGIN {'; '.join(put_in)}; END",
            f"CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE{of} ON {table}"
            f" BEGIN {'; '.join(take_out + put_in)}; END",
            f"CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {table}"
            f" BEGIN {'; '.join(take_out)}; END",
        ]
    return statements


def drop_trigger_ddl(dialect: str) -> list[str]:
    """The statements that remove the triggers."""
    statements: list[str] = []
    for table, name, *_rest in _triggers(dialect):
        if dialect == "postgresql":
            statements += [
                f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"DROP FUNCTION IF EXISTS {name}_apply()",
            ]
        else:
            statements += [
                f"DROP TRIGGER IF EXISTS {name}_{event_name}"
                for event_name in ("insert", "update", "delete")
            ]
    return statements


def rebuild(connection: Connection) -> None:
    """Recompute every summary from the rows it summarises (in the caller's transaction)."""
    dialect = connection.dialect.name
    month = _month_of(dialect, "d.paid_at")
    net = _net("d")
    paid = _paid("d")
    for table in (
        "plan_month_deltas",
        "plan_cohort_counts",
        "donor_plan_counts",
        "plan_failure_months",
        "subscriber_month_pairs",
    ):
        connection.execute(text(f"DELETE FROM {table}"))
    for statement in _plan_rebuild(dialect):
        connection.execute(text(statement))
    for table in ("donation_month_totals", "donation_month_kinds", "donation_month_amounts"):
        connection.execute(text(f"DELETE FROM {table}"))
    connection.execute(
        text(
            "INSERT INTO donation_month_totals"
            " (month, kind, currency, campaign_id, source, language, net_minor, gifts)"
            f" SELECT {month}, d.kind, d.currency, COALESCE(d.campaign_id, 0), d.source,"
            f" d.language, SUM({net}), COUNT(*) FROM donations d WHERE {paid}"
            f" GROUP BY {month}, d.kind, d.currency, COALESCE(d.campaign_id, 0), d.source,"
            " d.language"
        )
    )
    connection.execute(
        text(
            "INSERT INTO donation_month_kinds (month, kind, currency, net_minor, gifts)"
            " SELECT month, kind, currency, SUM(net_minor), SUM(gifts)"
            " FROM donation_month_totals GROUP BY month, kind, currency"
        )
    )
    connection.execute(
        text(
            "INSERT INTO donation_month_amounts (month, currency, net_minor, gifts)"
            f" SELECT {month}, d.currency, {net}, COUNT(*) FROM donations d WHERE {paid}"
            f" GROUP BY {month}, d.currency, {net}"
        )
    )


def _plan_rebuild(dialect: str) -> list[str]:
    # The same contributions as the triggers, for every plan at once (each plan row goes
    # through the trigger's upserts, in SQL).
    started_month = _month_of(dialect, "p.started_at")
    canceled_month = _month_of(dialect, "p.canceled_at")
    failed_month = _month_of(dialect, "failed_at")
    confirmed_month = f"COALESCE({_month_of(dialect, 'confirmed_at')}, '')"
    left_month = f"COALESCE({_month_of(dialect, 'unsubscribed_at')}, '')"
    monthly, yearly = _plan_amounts("p")
    churned = f"(CASE WHEN {canceled_month} > {started_month} THEN 1 ELSE 0 END)"
    key = "p.currency, COALESCE(p.campaign_id, 0), p.source"
    named_key = "p.currency, COALESCE(p.campaign_id, 0) AS campaign_id, p.source"
    sides = (
        f"SELECT {started_month} AS month, {named_key},"
        f" 1 AS plans, {monthly} AS monthly_minor, {yearly} AS yearly_minor, 1 AS started,"
        " 0 AS cancelled, 0 AS churned FROM plans p WHERE p.started_at IS NOT NULL"
        f" UNION ALL SELECT {canceled_month}, {key}, -1, -{monthly}, -{yearly}, 0, 1, {churned}"
        " FROM plans p WHERE p.started_at IS NOT NULL AND p.canceled_at IS NOT NULL"
    )
    return [
        f"INSERT INTO plan_cohort_counts (start_month, end_month, {_PLAN_KEY}, plans)"
        f" SELECT {started_month}, COALESCE({canceled_month}, ''), {key}, COUNT(*)"
        " FROM plans p WHERE p.started_at IS NOT NULL"
        f" GROUP BY {started_month}, COALESCE({canceled_month}, ''), {key}",
        f"INSERT INTO plan_month_deltas (month, {_PLAN_KEY}, {_PLAN_COLUMNS})"
        f" SELECT month, {_PLAN_KEY}, SUM(plans), SUM(monthly_minor), SUM(yearly_minor),"
        f" SUM(started), SUM(cancelled), SUM(churned) FROM ({sides}) AS sides"
        f" GROUP BY month, {_PLAN_KEY}",
        "INSERT INTO donor_plan_counts (donor_id, plans) SELECT donor_id, COUNT(*) FROM plans"
        " WHERE started_at IS NOT NULL GROUP BY donor_id",
        "INSERT INTO plan_failure_months (month, plan_id, failures)"
        f" SELECT {failed_month}, plan_id, COUNT(*) FROM plan_failures"
        f" WHERE failed_at IS NOT NULL GROUP BY {failed_month}, plan_id",
        "INSERT INTO subscriber_month_pairs (confirmed_month, left_month, status, subscribers)"
        f" SELECT {confirmed_month}, {left_month}, status, COUNT(*) FROM subscribers"
        f" WHERE {_subscriber_counted('')}"
        f" GROUP BY {confirmed_month}, {left_month}, status",
    ]


@event.listens_for(Base.metadata, "after_create")
def _create_triggers(_metadata: object, connection: Connection, **_kw: object) -> None:
    # Tests and `create_all` build the schema from the models; the migration does the same.
    for statement in trigger_ddl(connection.dialect.name):
        connection.execute(text(statement))
