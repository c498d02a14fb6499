"""The application shell: health check, languages, security headers, error pages."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz_answers_json_when_database_is_up(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_language_from_url_prefix_then_choice_then_accept_language(client: FlaskClient) -> None:
    assert 'lang="ru"' in client.get("/", headers={"Accept-Language": "ru,en;q=0.5"}).text
    english = client.get("/en/", headers={"Accept-Language": "ru"})
    assert 'lang="en"' in english.text
    # The prefixed visit is remembered as the reader's choice.
    assert 'lang="en"' in client.get("/", headers={"Accept-Language": "ru"}).text


def test_unknown_language_prefix_is_404(client: FlaskClient) -> None:
    assert client.get("/xx/").status_code == 404


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_404_page_in_russian(client: FlaskClient) -> None:
    response = client.get("/ru/no-such-page-here")
    assert response.status_code == 404


def test_theme_css_uses_settings(client: FlaskClient) -> None:
    response = client.get("/theme.css")
    assert response.mimetype == "text/css"
    assert "--color-primary:#" in response.text
