"""Hostile clients: request bodies are limited before they are read (the whole app, the view
beacon much tighter), answered 413 in the reader's language; the view beacon is rate limited
per IP, and one address counts a few views of an article a day whatever its User-Agent, so
the top reads stay the readers' choice."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.articles.test_reading import BROWSER, make_article, view, views_of
from tests.helpers.live_server import LiveServer
from webapp.articles.models import ArticleViewSeen
from webapp.articles.reading import get_top_reads
from webapp.articles.views import BEACON_MAX_BYTES
from webapp.core.clock import FrozenClock
from webapp.subscribers.models import Subscriber


def raw_request(server: LiveServer, head: str, body_parts: list[bytes], timeout: float = 10) -> str:
    """Send a hand-made HTTP/1.1 request; returns the status line (the server may answer
    before the body is sent, and then close)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        try:
            for part in body_parts:
                sock.sendall(part)
        except OSError:
            pass  # the server answered and closed without reading the rest: what we want
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_a_huge_declared_body_is_refused_without_being_read(live_server: LiveServer) -> None:
    started = time.monotonic()
    head = (
        "POST /en/subscribe HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {400 * 1024 * 1024}\r\n\r\n"
    )
    # Only a few bytes follow the 400 MiB the header promises: an answer at all proves the
    # server did not wait to read the body.
    assert " 413 " in raw_request(live_server, head, [b"email=a%40b.org"])
    assert time.monotonic() - started < 5


def test_a_chunked_beacon_is_not_read_past_its_limit(live_server: LiveServer) -> None:
    head = (
        "POST /t/view HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 1024
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(64)] + [b"0\r\n\r\n"]
    # A server that hands chunked bodies on (gunicorn) gets 413 at the limit; Werkzeug's own
    # server gives the app no body at all. Either way nothing is read past the limit.
    assert raw_request(live_server, head, chunks).split(" ")[1] in {"413", "204"}


def test_too_large_bodies_get_413_in_the_reader_s_language(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    for language, words in (("en", "too large"), ("ru", "слишком")):
        response = client.post(f"/{language}/subscribe", data={"email": "a@b.org", "x": big})
        assert response.status_code == 413
        assert words in response.get_data(as_text=True).lower()
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 0
    # The beacon allows a couple of KiB only, and answers without a page.
    beacon = client.post("/t/view", data="y" * (BEACON_MAX_BYTES + 1), content_type="text/plain")
    assert beacon.status_code == 413 and beacon.data == b""


def test_one_client_with_a_new_user_agent_each_time_cannot_make_a_top_read(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    obscure = make_article(db_session, "obscure")
    liked = make_article(db_session, "liked")
    db_session.commit()
    answers = [
        view(client, obscure.url, ip="198.51.100.9", agent=f"{BROWSER} b/{n}", beacon=n % 2 == 0)
        for n in range(400)
    ]
    # The per-IP rate limit stops the flood; what got through counts three views at most.
    assert answers.count(429) >= 250 and set(answers) <= {200, 204, 429}
    assert views_of(db_session, obscure) == 3
    for n in range(5):
        assert view(client, liked.url, ip=f"192.0.2.{n + 1}") == 200
    reads = get_top_reads(db_session, "en", now=clock.now(), days=7, limit=2)
    assert reads[0].article.id == liked.id


def test_a_household_behind_one_address_still_counts_a_few(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    article = make_article(db_session, "shared")
    db_session.commit()
    for agent in ("Firefox/133", "Safari/18", "Chrome/131", "Edge/131", "Opera/115"):
        view(client, article.url, ip="203.0.113.50", agent=f"Mozilla/5.0 {agent}")
    assert views_of(db_session, article) == app.config["VIEWS_PER_ADDRESS"] == 3
    # Only keyed hashes are kept: no address, no User-Agent.
    stored = " ".join(db_session.scalars(select(ArticleViewSeen.visitor_hash)))
    assert "203.0.113.50" not in stored and "Firefox" not in stored


def test_the_staff_csv_upload_keeps_its_own_larger_limit(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    import io

    from tests.helpers.html import csrf_token
    from tests.subscribers.test_staff_views import signed_in, wait_until_done

    signed_in(client, db_session, role="editor")
    page = client.get("/staff/subscribers/import")
    rows = "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(60_000))
    body = ("email,name\n" + rows).encode()
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/staff/subscribers/import",
        data={"csrf_token": csrf_token(page.text), "format": "auto", "language": "en",
              "file": (io.BytesIO(body), "list.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    data = wait_until_done(client, response.headers["Location"])
    assert data["status"] == "finished" and data["created"] == 60_000


def test_a_nul_in_a_path_is_a_404_not_a_database_error(client: FlaskClient) -> None:
    """PostgreSQL cannot store or compare NUL: found by the public-endpoint fuzz as a 500."""
    for path in ("/en/donate/%00", "/en/unsubscribe/a%00b", "/en/donate/manage/%00"):
        assert client.get(path).status_code == 404
