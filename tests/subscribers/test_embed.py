"""The embeddable form: cross-site POST guarded by the Origin allow-list, no CSRF token."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.helpers.smtp import SmtpSink
from tests.subscribers.factories import get_subscriber, one_email_to
from webapp.site.services import get_site_settings

ALLOWED = "https://example.org"  # the default site_url in SiteSettings


def embed_post(client: FlaskClient, headers: dict[str, str], **data: str):  # noqa: ANN201
    form = {"email": "embed@example.com", "language": "ru", **data}
    return client.post(
        "/embed/subscribe", data=form, headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.50"}
    )


def test_allowed_origin_subscribes_without_csrf_token(
    client: FlaskClient, db_session: Session, smtp_sink: SmtpSink
) -> None:
    response = embed_post(
        client, {"Origin": ALLOWED, "Referer": f"{ALLOWED}/ru/articles/budget?utm_source=x"}
    )
    assert response.status_code == 200
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    subscriber = get_subscriber(db_session, "embed@example.com")
    assert subscriber is not None and subscriber.status == "pending"
    assert subscriber.source == "embed" and subscriber.language == "ru"
    consent = subscriber.consents[0]
    assert consent.page_url == f"{ALLOWED}/ru/articles/budget"  # no query string kept
    assert consent.wording_version.startswith("embed-")
    one_email_to(smtp_sink, "embed@example.com")


def test_other_origins_are_refused_with_403(client: FlaskClient, db_session: Session) -> None:
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "https://example.org.evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
        {},
    ):
        response = embed_post(client, headers)
        assert response.status_code == 403, headers
        assert "cannot be used here" in response.text
    assert get_subscriber(db_session, "embed@example.com") is None


def test_referer_is_used_when_there_is_no_origin(client: FlaskClient, db_session: Session) -> None:
    response = embed_post(client, {"Referer": f"{ALLOWED}/en/article"})
    assert response.status_code == 200
    assert get_subscriber(db_session, "embed@example.com") is not None


def test_extra_origins_from_settings(client: FlaskClient, db_session: Session) -> None:
    get_site_settings(db_session).extra_embed_origins = "https://ru.example.net"
    db_session.commit()
    assert embed_post(client, {"Origin": "https://ru.example.net"}).status_code == 200


def test_safe_next_redirects_back_to_the_publication(
    client: FlaskClient, db_session: Session
) -> None:
    response = embed_post(client, {"Origin": ALLOWED}, next=f"{ALLOWED}/thanks")
    assert response.status_code == 303
    assert response.headers["Location"] == f"{ALLOWED}/thanks"
    # A next on another site is ignored: the small answer page is shown instead.
    other = embed_post(
        client, {"Origin": ALLOWED}, email="two@example.com", next="https://evil.example/phish"
    )
    assert other.status_code == 200
    assert "evil.example" not in other.headers.get("Location", "")


def test_honeypot_and_bad_input(client: FlaskClient, db_session: Session) -> None:
    bot = embed_post(client, {"Origin": ALLOWED}, website="spam")
    assert bot.status_code == 200
    assert get_subscriber(db_session, "embed@example.com") is None
    bad = embed_post(client, {"Origin": ALLOWED}, email="nope")
    assert bad.status_code == 422
    assert "valid email address" in bad.text


def test_iframe_form_may_be_framed_by_the_publication(client: FlaskClient) -> None:
    page = client.get("/ru/embed/subscribe-form")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {ALLOWED}" in csp or ALLOWED in csp.split("frame-ancestors")[1]
    assert "X-Frame-Options" not in page.headers
    assert 'action="/ru/embed/subscribe"' in page.text
    assert "csrf_token" not in page.text
    # The iframe posts with the app's own origin, which is allowed too.
    response = client.post(
        "/ru/embed/subscribe",
        data={"email": "frame@example.com", "language": "ru"},
        headers={"Origin": "http://localhost"},
    )
    assert response.status_code == 200
