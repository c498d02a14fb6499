"""Every article reaches one issue: new articles are those no approved issue carried,
published *or imported* since the previous issue that went out, so an article that reaches
the feed late (dated before the previous issue) is in the next one, and none goes out as new
twice. Through the real feed importer, and as generated histories checked against a model."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from email.utils import format_datetime

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tests.digests.factories import build, issue_in, make_article
from webapp.articles.feeds import import_feed
from webapp.articles.models import Article
from webapp.core.clock import FrozenClock
from webapp.digests.building import IMPORT_OVERLAP, get_digest_settings
from webapp.digests.models import DigestIssue, IssueArticle, IssueStatus
from webapp.digests.services import IssueStateError, approve_issue, preview
from webapp.outbox.gateway import get_mailer

LANGUAGES = ("en", "ru")


def rss(*items: tuple[str, datetime]) -> bytes:
    """An RSS 2.0 document with one item per (slug, publication date)."""
    entries = "".join(
        f"<item><title>{slug}</title><link>https://news.example.org/en/{slug}</link>"
        f"<description>About {slug}.</description><pubDate>{format_datetime(date)}</pubDate>"
        "</item>"
        for slug, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>News</title><link>https://news.example.org/</link>{entries}</channel></rss>"
    ).encode()


def new_in(session: Session, issue_id: int) -> list[str]:
    """Titles of an issue's "new" articles."""
    issue = issue_in(session, issue_id)
    ids = [int(item["article_id"]) for item in issue.items if item["section"] == "new"]
    rows = session.execute(select(Article.id, Article.title).where(Article.id.in_(ids)))
    titles = {article_id: title for article_id, title in rows}
    return sorted(titles[i] for i in ids)


def english(app: Flask, session: Session, clock: FrozenClock) -> int:
    """Build now (by hand) and return the English issue's id."""
    built = [issue_in(session, i) for i in build(app, session, clock)]
    return next(issue.id for issue in built if issue.language == "en")


def approve(session: Session, issue_id: int, now: datetime) -> None:
    approve_issue(session, issue_in(session, issue_id), now=now)
    session.commit()


def test_an_article_that_reaches_the_feed_late_goes_in_the_next_issue_once(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    url = "https://news.example.org/feed.rss"
    first_week = clock.now()
    feed = rss(
        ("monday", first_week - timedelta(days=3)), ("tuesday", first_week - timedelta(days=2))
    )
    import_feed(
        db_session, url, "en", fetcher=lambda _url: feed, languages=LANGUAGES, now=first_week
    )
    db_session.commit()
    first = english(app, db_session, clock)
    assert new_in(db_session, first) == ["monday", "tuesday"]
    approve(db_session, first, clock.now())

    # An hour later the feed (a lagging CMS) shows an article dated the day before issue 1.
    clock.advance(hours=1)
    late = rss(
        *[
            ("monday", first_week - timedelta(days=3)),
            ("tuesday", first_week - timedelta(days=2)),
            ("late", first_week - timedelta(days=1)),
        ]
    )
    import_feed(
        db_session, url, "en", fetcher=lambda _url: late, languages=LANGUAGES, now=clock.now()
    )
    db_session.commit()
    clock.advance(days=7)
    second = english(app, db_session, clock)
    assert new_in(db_session, second) == ["late"]
    approve(db_session, second, clock.now())
    # A third week with nothing new: nothing is offered again.
    clock.advance(days=7)
    third = english(app, db_session, clock)
    assert issue_in(db_session, third).status == IssueStatus.SKIPPED
    carried = list(db_session.scalars(select(IssueArticle.article_id)))
    assert len(carried) == len(set(carried)) == 3


def test_a_draft_nobody_approved_does_not_swallow_its_articles(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    make_article(db_session, published_at=clock.now() - timedelta(days=2), title="old news")
    db_session.commit()
    ignored = english(app, db_session, clock)
    assert new_in(db_session, ignored) == ["old news"]
    clock.advance(days=7)
    make_article(db_session, published_at=clock.now() - timedelta(days=1), title="fresh")
    db_session.commit()
    assert new_in(db_session, english(app, db_session, clock)) == ["fresh", "old news"]


def test_two_drafts_of_one_week_never_send_an_article_twice(
    app: Flask, db_session: Session, clock: FrozenClock
) -> None:
    make_article(db_session, published_at=clock.now() - timedelta(days=1), title="story")
    db_session.commit()
    first = english(app, db_session, clock)
    second = english(app, db_session, clock)  # "build again" before either was approved
    approve(db_session, second, clock.now())
    # The other draft's only article went out already: it cannot be approved empty.
    try:
        approve(db_session, first, clock.now())
    except IssueStateError as exc:
        assert "another issue" in str(exc)
        db_session.rollback()
    else:
        raise AssertionError("approved an issue whose articles all went out already")
    assert issue_in(db_session, first).status == IssueStatus.DRAFT
    clock.advance(hours=1)
    make_article(db_session, published_at=clock.now(), title="another")
    db_session.commit()
    third = english(app, db_session, clock)
    assert new_in(db_session, third) == ["another"]


# --- Generated histories ---------------------------------------------------------------------

#: One step: ("article", days before now it is dated (negative: in the future)), ("wait",
#: hours), ("build", approve it?).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("article"), st.integers(min_value=-3, max_value=30)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=200)),
        st.tuples(st.just("build"), st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=300 if os.environ.get("READERSHIP_SOAK") else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=steps)
def test_generated_histories_carry_every_article_once(
    app: Flask, db_session: Session, clock: FrozenClock, history: list[tuple[str, object]]
) -> None:
    db_session.execute(delete(DigestIssue))
    db_session.execute(delete(Article))
    get_digest_settings(db_session).new_articles_limit = 100  # the model has no limit
    db_session.commit()
    db_session.expunge_all()
    start = clock.now()
    now = start
    # The reference model: articles waiting for an issue (id -> publication date; each is
    # imported when it is added, whatever its date), and how many approved issues brought
    # each one as new.
    waiting: dict[int, datetime] = {}
    imported: dict[int, datetime] = {}
    brought: dict[int, int] = {}
    built_before = False
    for kind, value in [*history, ("build", True), ("wait", 1), ("build", True)]:
        if kind == "article":
            published = now - timedelta(days=int(value))  # type: ignore[call-overload]
            article = make_article(db_session, published_at=published)
            article.created_at = now  # imported now, whatever its date
            db_session.commit()
            waiting[article.id] = published
            imported[article.id] = now
        elif kind == "wait":
            now += timedelta(hours=int(value))  # type: ignore[call-overload]
            clock.current = now
        else:
            if not built_before:
                # The first build ever: older articles are the back catalogue, not news.
                window = now - timedelta(days=7)
                for article_id in [
                    a
                    for a, published in waiting.items()
                    if published <= window and imported[a] <= window - IMPORT_OVERLAP
                ]:
                    del waiting[article_id]
                built_before = True
            issue_id = english(app, db_session, clock)
            issue = issue_in(db_session, issue_id)
            offered = [int(i["article_id"]) for i in issue.items if i["section"] == "new"]
            due = {a for a, published in waiting.items() if published <= now}
            assert sorted(offered) == sorted(due)
            if value and offered:
                approve(db_session, issue_id, now)
                for article_id in offered:
                    brought[article_id] = brought.get(article_id, 0) + 1
                    del waiting[article_id]
            clock.current = now
    clock.current = start
    # Nothing dated up to now is left behind; nothing went out as new twice.
    assert not {a for a, published in waiting.items() if published <= now}
    assert set(brought.values()) <= {1}


def test_an_undated_article_is_carried_and_shown_like_any_other(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    # A CMS that writes MySQL's zero date (issue 13): the article is kept undated and still
    # goes into the next issue once, its email and its public archive page.
    now = clock.now()
    feed = rss(("dated", now - timedelta(days=1))).replace(
        b"</channel>",
        b"<item><title>undated</title><link>https://news.example.org/en/undated</link>"
        b"<pubDate>0000-00-00T00:00:00Z</pubDate></item></channel>",
    )
    result = import_feed(
        db_session,
        "https://news.example.org/feed.rss",
        "en",
        fetcher=lambda _url: feed,
        languages=LANGUAGES,
        now=now,
    )
    db_session.commit()
    assert result.created == 2
    undated = db_session.scalars(select(Article).where(Article.title == "undated")).one()
    assert undated.published_at is None
    first = english(app, db_session, clock)
    assert new_in(db_session, first) == ["dated", "undated"]
    email = preview(
        db_session,
        get_mailer(app),
        issue_in(db_session, first),
        secret=app.config["SECRET_KEY"],
        now=clock.now(),
        as_donor=False,
    )
    assert "undated" in email.text and "dated" in email.text
    approve(db_session, first, clock.now())
    page = client.get(f"/en/digest/{first}")
    assert page.status_code == 200
    assert "https://news.example.org/en/undated" in page.get_data(as_text=True)
    clock.advance(days=7)
    assert issue_in(db_session, english(app, db_session, clock)).status == IssueStatus.SKIPPED
