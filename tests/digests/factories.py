"""Articles, views and issues for digest tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.articles.models import Article, ArticleViewDay
from webapp.core.clock import FrozenClock
from webapp.digests.models import DeliveryStatus, DigestDelivery, DigestIssue
from webapp.digests.services import run_build
from webapp.outbox.gateway import get_mailer
from webapp.subscribers.models import Subscriber

_counter = itertools.count(1)


def make_article(
    session: Session,
    *,
    language: str = "en",
    published_at: datetime,
    views: int = 0,
    title: str | None = None,
    **fields: Any,
) -> Article:
    """An article (flushed), with `views` counted on its publication day."""
    number = next(_counter)
    article = Article(
        url=f"https://news.example.org/{language}/story-{number}",
        language=language,
        title=title or f"Story {number} ({language})",
        lede=fields.pop("lede", f"The lede of story {number}."),
        author=fields.pop("author", "A. Writer"),
        section=fields.pop("section", "Analysis"),
        published_at=published_at,
        created_at=published_at,
        **fields,
    )
    session.add(article)
    session.flush()
    if views:
        session.add(ArticleViewDay(article_id=article.id, day=published_at.date(), views=views))
        session.flush()
    return article


def week_of_articles(session: Session, now: datetime, language: str = "en") -> list[Article]:
    """Three articles from this week; the first is the most read."""
    return [
        make_article(session, language=language, published_at=now - timedelta(days=d), views=v)
        for d, v in ((1, 300), (2, 120), (3, 0))
    ]


def build(app: Flask, session: Session, clock: FrozenClock, *, force: bool = True) -> list[int]:
    """Run the build now; returns the ids of the issues built."""
    results = run_build(session, app, get_mailer(app), now=clock.now(), force=force)
    return [r.issue_id for r in results if r.issue_id is not None]


def issue_in(session: Session, issue_id: int) -> DigestIssue:
    session.expire_all()
    issue = session.get(DigestIssue, issue_id)
    assert issue is not None
    return issue


def deliveries(session: Session, issue_id: int) -> dict[int, DigestDelivery]:
    """Delivery rows of an issue by subscriber id."""
    session.expire_all()
    rows = session.scalars(select(DigestDelivery).where(DigestDelivery.issue_id == issue_id))
    return {row.subscriber_id: row for row in rows}


def statuses(session: Session, issue_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in deliveries(session, issue_id).values():
        counts[str(DeliveryStatus(row.status))] = counts.get(str(DeliveryStatus(row.status)), 0) + 1
    return counts


def approved_issue(
    app: Flask, session: Session, clock: FrozenClock, readers: int
) -> tuple[int, list[Subscriber]]:
    """A week of articles, `readers` confirmed English readers and this week's English issue,
    approved; returns the issue id and the readers."""
    from tests.subscribers.factories import make_subscriber
    from webapp.digests.services import approve_issue

    week_of_articles(session, clock.now())
    subscribers = [make_subscriber(session) for _ in range(readers)]
    session.commit()
    issue = issue_in(session, build(app, session, clock)[0])
    approve_issue(session, issue, now=clock.now())
    session.commit()
    return issue.id, subscribers
