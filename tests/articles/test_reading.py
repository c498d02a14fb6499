"""The view beacon and the top reads: one view per visitor, article and day, bots ignored,
nothing personal kept; pins and exclusions; the JSON endpoint with CORS for the site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.articles.models import Article, ArticleViewDay, ArticleViewSeen
from webapp.cli import main
from webapp.core.clock import FrozenClock

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
SITE = "https://meridian.example.org"


def make_article(session: Session, slug: str, language: str = "en", **fields: object) -> Article:
    article = Article(
        url=f"{SITE}/{language}/{slug}",
        language=language,
        title=slug.title(),
        translation_key=slug,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        **fields,
    )
    session.add(article)
    session.flush()
    return article


def view(
    client: FlaskClient,
    url: str,
    *,
    ip: str = "203.0.113.7",
    agent: str = BROWSER,
    beacon: bool = False,
) -> int:
    environ = {"REMOTE_ADDR": ip}
    headers = {"User-Agent": agent}
    if beacon:
        return client.post(
            "/t/view", data=url, headers=headers, environ_base=environ, content_type="text/plain"
        ).status_code
    return client.get(
        "/t/view", query_string={"u": url}, headers=headers, environ_base=environ
    ).status_code


def views_of(session: Session, article: Article) -> int:
    session.expire_all()
    return int(
        session.scalar(
            select(func.coalesce(func.sum(ArticleViewDay.views), 0)).where(
                ArticleViewDay.article_id == article.id
            )
        )
        or 0
    )


def test_one_view_per_visitor_article_and_day(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    article = make_article(db_session, "sanctions-explained")
    db_session.commit()
    response = client.get(
        "/t/view",
        query_string={"u": article.url + "?utm_source=x#top"},
        headers={"User-Agent": BROWSER},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers.get("Set-Cookie") is None  # cookieless
    assert view(client, article.url) == 200  # same visitor, same day: not counted again
    assert view(client, article.url, beacon=True) == 204
    assert view(client, article.url, ip="198.51.100.9") == 200
    assert views_of(db_session, article) == 2
    clock.advance(days=1)
    view(client, article.url, beacon=True)
    assert views_of(db_session, article) == 3


def test_bots_unknown_pages_and_junk_are_not_counted(
    client: FlaskClient, db_session: Session
) -> None:
    article = make_article(db_session, "election-guide")
    db_session.commit()
    for agent in (
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "curl/8.5.0",
        "",
        "Mozilla/5.0 (compatible; HeadlessChrome)",
        "TelegramBot (like TwitterBot)",
    ):
        assert view(client, article.url, agent=agent) == 200
    for url in (f"{SITE}/en/unknown", "javascript:alert(1)", "", "x" * 3000, "\x00\xff"):
        assert view(client, url) == 200
        assert view(client, url, beacon=True) == 204
    # A body larger than a page address is refused unread.
    assert view(client, "x" * 5000, beacon=True) == 413
    assert views_of(db_session, article) == 0
    assert db_session.scalar(select(func.count()).select_from(ArticleViewSeen)) == 0


def test_no_personal_data_is_kept_and_raw_rows_are_purged(
    client: FlaskClient, db_session: Session, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    article = make_article(db_session, "privacy")
    db_session.commit()
    view(client, article.url, ip="203.0.113.77")
    db_session.expire_all()
    # The visitor's row and the address's first daily slot: keyed hashes only.
    for seen in db_session.scalars(select(ArticleViewSeen)):
        assert "203.0.113.77" not in seen.visitor_hash and BROWSER not in seen.visitor_hash
    clock.advance(days=3)
    result = runner.invoke(main, ["jobs", "run", "cleanup"])
    assert result.exit_code == 0 and "2 raw view rows" in result.output
    assert db_session.scalar(select(func.count()).select_from(ArticleViewSeen)) == 0
    assert views_of(db_session, article) == 1  # the daily count stays


def test_top_reads_rank_by_views_with_pins_and_exclusions(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    popular = make_article(db_session, "popular")
    second = make_article(db_session, "second")
    excluded = make_article(db_session, "excluded", excluded_from_top_reads=True)
    make_article(db_session, "pinned", pinned_in_top_reads=True)
    old = make_article(db_session, "old-news")
    russian = make_article(db_session, "popular", language="ru")
    db_session.commit()
    today = clock.now().date()
    db_session.add_all(
        [
            ArticleViewDay(article_id=popular.id, day=today, views=50),
            ArticleViewDay(article_id=second.id, day=today - timedelta(days=3), views=20),
            ArticleViewDay(article_id=excluded.id, day=today, views=500),
            ArticleViewDay(article_id=old.id, day=today - timedelta(days=8), views=900),
            ArticleViewDay(article_id=russian.id, day=today, views=5),
        ]
    )
    db_session.commit()
    data = client.get("/api/top-reads?lang=en").get_json()
    assert [a["title"] for a in data["articles"]] == ["Pinned", "Popular", "Second"]
    assert data["articles"][1]["views"] == 50 and data["articles"][0]["pinned"] is True
    ru = client.get("/api/top-reads?lang=ru").get_json()
    assert [a["url"] for a in ru["articles"]] == [f"{SITE}/ru/popular"]
    assert client.get("/api/top-reads?lang=de").status_code == 400


def test_top_reads_answer_cors_only_for_the_publication(client: FlaskClient) -> None:
    from webapp.db import get_session

    with client.application.app_context():
        from webapp.site.services import get_site_settings

        session = get_session()
        get_site_settings(session).site_url = SITE
        session.commit()
    allowed = client.get("/api/top-reads", headers={"Origin": SITE})
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    other = client.get("/api/top-reads", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
