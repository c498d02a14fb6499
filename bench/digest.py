"""digest: the weekly digest's fill-in per recipient, the sending engine's throughput into a
local SMTP sink, and its peak memory at two list sizes.

1. Fill-in: `IssueEmail.render_for` (one reader's greeting, signed links and support block
   joined into the compiled issue) against compiling the MJML for every reader (what a
   naive engine does). Target: < 0.5 ms per message and > 20x faster.
2. Throughput: a real `Worker` (claim, re-check the reader, fill, build the MIME bytes, send,
   commit per message) sending a whole issue to N readers over one SMTP connection, against
   a bare `smtplib` loop sending one prebuilt message to the same N addresses over one
   connection. Both run in a child process, the sink (aiosmtpd) in this one. Target: >= 0.8.
3. Memory: the engine's peak RSS (child process `ru_maxrss`) sending to the small and the
   large list. Target: flat (< 10% growth) and < 200 MB.
"""

from __future__ import annotations

import json
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

import webapp.models  # noqa: F401  (every table on Base.metadata)
from bench.common import REPO_ROOT, SmtpSink, is_postgres_url, scratch_database
from bench.report import BenchResult
from webapp import create_app
from webapp.articles.models import Article, ArticleViewDay
from webapp.db import Base, get_database
from webapp.digests.models import DigestIssue
from webapp.subscribers.models import Subscriber

NAME = "digest"
FILL_TARGET_MS = 0.5
FILL_TARGET_RATIO = 20.0
THROUGHPUT_TARGET = 0.8
MEMORY_GROWTH_TARGET = 0.10
MEMORY_CEILING_MB = 200.0
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SECRET = "bench-secret-key-that-is-long-enough-for-hmac"


@dataclass(frozen=True)
class DigestSizes:
    """How big each part runs."""

    fill_messages: int = 20_000
    compile_messages: int = 200
    small_list: int = 10_000
    large_list: int = 100_000


QUICK = DigestSizes(fill_messages=2_000, compile_messages=30, small_list=500, large_list=3_000)


def _config(database_url: str, smtp_url: str | None, workdir: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "BASE_URL": "https://readers.example.org",
        "SMTP_URL": smtp_url,
        "MAIL_FROM": "The Bench Review <digest@example.org>",
        "MAILBOX_DIR": str(workdir / "mailbox"),
        "DIGEST_BATCH_SIZE": 500,
    }


def _seed(database_url: str, readers: int, workdir: Path) -> int:
    """A database with articles, `readers` confirmed readers and an approved issue."""
    from webapp.digests.services import approve_issue

    app = create_app(_config(database_url, None, workdir))
    database = get_database(app)
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        articles = []
        for n in range(10):
            article = Article(
                url=f"https://news.example.org/en/story-{n}",
                language="en",
                title=f"A headline of a usual length, number {n}",
                lede="A standfirst of two lines that says what the piece is about. " * 2,
                author="A. Writer",
                section="Analysis",
                image_url="https://news.example.org/img/story.jpg",
                published_at=NOW - timedelta(days=n % 6 + 1),
                created_at=NOW,
            )
            session.add(article)
            articles.append(article)
        session.flush()
        for n, article in enumerate(articles[:6]):
            session.add(ArticleViewDay(article_id=article.id, day=NOW.date(), views=100 - n))
        rows = [
            {
                "email": f"reader{n}@example.net",
                "name": f"Reader {n}" if n % 3 else "",
                "name_key": f"reader {n}",
                "language": "en",
                "digest_languages": ",en,",
                "status": "confirmed",
                "paused": False,
                "suppressed": False,
                "source": "import",
                "created_at": NOW,
                "confirmed_at": NOW,
                "soft_bounce_count": 0,
            }
            for n in range(readers)
        ]
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Subscriber), rows[start : start + 10_000])
        issue = DigestIssue(
            language="en",
            subject="The Bench Review: the week of 26 November 2026",
            intro="What we published this week, and what readers read most.",
            items=[
                {"article_id": a.id, "section": "top" if i < 6 else "new"}
                for i, a in enumerate(articles)
            ],
            created_at=NOW,
        )
        session.add(issue)
        session.flush()
        approve_issue(session, issue, now=NOW)
        session.commit()
        issue_id = issue.id
    database.engine.dispose()
    return issue_id


# --- 1. Fill-in -------------------------------------------------------------------------------


def _measure_fill(sizes: DigestSizes, workdir: Path, result: BenchResult) -> None:
    from webapp.digests.content import compile_issue, issue_context
    from webapp.outbox.gateway import get_mailer

    with scratch_database("sqlite", workdir, label="digest-fill") as url:
        issue_id = _seed(url, 10, workdir)
        app = create_app(_config(url, None, workdir))
        mailer = get_mailer(app)
        with app.app_context(), get_database(app).session() as session:
            issue = session.get(DigestIssue, issue_id)
            assert issue is not None
            compiled = compile_issue(session, mailer, issue, secret=SECRET, now=NOW)
            started = time.perf_counter()
            for n in range(sizes.fill_messages):
                compiled.render_for(
                    subscriber_id=n,
                    email=f"reader{n}@example.net",
                    name=f"Reader {n}",
                    is_donor=n % 5 == 0,
                )
            fill_s = (time.perf_counter() - started) / sizes.fill_messages
            started = time.perf_counter()
            for n in range(sizes.fill_messages):
                compiled.message_for(
                    subscriber_id=n,
                    email=f"reader{n}@example.net",
                    name=f"Reader {n}",
                    is_donor=n % 5 == 0,
                    now=NOW,
                )
            message_s = (time.perf_counter() - started) / sizes.fill_messages
            # The naive way: the whole template and MJML per reader (each context differs by
            # the reader's values, so nothing is cached).
            context = issue_context(session, mailer, issue, mailer.base_url)
            started = time.perf_counter()
            for n in range(sizes.compile_messages):
                mailer.renderer.compile(
                    "digest",
                    "en",
                    {**context, "reader_marker": n},
                    recipient_fields=(
                        "greeting",
                        "support_html",
                        "support_text",
                        "unsubscribe_url",
                        "preferences_url",
                    ),
                ).fill(
                    {
                        "email": f"reader{n}@example.net",
                        "greeting": f"Hello, Reader {n}!",
                        "support_html": "",
                        "support_text": "",
                        "unsubscribe_url": "u",
                        "preferences_url": "p",
                    }
                )
            compile_s = (time.perf_counter() - started) / sizes.compile_messages
        get_database(app).engine.dispose()
    ratio = compile_s / fill_s
    result.add(
        "fill-in per recipient",
        fill_s * 1000,
        "ms",
        f"< {FILL_TARGET_MS} ms",
        fill_s * 1000 < FILL_TARGET_MS,
    )
    result.add("MJML compile per recipient", compile_s * 1000, "ms")
    result.add(
        "compile / fill-in", ratio, "x", f"> {FILL_TARGET_RATIO:.0f}x", ratio > FILL_TARGET_RATIO
    )
    result.add("fill-in + MIME bytes per recipient", message_s * 1000, "ms")
    result.details["fill"] = {
        "fill_ms": fill_s * 1000,
        "message_ms": message_s * 1000,
        "compile_ms": compile_s * 1000,
    }


# --- 2 and 3. The engine in a child process ---------------------------------------------------


def _child(mode: str, database_url: str, smtp_url: str, readers: int, workdir: str) -> None:
    """Runs in the child: send the whole issue (engine) or the bare loop; prints JSON."""
    if mode == "engine":
        from webapp.digests.services import EngineSettings, Worker
        from webapp.outbox.gateway import get_mailer

        app = create_app(_config(database_url, smtp_url, Path(workdir)))
        with app.app_context():
            worker = Worker(
                get_database(app),
                get_mailer(app),
                secret=SECRET,
                now=lambda: NOW,
                settings=EngineSettings(batch_size=500),
            )
            started = time.perf_counter()
            counts = worker.run()
            elapsed = time.perf_counter() - started
        sent = counts.sent
    else:
        # The same digest the engine sends, built once: the loop only moves bytes.
        from webapp.digests.content import compile_issue
        from webapp.outbox.gateway import get_mailer

        app = create_app(_config(database_url, None, Path(workdir)))
        with app.app_context(), get_database(app).session() as session:
            issue = session.scalars(select(DigestIssue)).first()
            assert issue is not None
            raw = compile_issue(
                session, get_mailer(app), issue, secret=SECRET, now=NOW
            ).message_for(
                subscriber_id=1,
                email="reader1@example.net",
                name="Reader 1",
                is_donor=False,
                now=NOW,
            )
        host, port = smtp_url.removeprefix("smtp://").split(":")
        started = time.perf_counter()
        with smtplib.SMTP(host, int(port)) as smtp:
            for n in range(readers):
                smtp.sendmail("digest@example.org", [f"reader{n}@example.net"], raw)
        elapsed = time.perf_counter() - started
        sent = readers
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"sent": sent, "elapsed_s": elapsed, "peak_mb": peak_kb / 1024}))


def _run_child(
    mode: str, database_url: str, smtp_url: str, readers: int, workdir: Path
) -> dict[str, Any]:
    code = (
        "import sys; from bench.digest import _child; "
        "_child(*sys.argv[1:4], int(sys.argv[4]), sys.argv[5])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, mode, database_url, smtp_url, str(readers), str(workdir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def _measure_engine(
    kind: str, readers: int, workdir: Path, server_url: str | None, with_baseline: bool
) -> dict[str, Any]:
    with scratch_database(kind, workdir, server_url, label="digest-send") as url:
        _seed(url, readers, workdir)
        with SmtpSink() as sink:
            engine = _run_child("engine", url, sink.url, readers, workdir)
            if engine["sent"] != readers or sink.received != readers:
                raise RuntimeError(f"engine sent {engine['sent']}, sink got {sink.received}")
            baseline = (
                _run_child("bare", url, sink.url, readers, workdir) if with_baseline else None
            )
    return {"engine": engine, "baseline": baseline}


def run(sizes: DigestSizes, database_url: str | None = None) -> BenchResult:
    """All three measurements; PostgreSQL throughput too when `database_url` is a server."""
    result = BenchResult(NAME, params=asdict(sizes))
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as folder:
        workdir = Path(folder)
        _measure_fill(sizes, workdir, result)
        kinds = [("sqlite", None)]
        if is_postgres_url(database_url):
            kinds.append(("postgresql", database_url))
        for kind, server in kinds:
            large = _measure_engine(kind, sizes.large_list, workdir, server, with_baseline=True)
            engine, bare = large["engine"], large["baseline"]
            engine_rate = engine["sent"] / engine["elapsed_s"]
            bare_rate = bare["sent"] / bare["elapsed_s"]
            ratio = engine_rate / bare_rate
            result.add(f"{kind}: engine, {sizes.large_list:,} readers", engine_rate, "msg/s")
            result.add(f"{kind}: bare smtplib loop", bare_rate, "msg/s")
            result.add(
                f"{kind}: engine / bare",
                ratio,
                "x",
                f">= {THROUGHPUT_TARGET}",
                ratio >= THROUGHPUT_TARGET,
            )
            result.details[f"{kind}_large"] = large
            if kind == "sqlite":
                small = _measure_engine(
                    kind, sizes.small_list, workdir, server, with_baseline=False
                )["engine"]
                growth = engine["peak_mb"] / small["peak_mb"] - 1
                result.add(f"peak RSS, {sizes.small_list:,} readers", small["peak_mb"], "MB")
                result.add(
                    f"peak RSS, {sizes.large_list:,} readers",
                    engine["peak_mb"],
                    "MB",
                    f"< {MEMORY_CEILING_MB:.0f} MB",
                    engine["peak_mb"] < MEMORY_CEILING_MB,
                )
                result.add(
                    "peak RSS growth",
                    growth * 100,
                    "%",
                    f"< {MEMORY_GROWTH_TARGET * 100:.0f}%",
                    growth < MEMORY_GROWTH_TARGET,
                )
                result.details["sqlite_small"] = small
    return result
