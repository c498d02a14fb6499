"""csv_import: the subscriber CSV import against a bare `executemany` of the same rows.

The import is the real service the command line uses (`csv_io.start_import` then
`csv_io.run_import`, exactly as `readership subscribers import` calls them): encoding detection,
delimiter detection, format detection, per-row validation, dedupe against the file and the
list, batched inserts committed with the job's progress. The baseline is the least any
import could cost: one DB-API `executemany` of the very rows the import ends up storing,
into the same table (same indexes, same connection settings) of another fresh database,
and one commit. Parsing the file is not part of the baseline.

QUALITY.md target: import time <= 3x the baseline's.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

import webapp.models  # noqa: F401  (every table on Base.metadata, for create_all)
from bench.common import is_postgres_url, scratch_database
from bench.report import BenchResult
from webapp import create_app
from webapp.core.clock import get_clock
from webapp.db import Base, get_database, make_engine
from webapp.subscribers import csv_io
from webapp.subscribers.models import ImportJob, ImportStatus, pack_languages

NAME = "csv_import"
DEFAULT_ROWS = 100_000
QUICK_ROWS = 5_000
#: Import time may be at most this many times the bare `executemany` (QUALITY.md).
TARGET_RATIO = 3.0
LANGUAGES = ("en", "ru")

#: The subscriber columns an import writes, in the baseline's INSERT.
COLUMNS = (
    "email",
    "name",
    "name_key",
    "language",
    "digest_languages",
    "status",
    "paused",
    "paused_at",
    "suppressed",
    "suppression_reason",
    "suppressed_at",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "soft_bounce_count",
    "import_job_id",
)
#: Columns compared between the two databases to prove they hold the same rows.
_COMPARED = (
    "email",
    "name",
    "name_key",
    "language",
    "digest_languages",
    "status",
    "paused",
    "suppressed",
    "suppression_reason",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)

_FIRST_EN = (
    "Alice",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Isla",
    "Jack",
    "Katie",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Peter",
    "Ruby",
    "Sam",
)
_LAST_EN = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Hughes",
    "Green",
    "O'Neill",
    "Clarke",
)
_FIRST_RU = (
    "Анна",
    "Борис",
    "Вера",
    "Глеб",
    "Дарья",
    "Егор",
    "Жанна",
    "Игорь",
    "Ксения",
    "Лев",
    "Мария",
    "Никита",
    "Ольга",
    "Павел",
    "Светлана",
    "Тимур",
)
_LAST_RU = (
    "Иванова",
    "Петров",
    "Смирнова",
    "Кузнецов",
    "Попова",
    "Соколов",
    "Лебедева",
    "Новиков",
    "Морозова",
    "Волков",
)
_DOMAINS = (
    "gmail.com",
    "yandex.ru",
    "mail.ru",
    "posteo.de",
    "proton.me",
    "fastmail.com",
    "outlook.com",
    "icloud.com",
    "riseup.net",
    "web.de",
)
_TRANSLIT = str.maketrans("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "abvgdeejziiklmnoprstufhccss_y_eua")


@dataclass(frozen=True, slots=True)
class Record:
    """One generated subscriber, as both the CSV row and the stored row derive from it."""

    email: str
    name: str
    language: str
    languages: tuple[str, ...]
    status: str
    source: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    paused: bool
    suppression_reason: str | None


def generate_records(count: int, seed: int = 20261128) -> list[Record]:
    """`count` distinct, valid subscribers in both languages with a realistic mix of
    statuses (mostly confirmed; some pending, unsubscribed, bounced, paused)."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=3 * 365).total_seconds())
    records = []
    for i in range(count):
        russian = rng.random() < 0.35
        if russian:
            first, last = rng.choice(_FIRST_RU), rng.choice(_LAST_RU)
            local = f"{first}.{last}".lower().translate(_TRANSLIT)
            language = "ru"
            languages = ("ru", "en") if rng.random() < 0.2 else ("ru",)
        else:
            first, last = rng.choice(_FIRST_EN), rng.choice(_LAST_EN)
            local = f"{first}.{last}".lower().replace("'", "")
            language = "en"
            languages = ("en", "ru") if rng.random() < 0.05 else ("en",)
        name = "" if rng.random() < 0.15 else f"{first} {last}"
        created = start + timedelta(seconds=rng.randrange(span))
        roll = rng.random()
        confirmed_at = created + timedelta(minutes=rng.randrange(1, 600))
        unsubscribed_at = None
        reason = None
        if roll < 0.80:
            status = "confirmed"
        elif roll < 0.90:
            status = "unsubscribed"
            unsubscribed_at = confirmed_at + timedelta(days=rng.randrange(1, 300))
        elif roll < 0.97:
            status, confirmed_at = "pending", None
        else:
            status, reason = "bounced", "hard_bounce"
        records.append(
            Record(
                email=f"{local}.{i}@{rng.choice(_DOMAINS)}",
                name=name,
                language=language,
                languages=languages,
                status=status,
                source=rng.choice(("signup_page", "signup_page", "embed", "import")),
                created_at=created,
                confirmed_at=confirmed_at,
                unsubscribed_at=unsubscribed_at,
                paused=status == "confirmed" and rng.random() < 0.02,
                suppression_reason=reason,
            )
        )
    return records


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def write_csv(records: Sequence[Record], path: Path) -> None:
    """Write `records` in our own export format (UTF-8 with BOM, CRLF), as staff would."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\ufeff")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(csv_io.EXPORT_COLUMNS)
        for r in records:
            writer.writerow(
                (
                    r.email,
                    r.name,
                    r.language,
                    " ".join(r.languages),
                    r.status,
                    r.source,
                    _iso(r.created_at),
                    _iso(r.confirmed_at),
                    _iso(r.unsubscribed_at),
                    "true" if r.paused else "false",
                    "true" if r.suppression_reason else "false",
                    r.suppression_reason or "",
                )
            )


def baseline_values(
    records: Sequence[Record], *, sqlite: bool, job_id: int, now: datetime
) -> list[tuple[Any, ...]]:
    """The rows the import stores for `records`, as driver-ready tuples in `COLUMNS` order
    (SQLite gets datetimes as text in SQLAlchemy's storage format, PostgreSQL as objects)."""

    def db_time(value: datetime | None) -> Any:
        if value is None or not sqlite:
            return value
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]

    at = db_time(now)
    values = []
    for r in records:
        suppressed = r.suppression_reason is not None
        values.append(
            (
                r.email,
                r.name,
                r.name.casefold(),
                r.language,
                pack_languages(list(r.languages)),
                r.status,
                r.paused,
                at if r.paused else None,
                suppressed,
                r.suppression_reason,
                at if suppressed else None,
                r.source,
                db_time(r.created_at),
                db_time(r.confirmed_at),
                db_time(r.unsubscribed_at),
                0,
                job_id,
            )
        )
    return values


def _app_config(url: str, workdir: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret-key-long-enough-for-hmac-signing",
        "SMTP_URL": None,
        "MAILBOX_DIR": str(workdir / "mailbox"),
        "LANGUAGES": LANGUAGES,
        "DEFAULT_LANGUAGE": LANGUAGES[0],
        "RATELIMIT_ENABLED": False,
    }


def time_import(url: str, csv_path: Path, workdir: Path) -> tuple[float, ImportJob]:
    """Create the schema in the empty database at `url`, then import `csv_path` the way
    `readership subscribers import` does; returns (seconds, the finished job). Only the
    import itself is timed."""
    app = create_app(_app_config(url, workdir))
    database = get_database(app)
    try:
        Base.metadata.create_all(database.engine)
        languages = tuple(app.config["LANGUAGES"])
        clock = get_clock(app)
        started = time.perf_counter()
        with database.session() as session:
            job = csv_io.start_import(
                session,
                filename=csv_path.name,
                requested_format="auto",
                default_language=languages[0],
                now=clock.now(),
            )
            session.commit()
            csv_io.run_import(session, job, csv_path, languages=languages, now=clock.now)
        elapsed = time.perf_counter() - started
    finally:
        database.engine.dispose()
    if job.status != ImportStatus.FINISHED:
        raise RuntimeError(f"the import did not finish: {job.status} {job.error}")
    return elapsed, job


def time_executemany(url: str, records: Sequence[Record]) -> float:
    """Create the schema in the empty database at `url`, then insert the rows the import
    would store with one DB-API `executemany` and one commit; returns the seconds taken by
    those two calls. The connection has the app's settings (SQLite pragmas included)."""
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            # The import's job row, so every inserted row carries the same foreign key.
            job_id = conn.execute(
                ImportJob.__table__.insert().values(
                    status="finished",
                    filename="bench.csv",
                    requested_format="auto",
                    default_language=LANGUAGES[0],
                    created_at=now,
                    total_rows=len(records),
                    processed_rows=0,
                    created_count=0,
                    updated_count=0,
                    unchanged_count=0,
                    rejected_count=0,
                )
            ).inserted_primary_key[0]
        sqlite = engine.dialect.name == "sqlite"
        values = baseline_values(records, sqlite=sqlite, job_id=int(job_id), now=now)
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO subscribers ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join([placeholder] * len(COLUMNS))})"
        )
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            started = time.perf_counter()
            cursor.executemany(sql, values)
            raw.commit()
            elapsed = time.perf_counter() - started
            cursor.close()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return elapsed


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        sql = f"SELECT {', '.join(_COMPARED)} FROM subscribers ORDER BY email"
        return [tuple(row) for row in conn.execute(text(sql))]


def same_rows(url_a: str, url_b: str) -> bool:
    """True when both databases hold the same subscribers (compared column by column)."""
    engines = [make_engine(url_a), make_engine(url_b)]
    try:
        return _rows(engines[0]) == _rows(engines[1])
    finally:
        for engine in engines:
            engine.dispose()


def run(rows: int = DEFAULT_ROWS, database_url: str | None = None, repeat: int = 1) -> BenchResult:
    """Measure the import of `rows` rows on SQLite (and on the PostgreSQL server of
    `database_url` when given) against the bare `executemany`; `repeat` rounds each, the
    best time of each side counts."""
    if rows < 1 or repeat < 1:
        raise ValueError("rows and repeat must be at least 1")
    targets = [("sqlite", None)]
    if is_postgres_url(database_url):
        targets.append(("postgresql", database_url))
    elif database_url:
        raise ValueError("--database-url must be a postgresql+psycopg:// URL")
    result = BenchResult(
        NAME, params={"rows": rows, "repeat": repeat, "backends": [kind for kind, _ in targets]}
    )
    records = generate_records(rows)
    with tempfile.TemporaryDirectory(prefix="readership-bench-csv-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "subscribers.csv"
        write_csv(records, csv_path)
        result.params["file_bytes"] = csv_path.stat().st_size
        for kind, server in targets:
            result.details[kind] = _measure(kind, server, records, csv_path, workdir, repeat)
            detail = result.details[kind]
            ratio = detail["import_s"] / detail["executemany_s"]
            detail["ratio"] = ratio
            result.add(f"{kind}: import {rows:,} rows", detail["import_s"], "s")
            result.add(f"{kind}: import rate", rows / detail["import_s"], "rows/s")
            result.add(f"{kind}: bare executemany", detail["executemany_s"], "s")
            result.add(f"{kind}: executemany rate", rows / detail["executemany_s"], "rows/s")
            result.add(
                f"{kind}: import / executemany",
                ratio,
                "x",
                target=f"<= {TARGET_RATIO:g}x",
                ok=ratio <= TARGET_RATIO,
            )
    return result


def _measure(
    kind: str,
    server: str | None,
    records: Sequence[Record],
    csv_path: Path,
    workdir: Path,
    repeat: int,
) -> dict[str, Any]:
    import_times: list[float] = []
    baseline_times: list[float] = []
    identical = None
    for round_ in range(repeat):
        with scratch_database(kind, workdir, server, "import") as import_url:
            seconds, job = time_import(import_url, csv_path, workdir)
            import_times.append(seconds)
            if job.created_count != len(records) or job.rejected_count:
                raise RuntimeError(
                    f"import stored {job.created_count} of {len(records)} rows, "
                    f"rejected {job.rejected_count}"
                )
            with scratch_database(kind, workdir, server, "baseline") as baseline_url:
                baseline_times.append(time_executemany(baseline_url, records))
                if round_ == 0:
                    identical = same_rows(import_url, baseline_url)
    if not identical:
        raise RuntimeError("the import and the baseline stored different rows")
    return {
        "import_s": min(import_times),
        "executemany_s": min(baseline_times),
        "import_runs_s": import_times,
        "executemany_runs_s": baseline_times,
        "rows_identical": identical,
    }
