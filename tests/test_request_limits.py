"""Hostile clients: request bodies are limited before they are read (the whole app, the view
beacon much tighter), answered 413 in the reader's language; the view beacon is rate limited
per IP, and one address counts a few views of an article a day whatever its User-Agent, so
the top reads stay the readers' choice."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.server import bench_environment, gunicorn
from tests.articles.test_reading import BROWSER, make_article, view, views_of
from tests.helpers.live_server import LiveServer
from webapp import create_app
from webapp.articles.models import ArticleViewSeen
from webapp.articles.reading import get_top_reads
from webapp.articles.views import BEACON_MAX_BYTES
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.subscribers.models import Subscriber


class BodyMeter:
    """WSGI middleware that counts the body bytes the app reads (through whatever stream the
    server hands it: a plain socket file, or Werkzeug's and gunicorn's de-chunking)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read: dict[str, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input"] = _CountingInput(
            environ["wsgi.input"], self.read, environ.get("PATH_INFO", "")
        )
        return self.app(environ, start_response)


class _CountingInput:
    # No `readinto`: Werkzeug's LimitedStream then reads through `read`, which counts.
    def __init__(self, stream: Any, counts: dict[str, int], path: str) -> None:
        self._stream, self._counts, self._path = stream, counts, path
        counts.setdefault(path, 0)

    def _count(self, data: bytes) -> bytes:
        self._counts[self._path] += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._count(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._count(self._stream.readline(size))


def send_raw(url: str, head: str, body: Iterable[bytes], timeout: float = 20) -> str:
    """Send a hand-made HTTP/1.1 request and return the answer's status line. The body is
    sent from another thread while this one waits for the answer: a server that refuses a
    body answers (and closes) long before the client could finish sending it."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode())

        def send_body() -> None:
            with contextlib.suppress(OSError):  # refused: the server closed on us
                for part in body:
                    sock.sendall(part)

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # ends a sender still blocked in sendall
        sender.join(timeout)
        assert not sender.is_alive()
    return answer.split(b"\r\n", 1)[0].decode()


def chunked(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """A chunked body of `total` bytes, made as it is sent (never held whole)."""
    data = b"x" * piece
    for _ in range(total // piece):
        yield b"%x\r\n%s\r\n" % (piece, data)
    yield b"0\r\n\r\n"


def head(path: str, content_type: str, length: int | None) -> str:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\n\r\n"
    )


#: Each endpoint with the body limit it must keep (the setting's name, or bytes).
LIMITED = [
    ("/en/subscribe", "application/x-www-form-urlencoded", "FORM_MAX_CONTENT_LENGTH"),
    ("/ru/donate", "application/x-www-form-urlencoded", "FORM_MAX_CONTENT_LENGTH"),
    ("/en/embed/subscribe", "multipart/form-data; boundary=x", "FORM_MAX_CONTENT_LENGTH"),
    ("/t/view", "text/plain", BEACON_MAX_BYTES),
    ("/stripe/webhook", "application/json", "MAX_CONTENT_LENGTH"),
]


def test_huge_declared_and_chunked_bodies_are_refused_and_never_read_past_the_limit(
    live_server: LiveServer,
) -> None:
    app = live_server.app
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_sizes"  # configured: the body is read
    meter = BodyMeter(app.wsgi_app)
    app.wsgi_app = meter  # type: ignore[method-assign]
    for path, content_type, limit in LIMITED:
        max_bytes = int(app.config[limit]) if isinstance(limit, str) else limit
        started = time.monotonic()
        # 400 MiB promised, a few bytes sent: an answer at all proves nothing waited for it.
        declared = send_raw(
            live_server.url, head(path, content_type, 400 * 1024 * 1024), [b"email=a%40b.org"]
        )
        assert " 413 " in declared, (path, declared)
        assert meter.read[path] == 0, path  # refused on the header alone
        # 64 MiB without a length: read up to the limit (and a byte to see there is more).
        meter.read[path] = 0
        streamed = send_raw(
            live_server.url, head(path, content_type, None), chunked(64 * 1024 * 1024)
        )
        assert " 413 " in streamed, (path, streamed)
        assert meter.read[path] <= max_bytes + 1, (path, meter.read[path], max_bytes)
        assert time.monotonic() - started < 10, path
    # A body within the limits is read whole and served as usual.
    meter.read["/t/view"] = 0
    ok = send_raw(live_server.url, head("/t/view", "text/plain", 22), [b"https://x.example/a/b/"])
    assert " 204 " in ok and meter.read["/t/view"] == 22


def test_gunicorn_refuses_huge_bodies_without_its_memory_growing(
    database_url: str, tmp_path: Path
) -> None:
    """The production server: a 256 MiB chunked POST to each small endpoint, and the
    workers' memory stays where it was (the app would need at least the body to read it)."""
    env = bench_environment(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "gunicorn-sizes-test-secret-key-0123456789",
            "BASE_URL": "http://127.0.0.1",
            "RATELIMIT_ENABLED": "false",
            "MAILBOX_DIR": str(tmp_path / "mailbox"),
        }
    )
    with gunicorn(
        "webapp:create_app()", env=env, workdir=tmp_path, ready_path="/en/subscribe"
    ) as server:
        before = workers_rss(server.pid)
        for path, content_type, _ in LIMITED:
            status = send_raw(
                server.url, head(path, content_type, None), chunked(256 * 1024 * 1024)
            )
            assert " 413 " in status, (path, status)
            declared = send_raw(server.url, head(path, content_type, 2**40), [b"x"])
            assert " 413 " in declared, (path, declared)
        after = workers_rss(server.pid)
    assert after - before < 32 * 1024 * 1024, (before, after)


def workers_rss(master: int) -> int:
    """Resident memory of gunicorn's workers (the master's children), in bytes."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def test_too_large_bodies_get_413_in_the_reader_s_language(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    # Over the reader forms' limit, well under the app's.
    big = "x" * app.config["FORM_MAX_CONTENT_LENGTH"]
    assert len(big) < app.config["MAX_CONTENT_LENGTH"]
    for language, heading in (
        ("en", "What you sent is too large"),
        ("ru", "Отправленные данные слишком велики"),
    ):
        for page in ("subscribe", "donate", "embed/subscribe"):
            response = client.post(f"/{language}/{page}", data={"email": "a@b.org", "x": big})
            assert response.status_code == 413, page
            assert heading in response.get_data(as_text=True), page
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 0
    # The beacon allows a couple of KiB only, and answers without a page.
    beacon = client.post("/t/view", data="y" * (BEACON_MAX_BYTES + 1), content_type="text/plain")
    assert beacon.status_code == 413 and beacon.data == b""
    # Other routes keep the app-wide limit: the webhook reads a 100 KiB body (and finds no
    # signature in it), not more than MAX_CONTENT_LENGTH.
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_sizes"
    assert (
        client.post(
            "/stripe/webhook", data=b"{" + b" " * 100_000 + b"}", content_type="application/json"
        ).status_code
        == 400
    )
    huge = b" " * (app.config["MAX_CONTENT_LENGTH"] + 1)
    assert (
        client.post("/stripe/webhook", data=huge, content_type="application/json").status_code
        == 413
    )


def test_the_limits_are_settings(app_config: dict[str, Any], app: Flask) -> None:
    small = create_app({**app_config, "FORM_MAX_CONTENT_LENGTH": 100, "MAX_CONTENT_LENGTH": 300})
    try:
        client = small.test_client()
        assert client.post("/en/subscribe", data={"x": "y" * 120}).status_code == 413
        assert client.post("/en/subscribe", data={"x": "y" * 20}).status_code == 400  # no token
        assert client.post("/stripe/webhook", data=b"x" * 301).status_code == 413
    finally:
        get_database(small).engine.dispose()


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

    from tests.subscribers.factories import upload_import, wait_for_import
    from tests.subscribers.test_staff_views import signed_in

    signed_in(client, db_session, role="editor")
    # Long names: past the app-wide limit in a few thousand rows.
    rows = "".join(f"reader{n}@example.org,Reader {n} {'x' * 150}\n" for n in range(8_000))
    body = ("email,name\n" + rows).encode()
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]
    response = upload_import(client, body)
    assert response.status_code == 303
    data = wait_for_import(client, response.headers["Location"])
    assert data["status"] == "finished" and data["created"] == 8_000


def test_a_nul_in_a_path_is_a_404_not_a_database_error(client: FlaskClient) -> None:
    """PostgreSQL cannot store or compare NUL: found by the public-endpoint fuzz as a 500."""
    for path in ("/en/donate/%00", "/en/unsubscribe/a%00b", "/en/donate/manage/%00"):
        assert client.get(path).status_code == 404


def chunked_post(client: FlaskClient, path: str, body: bytes, content_type: str) -> Any:
    """A POST as a server hands on a chunked body: no length, the stream ends itself."""
    import io

    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_bodies_within_the_limits_are_read_whole(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    """The bounded read hands on what it read: a chunked signup is a signup, and a chunked
    staff upload larger than the app-wide limit (spooled to disk) is imported whole."""
    from urllib.parse import urlencode

    from tests.helpers.html import csrf_token
    from tests.subscribers.factories import start_previewed_import, wait_for_import
    from tests.subscribers.test_staff_views import signed_in

    token = csrf_token(client.get("/en/subscribe").text)
    form = urlencode(
        {"csrf_token": token, "email": "chunked@example.org", "name": "Chunk", "language": "en"}
    ).encode()
    signup = chunked_post(client, "/en/subscribe", form, "application/x-www-form-urlencoded")
    assert signup.status_code == 303, signup.status_code
    assert db_session.scalar(select(Subscriber.email)) == "chunked@example.org"

    signed_in(client, db_session, role="editor")
    token = csrf_token(client.get("/staff/subscribers/import").text)
    rows = "".join(f"spooled{n}@example.org,Reader {n} {'x' * 150}\n" for n in range(8_000))
    csv = ("email,name\n" + rows).encode()
    assert len(csv) > app.config["MAX_CONTENT_LENGTH"]
    boundary = "chunkedboundary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="format"\r\n\r\nauto\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload = chunked_post(
        client, "/staff/subscribers/import", multipart, f"multipart/form-data; boundary={boundary}"
    )
    assert upload.status_code == 303, upload.status_code
    start_previewed_import(client, upload.headers["Location"])
    data = wait_for_import(client, upload.headers["Location"])
    assert data["status"] == "finished" and data["created"] == 8_000
