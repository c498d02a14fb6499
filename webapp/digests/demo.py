"""Demo data for `readership demo`: a fortnight of articles in English and Russian with their
views, last week's issue (sent) and this week's (a draft waiting for approval)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.articles.models import Article, ArticleViewDay
from webapp.digests.building import get_digest_settings, latest_slot
from webapp.digests.models import (
    DeliveryStatus,
    DigestDelivery,
    DigestIssue,
    IssueArticle,
    IssueStatus,
)
from webapp.digests.services import eligible_subscribers
from webapp.subscribers.models import Subscriber

_STORIES = [
    ("sanctions-explained", "Sanctions, explained", "Санкции: объяснение", "Economy", "Экономика"),
    (
        "river-towns",
        "Why the river towns are emptying",
        "Почему пустеют города на реке",
        "Society",
        "Общество",
    ),
    (
        "budget-2027",
        "What the 2027 budget really says",
        "Что на самом деле в бюджете-2027",
        "Economy",
        "Экономика",
    ),
    (
        "election-guide",
        "A guide to the regional elections",
        "Гид по региональным выборам",
        "Politics",
        "Политика",
    ),
    ("grain-routes", "The new grain routes", "Новые зерновые маршруты", "Economy", "Экономика"),
    (
        "schools-data",
        "What school data tells us",
        "Что говорят данные о школах",
        "Society",
        "Общество",
    ),
    (
        "energy-winter",
        "Energy prices before winter",
        "Цены на энергию перед зимой",
        "Economy",
        "Экономика",
    ),
    ("courts-year", "A year in the courts", "Год в судах", "Law", "Право"),
]


def load_demo_digest(session: Session, *, now: datetime) -> str:
    """Add the demo articles and issues once; returns what was added ("" when present)."""
    if session.scalar(select(func.count()).select_from(Article)):
        return ""
    _add_demo_articles(session, random.Random(7), now)
    session.flush()
    # This week's drafts stand for this week's slot, so the scheduler does not build again.
    slot = latest_slot(get_digest_settings(session), now)
    for language in ("en", "ru"):
        _add_demo_issues(session, language, slot, now)
    session.flush()
    return f"{len(_STORIES) * 2} articles with views and 4 digest issues"


def _add_demo_articles(session: Session, rng: random.Random, now: datetime) -> None:
    """Each story in both languages, with a week of views that favours the newest."""
    for number, (slug, title_en, title_ru, section_en, section_ru) in enumerate(_STORIES):
        published = now - timedelta(days=number * 2 + 1, hours=rng.randint(0, 8))
        for language, title, section in (
            ("en", title_en, section_en),
            ("ru", title_ru, section_ru),
        ):
            article = Article(
                url=f"https://example.org/{language}/{slug}",
                language=language,
                title=title,
                lede=_lede(language),
                author="Anna Petrova" if language == "en" else "Анна Петрова",
                section=section,
                published_at=published,
                translation_key=slug,
                created_at=published,
            )
            session.add(article)
            session.flush()
            for day in range(min(7, number * 2 + 1)):
                views = rng.randint(20, 400) // (number + 1)
                session.add(
                    ArticleViewDay(
                        article_id=article.id, day=(now - timedelta(days=day)).date(), views=views
                    )
                )


def _add_demo_issues(session: Session, language: str, slot: datetime, now: datetime) -> None:
    """Last week's issue, sent to every reader, and this week's draft."""
    articles = list(
        session.scalars(
            select(Article.id)
            .where(Article.language == language)
            .order_by(Article.published_at.desc())
        )
    )
    last_week = DigestIssue(
        language=language,
        status=IssueStatus.SENT,
        subject="Last week at a glance" if language == "en" else "Прошлая неделя коротко",
        intro="",
        items=[{"article_id": i, "section": "new"} for i in articles[4:]],
        created_at=now - timedelta(days=7),
        approved_at=now - timedelta(days=7),
        finished_at=now - timedelta(days=7, minutes=-20),
    )
    session.add(last_week)
    session.flush()
    for article_id in articles[4:]:
        # What a sent issue carried is not offered as new again.
        session.add(IssueArticle(issue_id=last_week.id, article_id=article_id, section="new"))
    readers = list(session.scalars(select(Subscriber.id).where(eligible_subscribers(language))))
    for subscriber_id in readers:
        session.add(
            DigestDelivery(
                issue_id=last_week.id,
                subscriber_id=subscriber_id,
                status=DeliveryStatus.SENT,
                attempts=1,
                next_attempt_at=last_week.created_at,
                sent_at=last_week.finished_at,
            )
        )
    last_week.recipients = len(readers)
    session.add(
        DigestIssue(
            language=language,
            status=IssueStatus.DRAFT,
            subject="This week: sanctions, river towns and the budget"
            if language == "en"
            else "На этой неделе: санкции, города на реке и бюджет",
            intro="Here is what we published this week, and what readers read most."
            if language == "en"
            else "Вот что мы опубликовали на этой неделе.",
            items=[{"article_id": i, "section": "top"} for i in articles[:2]]
            + [{"article_id": i, "section": "new"} for i in articles[2:4]],
            created_at=now,
            new_since=last_week.created_at,
            slot=slot,
        )
    )


def _lede(language: str) -> str:
    if language == "ru":
        return "Коротко о главном: что произошло, почему это важно и что будет дальше."
    return "The short version: what happened, why it matters and what comes next."
