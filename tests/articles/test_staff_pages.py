"""Staff article and feed pages: who may open them, the list (filter, search, paging, views,
translations, top reads), adding and editing with the translation link, the quick pin and
exclude buttons and their effect on /api/top-reads, and the feeds (add, import now, pause,
remove) against the local feed server — bad input answered with messages, never a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.articles import test_feeds
from tests.helpers.html import csrf_token
from tests.staff.factories import force_login, make_staff
from webapp.articles import services as articles_services
from webapp.articles.models import Article, ArticleViewDay, Feed
from webapp.core.clock import FrozenClock
from webapp.staff.models import AuditLog

#: The local feed server of the import tests (a real HTTP server on 127.0.0.1).
feed_server = test_feeds.feed_server

LIST = "/staff/articles/"
NEW = "/staff/articles/new"
FEEDS = "/staff/articles/feeds"
SITE = "https://meridian.example.org"


def login(client: FlaskClient, db_session: Session, role: str = "editor") -> None:
    staff = make_staff(db_session, role=role)
    db_session.commit()
    force_login(client, db_session, staff)


def make_article(
    session: Session,
    slug: str,
    language: str = "en",
    *,
    published: datetime | None = None,
    views: int = 0,
    day: datetime | None = None,
    **fields: Any,
) -> Article:
    fields.setdefault("translation_key", slug)
    article = Article(
        url=f"{SITE}/{language}/{slug}",
        language=language,
        title=fields.pop("title", slug.replace("-", " ").title()),
        created_at=datetime(2026, 10, 1, tzinfo=UTC),
        published_at=published or datetime(2026, 10, 20, tzinfo=UTC),
        **fields,
    )
    session.add(article)
    session.flush()
    if views:
        when = day or datetime(2026, 11, 2, tzinfo=UTC)
        session.add(ArticleViewDay(article_id=article.id, day=when.date(), views=views))
        session.flush()
    return article


def audit(db_session: Session, action: str) -> list[AuditLog]:
    db_session.expire_all()
    return list(
        db_session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
    )


def fresh(db_session: Session, article: Article) -> Article:
    db_session.expire_all()
    found = db_session.get(Article, article.id)
    assert found is not None
    return found


def token(client: FlaskClient, path: str = LIST) -> str:
    return csrf_token(client.get(path).text)


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "url": f"{SITE}/en/by-hand",
        "title": "Written by hand",
        "lede": "A short standfirst.",
        "author": "Ann Lee",
        "section": "Culture",
        "image_url": "",
        "published_at": "2026-10-30T14:05",
        "language": "en",
        "translation_of": "",
    }
    data.update(overrides)
    return data


def article_data(article: Article, **overrides: str) -> dict[str, str]:
    """The edit form as it shows `article`, with `overrides`."""
    published = article.published_at
    data = {
        "url": article.url,
        "title": article.title,
        "lede": article.lede,
        "author": article.author,
        "section": article.section,
        "image_url": article.image_url,
        "published_at": published.strftime("%Y-%m-%dT%H:%M") if published else "",
        "language": article.language,
        "translation_of": "",
    }
    data.update(overrides)
    return data


def matches(client: FlaskClient, **filters: str) -> str:
    text = client.get(LIST, query_string=filters).text
    return text[text.index('id="result-count"') :].split("<", 1)[0].split(">", 1)[1]


def top_reads(client: FlaskClient, language: str = "en") -> list[tuple[str, bool]]:
    data = client.get("/api/top-reads", query_string={"lang": language}).get_json()
    return [(item["title"], item["pinned"]) for item in data["articles"]]


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"), [("editor", 200), ("admin", 200), ("viewer", 403), ("fundraiser", 403)]
)
def test_only_editors_and_admins_open_the_pages(
    client: FlaskClient, db_session: Session, role: str, status: int
) -> None:
    article = make_article(db_session, "sanctions-explained")
    # Unreachable on purpose: "Import now" must not leave the machine.
    feed = Feed(url="http://127.0.0.1:9/feed.xml", language="en", created_at=datetime.now(UTC))
    db_session.add(feed)
    login(client, db_session, role)
    for path in (LIST, NEW, FEEDS, f"/staff/articles/{article.id}"):
        assert client.get(path).status_code == status, path
    csrf = token(client, "/staff/")
    for path, data in (
        (f"/staff/articles/{article.id}/top-reads", {"action": "pin"}),
        (f"/staff/articles/{article.id}", form_data(url=article.url, title="Hijacked")),
        (NEW, form_data()),
        (FEEDS, {"url": f"{SITE}/ru/feed.xml", "language": "ru"}),
        (f"/staff/articles/feeds/{feed.id}/active", {}),
        (f"/staff/articles/feeds/{feed.id}/import", {}),
        (f"/staff/articles/feeds/{feed.id}/delete", {}),
    ):
        assert client.post(path, data={"csrf_token": csrf, **data}).status_code in (
            {200, 303} if status == 200 else {403}
        ), path
    if status == 403:
        db_session.expire_all()
        assert fresh(db_session, article).title == "Sanctions Explained"
        assert not fresh(db_session, article).pinned_in_top_reads
        assert db_session.scalar(select(func.count()).select_from(Feed)) == 1
        assert db_session.scalar(select(func.count()).select_from(Article)) == 1


def test_the_nav_shows_articles_to_editors_only(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session, "editor")
    assert f'href="{LIST}"' in client.get("/staff/").text
    login(client, db_session, "fundraiser")
    assert f'href="{LIST}"' not in client.get("/staff/").text


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in (LIST, NEW, FEEDS, "/staff/articles/1"):
        response = client.get(path)
        assert response.status_code in (302, 303) and "/staff/login" in response.headers["Location"]


def test_posts_need_a_csrf_token(client: FlaskClient, db_session: Session) -> None:
    article = make_article(db_session, "election-guide")
    login(client, db_session)
    assert (
        client.post(f"/staff/articles/{article.id}/top-reads", data={"action": "pin"}).status_code
        == 400
    )
    assert client.post(NEW, data=form_data()).status_code == 400
    assert not fresh(db_session, article).pinned_in_top_reads


# --- The list -----------------------------------------------------------------------------


def test_list_filters_searches_and_shows_views_badges_and_translations(
    client: FlaskClient, db_session: Session
) -> None:
    sanctions = make_article(
        db_session,
        "sanctions-explained",
        section="Economy",
        views=12,
        published=datetime(2026, 10, 25, tzinfo=UTC),
        pinned_in_top_reads=True,
    )
    # Views older than seven days do not count in the list's column.
    db_session.add(
        ArticleViewDay(article_id=sanctions.id, day=datetime(2026, 10, 1).date(), views=500)
    )
    russian = make_article(db_session, "sanctions-explained", "ru", title="Санкции: объяснение")
    election = make_article(
        db_session,
        "election-guide",
        excluded_from_top_reads=True,
        published=datetime(2026, 10, 28, tzinfo=UTC),
    )
    make_article(db_session, "100%-sure", title="100% sure")
    db_session.commit()
    login(client, db_session)

    page = client.get(LIST).text
    assert "4 articles match" in page
    row = page[page.index(f'id="article-{sanctions.id}"') :].split("</tr>", 1)[0]
    assert ">12<" in row and "Economy" in row and "2026-10-25 00:00" in row
    assert "badge--ok" in row and "pinned" in row and "Unpin" in row
    assert f"/staff/articles/{russian.id}" in row and "ru: Санкции: объяснение" in row
    ru_row = page[page.index(f'id="article-{russian.id}"') :].split("</tr>", 1)[0]
    assert f"/staff/articles/{sanctions.id}" in ru_row
    election_row = page[page.index(f'id="article-{election.id}"') :].split("</tr>", 1)[0]
    assert "excluded" in election_row and "Include" in election_row and "—" in election_row
    # Newest published first.
    assert page.index(f'id="article-{election.id}"') < page.index(f'id="article-{sanctions.id}"')

    assert matches(client, language="ru") == "1 article matches"
    assert matches(client, language="en") == "3 articles match"
    assert matches(client, q="SANCTIONS") == "1 article matches"
    assert matches(client, q="explained", language="ru") == "0 articles match"
    assert matches(client, q="100%") == "1 article matches"
    assert matches(client, q="%") == "1 article matches"  # LIKE wildcards are literal
    assert matches(client, q="nobody") == "0 articles match"
    assert "No articles match these filters." in client.get(LIST, query_string={"q": "zzz"}).text


def test_the_list_shows_the_current_top_reads_per_language(
    client: FlaskClient, db_session: Session
) -> None:
    make_article(db_session, "most-read", views=30)
    make_article(db_session, "less-read", views=3)
    make_article(db_session, "kept-out", views=90, excluded_from_top_reads=True)
    db_session.commit()
    login(client, db_session)
    page = client.get(LIST).text
    box = page[page.index('id="top-reads"') : page.index("</section>")]
    assert box.index("Most Read") < box.index("Less Read")
    assert "Kept Out" not in box and "30 views" in box
    assert "No top reads in this language yet" in box  # nothing in Russian


def test_the_list_is_newest_first_and_paged(client: FlaskClient, db_session: Session) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        make_article(db_session, f"story-{i:03d}", published=start + timedelta(hours=i))
        for i in range(articles_services.PAGE_SIZE + 3)
    ]
    db_session.commit()
    login(client, db_session)
    first = client.get(LIST, query_string={"language": "en"}).text
    assert made[-1].title in first and made[0].title not in first
    assert first.index(made[-1].title) < first.index(made[-2].title)
    assert "Page 1 of 2" in first and "page=2" in first and "language=en" in first
    second = client.get(LIST, query_string={"language": "en", "page": "2"}).text
    assert made[0].title in second and made[-1].title not in second
    assert "Page 2 of 2" in client.get(LIST, query_string={"page": "99"}).text
    assert "Page 1 of 2" in client.get(LIST, query_string={"page": "9" * 40}).text
    assert "Page 1 of 2" in client.get(LIST, query_string={"page": "-3"}).text


@pytest.mark.parametrize("query", [{"language": "xx"}, {"q": "x" * 201}, {"language": "e\x00n"}])
def test_bad_filters_answer_400(
    client: FlaskClient, db_session: Session, query: dict[str, str]
) -> None:
    login(client, db_session)
    response = client.get(LIST, query_string=query)
    assert response.status_code == 400 and "Please check the search and filters" in response.text


def test_a_nul_in_the_search_is_harmless(client: FlaskClient, db_session: Session) -> None:
    make_article(db_session, "election-guide")
    db_session.commit()
    login(client, db_session)
    assert matches(client, q="election\x00") == "1 article matches"
    assert client.get(LIST, query_string={"q": "\x00"}).status_code == 200


# --- Adding and editing -------------------------------------------------------------------


def test_adding_an_article(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    response = client.post(
        NEW,
        data={
            "csrf_token": token(client, NEW),
            **form_data(pinned_in_top_reads="y", image_url="https://cdn.example.org/a.jpg"),
        },
    )
    assert response.status_code == 303
    article = db_session.scalar(select(Article).where(Article.url == f"{SITE}/en/by-hand"))
    assert article is not None
    assert response.headers["Location"].endswith(f"/staff/articles/{article.id}")
    assert (article.title, article.lede, article.author, article.section) == (
        "Written by hand",
        "A short standfirst.",
        "Ann Lee",
        "Culture",
    )
    assert article.image_url == "https://cdn.example.org/a.jpg"
    assert article.published_at.replace(tzinfo=UTC) == datetime(2026, 10, 30, 14, 5, tzinfo=UTC)
    assert article.pinned_in_top_reads and not article.excluded_from_top_reads
    assert article.feed_id is None and article.translation_key == f"article-{article.id}"
    entry = audit(db_session, "article.create")[-1]
    assert entry.target_id == str(article.id) and entry.actor_email.endswith("@test.example")
    page = client.get(response.headers["Location"]).text
    assert "Article “Written by hand” added." in page
    assert 'value="2026-10-30T14:05"' in page


def test_editing_an_article(client: FlaskClient, db_session: Session) -> None:
    article = make_article(db_session, "election-guide", published=None)
    db_session.commit()
    login(client, db_session)
    path = f"/staff/articles/{article.id}"
    page = client.get(path).text
    assert 'value="Election Guide"' in page
    response = client.post(
        path,
        data={
            "csrf_token": csrf_token(page),
            **form_data(url=article.url, title="The election, a guide", published_at=""),
        },
    )
    assert response.status_code == 303
    saved = fresh(db_session, article)
    assert saved.title == "The election, a guide" and saved.published_at is None
    assert saved.updated_at is not None
    details = json.loads(audit(db_session, "article.update")[-1].details)
    assert "title" in details["changed"] and "url" not in details["changed"]
    # Saving again without a change writes nothing to the audit log.
    client.post(
        path,
        data={
            "csrf_token": csrf_token(page),
            **form_data(url=article.url, title="The election, a guide", published_at=""),
        },
    )
    assert len(audit(db_session, "article.update")) == 1
    assert client.get("/staff/articles/999999").status_code == 404
    assert client.get("/staff/articles/99999999999999999999999").status_code == 404
    assert (
        client.post(
            "/staff/articles/999999", data={"csrf_token": csrf_token(page), **form_data()}
        ).status_code
        == 404
    )


def test_an_address_in_use_is_a_clear_form_error(client: FlaskClient, db_session: Session) -> None:
    taken = make_article(db_session, "sanctions-explained")
    other = make_article(db_session, "election-guide")
    db_session.commit()
    login(client, db_session)
    csrf = token(client, NEW)
    response = client.post(NEW, data={"csrf_token": csrf, **form_data(url=taken.url)})
    assert response.status_code == 400
    assert "Another article has this address: “Sanctions Explained”." in response.text
    assert 'aria-invalid="true"' in response.text
    response = client.post(
        f"/staff/articles/{other.id}", data={"csrf_token": csrf, **form_data(url=taken.url)}
    )
    assert response.status_code == 400 and "Another article has this address" in response.text
    assert fresh(db_session, other).url == f"{SITE}/en/election-guide"
    assert db_session.scalar(select(func.count()).select_from(Article)) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "", "Enter the article"),
        ("url", "javascript:alert(1)", "Enter an address starting with http:// or https://."),
        ("url", "ftp://example.org/x", "Enter an address starting with http:// or https://."),
        ("url", "https://", "Enter an address starting with http:// or https://."),
        ("url", "https://example.org/a b", "cannot contain spaces"),
        ("url", "https://example.org:99999999999999999/", "This is not a valid address."),
        ("url", "https://example.org/" + "x" * 1000, "at most 1000 characters"),
        ("url", f"{SITE}/en/x?utm_source=mail", "without the part after ? or #"),
        ("title", "", "Enter a title."),
        ("title", "   \x00  ", "Enter a title."),
        ("title", "t" * 501, "at most 500 characters"),
        ("lede", "l" * 2001, "at most 2000 characters"),
        ("author", "a" * 301, "At most 300 characters."),
        ("image_url", "data:image/png;base64,AAAA", "http:// or https://"),
        ("published_at", "yesterday", "Not a valid datetime value."),
        ("published_at", "0001-01-01T00:00", "Enter a date between 1900 and 2200."),
        ("language", "xx", "Not a valid choice."),
        ("translation_of", "abc", "Choose an article from the list."),
        ("translation_of", "9" * 40, "Choose an article from the list."),
        ("translation_of", "999999", "does not exist"),
        ("excluded_from_top_reads", "y", "cannot be pinned to and kept out"),
    ],
)
def test_bad_input_is_a_form_error_not_a_crash(
    client: FlaskClient, db_session: Session, field: str, value: str, message: str
) -> None:
    login(client, db_session)
    data = form_data(**{field: value})
    if field == "excluded_from_top_reads":
        data["pinned_in_top_reads"] = "y"
    response = client.post(NEW, data={"csrf_token": token(client, NEW), **data})
    assert response.status_code == 400, response.text[:500]
    assert message in response.text.replace("&#39;", "'")
    assert "Nothing was saved." in response.text
    assert db_session.scalar(select(func.count()).select_from(Article)) == 0


def test_control_characters_are_cleaned(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    response = client.post(
        NEW,
        data={
            "csrf_token": token(client, NEW),
            **form_data(title="Two\x00words", lede="Line one\nline\x00 two", author="A\tB"),
        },
    )
    assert response.status_code == 303
    article = db_session.scalar(select(Article))
    assert article is not None
    assert (article.title, article.lede, article.author) == (
        "Two words",
        "Line one\nline two",
        "A B",
    )


# --- Translations -------------------------------------------------------------------------


def test_linking_and_unlinking_a_translation(client: FlaskClient, db_session: Session) -> None:
    english = make_article(db_session, "guide-to-the-vote")
    russian = make_article(db_session, "gid-po-vyboram", "ru", title="Гид по выборам")
    other_en = make_article(db_session, "something-else")
    db_session.commit()
    login(client, db_session)
    path = f"/staff/articles/{english.id}"
    page = client.get(path).text
    # The menu offers articles in the other language only.
    assert f'<option value="{russian.id}">ru · Гид по выборам (2026-10-20)</option>' in page
    assert f'value="{other_en.id}"' not in page

    response = client.post(
        path,
        data={
            "csrf_token": csrf_token(page),
            **article_data(english, translation_of=str(russian.id)),
        },
    )
    assert response.status_code == 303
    en, ru = fresh(db_session, english), fresh(db_session, russian)
    # A staff key, so the next feed import keeps the link.
    assert en.translation_key == ru.translation_key == f"staff-{russian.id}"
    details = json.loads(audit(db_session, "article.update")[-1].details)
    assert details["changed"] == ["translation"] and details["translation_of"] == russian.id
    # Both ways: each article's page and list row name the other.
    assert f'<option selected value="{russian.id}">' in client.get(path).text
    ru_page = client.get(f"/staff/articles/{russian.id}").text
    assert f'<option selected value="{english.id}">' in ru_page
    listing = client.get(LIST).text
    row = listing[listing.index(f'id="article-{russian.id}"') :].split("</tr>", 1)[0]
    assert f"/staff/articles/{english.id}" in row

    # None clears the link: the article gets a key of its own.
    client.post(
        path, data={"csrf_token": csrf_token(page), **article_data(english, translation_of="")}
    )
    en, ru = fresh(db_session, english), fresh(db_session, russian)
    assert en.translation_key == f"article-{english.id}"
    assert ru.translation_key == f"staff-{russian.id}"
    assert (
        f'<option selected value="{english.id}">'
        not in client.get(f"/staff/articles/{russian.id}").text
    )


def test_a_translation_without_a_key_gets_a_new_shared_one(
    client: FlaskClient, db_session: Session
) -> None:
    russian = make_article(db_session, "no-key", "ru", translation_key="")
    db_session.commit()
    login(client, db_session)
    response = client.post(
        NEW, data={"csrf_token": token(client, NEW), **form_data(translation_of=str(russian.id))}
    )
    assert response.status_code == 303
    english = db_session.scalar(select(Article).where(Article.language == "en"))
    assert english is not None
    assert (
        english.translation_key
        == fresh(db_session, russian).translation_key
        == (f"staff-{russian.id}")
    )


def test_translation_mistakes_are_explained(client: FlaskClient, db_session: Session) -> None:
    english = make_article(db_session, "sanctions-explained")
    russian = make_article(db_session, "sanctions-explained", "ru", title="Санкции")
    lonely = make_article(db_session, "lonely")
    second_en = make_article(db_session, "second")
    db_session.commit()
    login(client, db_session)
    csrf = token(client, NEW)
    # Russian is already the translation of another English article.
    response = client.post(
        f"/staff/articles/{second_en.id}",
        data={"csrf_token": csrf, **form_data(url=second_en.url, translation_of=str(russian.id))},
    )
    assert response.status_code == 400
    assert "“Санкции” is already linked to “Sanctions Explained” in this language." in (
        response.text
    )
    # Same language.
    response = client.post(
        f"/staff/articles/{lonely.id}",
        data={"csrf_token": csrf, **form_data(url=lonely.url, translation_of=str(english.id))},
    )
    assert response.status_code == 400 and "must be in another language" in response.text
    # Itself (even after switching its language).
    response = client.post(
        f"/staff/articles/{lonely.id}",
        data={
            "csrf_token": csrf,
            **form_data(url=lonely.url, language="ru", translation_of=str(lonely.id)),
        },
    )
    assert response.status_code == 400 and "cannot be its own translation" in response.text
    assert fresh(db_session, second_en).translation_key == "second"
    assert fresh(db_session, lonely).translation_key == "lonely"


# --- Pins and exclusions ------------------------------------------------------------------


def test_pin_and_exclude_change_the_public_top_reads(
    client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    popular = make_article(db_session, "popular", views=50)
    steady = make_article(db_session, "steady", views=10)
    unread = make_article(db_session, "unread")
    db_session.commit()
    login(client, db_session)
    assert top_reads(client) == [("Popular", False), ("Steady", False)]
    listing = client.get(LIST, query_string={"language": "en"})
    csrf = csrf_token(listing.text)

    def act(article: Article, action: str) -> None:
        response = client.post(
            f"/staff/articles/{article.id}/top-reads",
            data={"csrf_token": csrf, "action": action, "next": "/staff/articles/?language=en"},
        )
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/staff/articles/?language=en")

    act(unread, "pin")
    assert top_reads(client) == [("Unread", True), ("Popular", False), ("Steady", False)]
    act(popular, "exclude")
    assert top_reads(client) == [("Unread", True), ("Steady", False)]
    assert "“Popular” is kept out of the top reads." in client.get(LIST).text
    # Excluding a pinned article unpins it; including it brings it back by its views.
    act(unread, "exclude")
    assert fresh(db_session, unread).pinned_in_top_reads is False
    act(popular, "include")
    act(unread, "include")
    assert top_reads(client) == [("Popular", False), ("Steady", False)]
    act(steady, "pin")
    act(steady, "unpin")
    assert [e.action for e in audit(db_session, "article.pin")] == ["article.pin"] * 2
    assert len(audit(db_session, "article.exclude")) == 2
    assert len(audit(db_session, "article.include")) == 2
    assert len(audit(db_session, "article.unpin")) == 1
    # Twice is once.
    act(steady, "unpin")
    assert len(audit(db_session, "article.unpin")) == 1


def test_quick_actions_refuse_junk(client: FlaskClient, db_session: Session) -> None:
    article = make_article(db_session, "popular")
    db_session.commit()
    login(client, db_session)
    csrf = token(client)
    path = f"/staff/articles/{article.id}/top-reads"
    assert client.post(path, data={"csrf_token": csrf, "action": "delete"}).status_code == 400
    assert client.post(path, data={"csrf_token": csrf}).status_code == 400
    assert (
        client.post(
            "/staff/articles/999999/top-reads", data={"csrf_token": csrf, "action": "pin"}
        ).status_code
        == 404
    )
    assert client.get(path).status_code == 405
    response = client.post(
        path, data={"csrf_token": csrf, "action": "pin", "next": "//evil.example/x"}
    )
    assert response.headers["Location"].endswith("/staff/articles/")
    assert fresh(db_session, article).pinned_in_top_reads


# --- Feeds --------------------------------------------------------------------------------


def add_feed(client: FlaskClient, url: str, language: str = "en") -> Any:
    return client.post(
        FEEDS, data={"csrf_token": token(client, FEEDS), "url": url, "language": language}
    )


def feed_by_url(db_session: Session, url: str) -> Feed:
    db_session.expire_all()
    feed = db_session.scalar(select(Feed).where(Feed.url == url))
    assert feed is not None
    return feed


def test_adding_and_importing_a_feed(
    client: FlaskClient, db_session: Session, feed_server: str
) -> None:
    login(client, db_session)
    url = f"{feed_server}/en.rss"
    response = add_feed(client, url)
    assert response.status_code == 303
    feed = feed_by_url(db_session, url)
    assert feed.language == "en" and feed.is_active
    assert audit(db_session, "feed.add")[-1].target_id == str(feed.id)
    page = client.get(FEEDS).text
    assert "Feed added." in page and url in page and "never" in page

    response = client.post(
        f"/staff/articles/feeds/{feed.id}/import", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 303
    page = client.get(FEEDS).text
    assert f"{url} imported: 2 new, 0 updated, 0 unchanged, 2 skipped." in page
    assert "The Meridian (English)" in page and "feed-error" not in page
    feed = feed_by_url(db_session, url)
    assert feed.last_success_at is not None and feed.last_error == ""
    assert (
        db_session.scalar(
            select(func.count()).select_from(Article).where(Article.feed_id == feed.id)
        )
        == 2
    )
    details = json.loads(audit(db_session, "feed.import")[-1].details)
    assert (details["created"], details["error"]) == (2, "")
    # Again: nothing new, nothing duplicated.
    client.post(f"/staff/articles/feeds/{feed.id}/import", data={"csrf_token": csrf_token(page)})
    assert "0 new, 0 updated, 2 unchanged" in client.get(FEEDS).text
    assert db_session.scalar(select(func.count()).select_from(Article)) == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [("missing.rss", "404"), ("not-a-feed.html", "no entries"), (None, "could not be reached")],
)
def test_a_broken_feed_shows_its_error(
    client: FlaskClient, db_session: Session, feed_server: str, name: str | None, expected: str
) -> None:
    login(client, db_session)
    url = f"{feed_server}/{name}" if name else "http://127.0.0.1:9/feed.xml"
    add_feed(client, url)
    feed = feed_by_url(db_session, url)
    response = client.post(
        f"/staff/articles/feeds/{feed.id}/import", data={"csrf_token": token(client, FEEDS)}
    )
    assert response.status_code == 303
    page = client.get(FEEDS).text
    assert f"{url} could not be imported:" in page and expected in page
    row = page[page.index(f'id="feed-{feed.id}"') :].split("</tr>", 1)[0]
    assert 'class="field-error feed-error"' in row and expected in row
    assert "Last import failed" in row
    feed = feed_by_url(db_session, url)
    assert expected in feed.last_error and feed.last_success_at is None
    assert feed.last_fetched_at is not None
    assert expected in json.loads(audit(db_session, "feed.import")[-1].details)["error"]


def test_a_flawed_feed_imports_what_it_can_and_warns(
    client: FlaskClient, db_session: Session, feed_server: str
) -> None:
    login(client, db_session)
    url = f"{feed_server}/broken.rss"
    add_feed(client, url)
    feed = feed_by_url(db_session, url)
    client.post(
        f"/staff/articles/feeds/{feed.id}/import", data={"csrf_token": token(client, FEEDS)}
    )
    page = client.get(FEEDS).text
    assert "1 new" in page and "The feed has a problem: the feed is not well formed" in page


def test_feeds_are_grouped_by_language_and_can_be_paused(
    client: FlaskClient, db_session: Session, feed_server: str
) -> None:
    login(client, db_session)
    add_feed(client, f"{feed_server}/en.rss", "en")
    add_feed(client, f"{feed_server}/ru.atom", "ru")
    page = client.get(FEEDS).text
    assert page.index("Language: en") < page.index("/en.rss") < page.index("Language: ru")
    assert page.index("Language: ru") < page.index("/ru.atom")
    feed = feed_by_url(db_session, f"{feed_server}/ru.atom")
    path = f"/staff/articles/feeds/{feed.id}/active"
    assert client.post(path, data={"csrf_token": csrf_token(page)}).status_code == 303
    assert not feed_by_url(db_session, feed.url).is_active
    assert "Resume" in client.get(FEEDS).text
    client.post(path, data={"csrf_token": csrf_token(page)})
    assert feed_by_url(db_session, feed.url).is_active
    assert len(audit(db_session, "feed.deactivate")) == len(audit(db_session, "feed.activate")) == 1


def test_removing_a_feed_keeps_its_articles(
    client: FlaskClient, db_session: Session, feed_server: str
) -> None:
    login(client, db_session)
    url = f"{feed_server}/en.rss"
    add_feed(client, url)
    feed_id = feed_by_url(db_session, url).id
    csrf = token(client, FEEDS)
    client.post(f"/staff/articles/feeds/{feed_id}/import", data={"csrf_token": csrf})
    response = client.post(f"/staff/articles/feeds/{feed_id}/delete", data={"csrf_token": csrf})
    assert response.status_code == 303
    db_session.expire_all()
    assert db_session.get(Feed, feed_id) is None
    kept = list(db_session.scalars(select(Article)))
    assert len(kept) == 2 and all(a.feed_id is None for a in kept)
    assert json.loads(audit(db_session, "feed.delete")[-1].details)["url"] == url
    assert "removed; its articles stay" in client.get(FEEDS).text
    for action in ("delete", "import", "active"):
        assert (
            client.post(
                f"/staff/articles/feeds/{feed_id}/{action}", data={"csrf_token": csrf}
            ).status_code
            == 404
        )
    assert (
        client.post(f"/staff/articles/feeds/{10**25}/import", data={"csrf_token": csrf}).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "", "language": "en"}, "Enter the feed"),
        ({"url": "file:///etc/passwd", "language": "en"}, "http:// or https://"),
        ({"url": "https://example.org/" + "x" * 1000, "language": "en"}, "at most 1000"),
        ({"url": "https://example.org/feed\x00", "language": "en"}, "control characters"),
        ({"url": "https://example.org/feed", "language": "de"}, "Not a valid choice."),
        ({"url": f"{SITE}/en/feed.xml", "language": "en"}, "This feed is already in the list."),
    ],
)
def test_bad_feeds_are_refused_with_a_message(
    client: FlaskClient, db_session: Session, data: dict[str, str], message: str
) -> None:
    db_session.add(Feed(url=f"{SITE}/en/feed.xml", language="ru", created_at=datetime.now(UTC)))
    login(client, db_session)
    response = client.post(FEEDS, data={"csrf_token": token(client, FEEDS), **data})
    assert response.status_code == 400 and message in response.text
    assert "The feed was not added." in response.text
    assert db_session.scalar(select(func.count()).select_from(Feed)) == 1
    assert feed_by_url(db_session, f"{SITE}/en/feed.xml").language == "ru"  # untouched
