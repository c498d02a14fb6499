"""Clicks without tracking people: the signed `/r/` redirect of digest links, counted per
(issue, link) over a real send, and never an open redirect."""

from __future__ import annotations

import os
import re
import threading
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.digests.factories import approved_issue, build, issue_in, week_of_articles
from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import force_login, make_staff
from webapp.core.clock import FrozenClock
from webapp.core.tokens import StableTokenSigner, TokenSigner
from webapp.db import get_database
from webapp.digests.building import get_digest_settings
from webapp.digests.clicks import PURPOSE, click_token
from webapp.digests.models import DigestSettings, LinkClick
from webapp.digests.services import Worker, clicks_per_link, engine_settings
from webapp.outbox.gateway import get_mailer

REDIRECT = re.compile(r'href="(http://localhost/r/[^"]+)"')


def send(app: Flask, clock: FrozenClock) -> None:
    Worker(
        get_database(app),
        get_mailer(app),
        secret=app.config["SECRET_KEY"],
        now=clock.now,
        settings=engine_settings(app.config),
    ).run()


def redirect_links(html: str) -> list[str]:
    """The redirect links of an email's HTML, in order, once each."""
    return list(dict.fromkeys(unescape(link) for link in REDIRECT.findall(html)))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def counts(db_session: Session) -> dict[str, int]:
    db_session.expire_all()
    return {row.url: row.clicks for row in db_session.scalars(select(LinkClick))}


def sent_issue(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink, readers: int = 2
) -> tuple[int, list[list[str]]]:
    """An issue sent through the SMTP sink; its id and each reader's redirect links."""
    issue_id, subscribers = approved_issue(app, db_session, clock, readers)
    send(app, clock)
    smtp_sink.wait_for(readers)
    links = [redirect_links(smtp_sink.to(s.email)[0].part("text/html")) for s in subscribers]
    return issue_id, links


def test_clicks_are_counted_per_link_of_a_sent_issue_and_nothing_about_the_reader(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, links = sent_issue(app, db_session, clock, smtp_sink)
    first, second = links
    # Three articles and the donate link; every reader gets the very same links.
    assert len(first) == 4 and first == second
    targets = []
    for link in first:
        response = client.get(path_of(link))
        assert response.status_code == 302
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
        targets.append(response.headers["Location"])
    assert all("utm_medium=email" in t and "utm_campaign=digest-" in t for t in targets)
    assert targets[0].startswith("https://news.example.org/en/story-")
    assert "utm_content=item-1" in targets[0]
    assert "/en/donate" in targets[-1] and "utm_content=support" in targets[-1]
    # The first article twice more, the donate link once more.
    client.get(path_of(first[0]))
    client.get(path_of(first[0]))
    client.get(path_of(first[-1]))
    assert counts(db_session) == {
        targets[0]: 3,
        targets[1]: 1,
        targets[2]: 1,
        targets[3]: 2,
    }
    per_link = clicks_per_link(db_session, issue_in(db_session, issue_id))
    assert [(c.url, c.clicks, c.content) for c in per_link] == [
        (targets[0], 3, "item-1"),
        (targets[3], 2, "support"),
        (targets[1], 1, "item-2"),
        (targets[2], 1, "item-3"),
    ]
    # The table has no column that could hold a reader, an address or a browser.
    assert set(LinkClick.__table__.columns.keys()) == {
        "id",
        "issue_id",
        "url_hash",
        "url",
        "clicks",
        "first_clicked_at",
        "last_clicked_at",
    }


def test_head_requests_are_answered_but_not_counted(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    _issue_id, links = sent_issue(app, db_session, clock, smtp_sink, readers=1)
    response = client.head(path_of(links[0][0]))
    assert response.status_code == 302 and "utm_medium=email" in response.headers["Location"]
    assert counts(db_session) == {}
    client.get(path_of(links[0][0]))
    assert list(counts(db_session).values()) == [1]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_tampered_token_is_a_404_page_and_counts_nothing(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    clock: FrozenClock,
    smtp_sink: SmtpSink,
    lang: str,
) -> None:
    _issue_id, links = sent_issue(app, db_session, clock, smtp_sink, readers=1)
    token = urlsplit(links[0][0]).path.rsplit("/", 1)[1]
    payload, signature = token.rsplit(".", 1)
    other_payload = urlsplit(links[0][1]).path.rsplit("/", 1)[1].rsplit(".", 1)[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (
        f"{payload}.{flipped}",  # signature changed
        f"{other_payload}.{signature}",  # another link's payload under this signature
        token[:-3],  # cut short
        "not-a-token",
    ):
        response = client.get(f"/r/{bad}", headers={"Accept-Language": lang})
        assert response.status_code == 404
        assert "Location" not in response.headers and "Set-Cookie" not in response.headers
        page = response.get_data(as_text=True)
        assert f'<html lang="{lang}">' in page
        assert ("Page not found" if lang == "en" else "Страница не найдена") in page
    assert counts(db_session) == {}


def test_a_token_made_for_anything_else_does_not_redirect(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, _links = sent_issue(app, db_session, clock, smtp_sink, readers=1)
    secret = app.config["SECRET_KEY"]
    evil = {"i": issue_id, "u": "https://evil.example/"}
    for token in (
        # Our secret, but another link's purpose (an unsubscribe or a timed token).
        TokenSigner(secret, PURPOSE).dumps(evil),
        StableTokenSigner(secret, "unsubscribe").dumps(evil),
        # The right purpose, another secret.
        StableTokenSigner("some-other-secret-that-is-long-enough", PURPOSE).dumps(evil),
        click_token("some-other-secret-that-is-long-enough", issue_id, "https://evil.example/"),
    ):
        response = client.get(f"/r/{token}")
        assert response.status_code == 404 and "Location" not in response.headers
    assert counts(db_session) == {}


def test_no_open_redirect(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    issue_id, links = sent_issue(app, db_session, clock, smtp_sink, readers=1)
    secret = app.config["SECRET_KEY"]
    for path in (
        "/r//evil.example",
        "/r///evil.example",
        "/en/r//evil.example",
        "/r/https://evil.example",
        "/r/https:%2F%2Fevil.example",
        "/r/%2F%2Fevil.example",
        "/r/%5C%5Cevil.example",
        "/r/?u=https://evil.example",
    ):
        response = client.get(path)
        if response.status_code == 308:
            # Werkzeug merges doubled slashes with a redirect to our own host.
            location = urlsplit(response.headers["Location"])
            assert location.netloc in ("", "localhost"), path
            response = client.get(location.path)
        assert response.status_code == 404, path
        assert "Location" not in response.headers
    # Even a token signed with our secret never leads off the web or to a bare host.
    for url in (
        "//evil.example",
        "javascript:alert(1)",
        "https:/\\evil.example",
        "/\\evil.example",
        "https://news.example.org/\r\nLocation: https://evil.example",
    ):
        token = click_token(secret, issue_id, url)
        assert client.get(f"/r/{token}").status_code == 404, url
    # Whatever is added to a real link, it leads where the issue linked.
    good = urlsplit(links[0][0])
    for query in ("next=https://evil.example", "u=https://evil.example&url=//evil.example"):
        response = client.get(f"{good.path}?{query}")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://news.example.org/en/story-")
    assert counts(db_session) != {}


def test_clicks_on_a_draft_redirect_but_are_not_counted(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    week_of_articles(db_session, clock.now())
    db_session.commit()
    issue = issue_in(db_session, build(app, db_session, clock)[0])
    url = "https://news.example.org/en/story?utm_source=newsletter"
    response = client.get(f"/r/{click_token(app.config['SECRET_KEY'], issue.id, url)}")
    assert response.status_code == 302 and response.headers["Location"] == url
    assert counts(db_session) == {}


def test_the_setting_off_sends_plain_links(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    get_digest_settings(db_session).plain_link_languages = ["en"]
    db_session.commit()
    _issue_id, subscribers = approved_issue(app, db_session, clock, 1)
    send(app, clock)
    html = smtp_sink.wait_for(1)[0].part("text/html")
    assert "/r/" not in html
    assert 'href="https://news.example.org/en/story-' in html
    assert "utm_medium=email" in html


def test_staff_turn_the_redirect_off_per_language(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    staff = make_staff(db_session, role="editor")
    db_session.commit()
    force_login(client, db_session, staff)
    page = client.get("/staff/digests/").get_data(as_text=True)
    assert page.count('name="click_redirect_languages"') == 2
    assert page.count("checked") >= 2  # on for every language at first
    values: dict[str, Any] = {
        "csrf_token": csrf_token(page),
        "weekday": "3",
        "send_time": "08:00",
        "timezone": "UTC",
        "auto_send": "wait",
        "new_articles_limit": "12",
        "click_redirect_languages": ["en"],
    }
    assert client.post("/staff/digests/settings", data=values).status_code == 302
    db_session.expire_all()
    settings = db_session.get(DigestSettings, 1)
    assert settings is not None and settings.plain_link_languages == ["ru"]
    bad = client.post(
        "/staff/digests/settings", data={**values, "click_redirect_languages": ["xx"]}
    )
    assert bad.status_code == 400


def test_list_unsubscribe_has_the_mailto_form_when_an_address_is_set(
    app_config: dict[str, Any], db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    from webapp import create_app

    app_config["LIST_UNSUBSCRIBE_MAILTO"] = "leave@test.example"
    app = create_app(app_config)
    with get_database(app).session() as session:
        approved_issue(app, session, clock, 1)
    send(app, clock)
    header = smtp_sink.wait_for(1)[0].message["List-Unsubscribe"]
    https, mailto = (part.strip() for part in header.split(","))
    assert re.fullmatch(r"<http://localhost/en/unsubscribe/[^>]+>", https)
    assert mailto == "<mailto:leave@test.example?subject=unsubscribe>"
    get_database(app).engine.dispose()


def test_list_unsubscribe_is_the_https_link_alone_without_an_address(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    approved_issue(app, db_session, clock, 1)
    send(app, clock)
    message = smtp_sink.wait_for(1)[0]
    header = message.message["List-Unsubscribe"]
    assert re.fullmatch(r"<http://localhost/en/unsubscribe/[^>]+>", header)
    # The body's unsubscribe link is the header's.
    assert header.strip("<>") in unescape(message.part("text/html"))


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="concurrent writers need PostgreSQL (SQLite has one writer at a time)",
)
def test_concurrent_clicks_are_all_counted_on_postgresql(
    app: Flask, db_session: Session, clock: FrozenClock, smtp_sink: SmtpSink
) -> None:
    _issue_id, links = sent_issue(app, db_session, clock, smtp_sink, readers=1)
    paths = [path_of(links[0][0]), path_of(links[0][1])]
    threads, per_thread = 8, 10
    start = threading.Barrier(threads)
    failures: list[int] = []

    def click(n: int) -> None:
        client = app.test_client()
        start.wait()
        for i in range(per_thread):
            status = client.get(paths[(n + i) % 2]).status_code
            if status != 302:
                failures.append(status)

    workers = [threading.Thread(target=click, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert sorted(counts(db_session).values()) == [40, 40]
