"""The publication settings page: validation, contrast warnings, logo upload and removal."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import force_login, make_staff
from webapp.site import editing
from webapp.site.models import SiteSettings
from webapp.site.services import get_site_settings
from webapp.staff.models import AuditLog

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'

VALID = {
    "publication_name": "The Test Review",
    "tagline_en": "Sharp analysis",
    "tagline_ru": "Острая аналитика",
    "site_url": "https://review.example/",
    "extra_embed_origins": "https://blog.example.org\nhttps://shop.example.org:8443",
    "primary_color": "#1D4ED8",
    "accent_color": "#b91c1c",
    "postal_address": "1 Main St, Riga",
}


@pytest.fixture
def admin(client: FlaskClient, db_session: Session) -> None:
    user = make_staff(db_session, role="admin", email="boss@example.org")
    db_session.commit()
    force_login(client, db_session, user)


def post_settings(client: FlaskClient, **changes: str):  # noqa: ANN201
    data = {**VALID, **changes, "csrf_token": csrf_token(client.get("/staff/settings/").text)}
    return client.post("/staff/settings/", data=data)


def current(db_session: Session) -> SiteSettings:
    db_session.expire_all()
    settings = get_site_settings(db_session)
    db_session.commit()  # the first read creates the row; do not hold SQLite's write lock
    return settings


def test_settings_are_saved_and_audited(
    admin: None, client: FlaskClient, db_session: Session
) -> None:
    response = post_settings(client)
    assert response.status_code == 302
    settings = current(db_session)
    assert settings.publication_name == "The Test Review"
    assert settings.tagline("ru") == "Острая аналитика"
    assert settings.site_url == "https://review.example"
    assert settings.primary_color == "#1d4ed8"
    assert settings.embed_origins() == {
        "https://review.example",
        "https://blog.example.org",
        "https://shop.example.org:8443",
    }
    entry = db_session.scalars(select(AuditLog).where(AuditLog.action == "settings.updated")).one()
    assert "publication_name" in entry.details and entry.actor_email == "boss@example.org"
    # The public pages use the new name.
    assert "The Test Review" in client.get("/").text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_color", "blue"),
        ("accent_color", "#12345"),
        ("primary_color", "#gggggg"),
        ("site_url", "javascript:alert(1)"),
        ("site_url", "review.example"),
        ("extra_embed_origins", "https://ok.example https://bad.example/path"),
        ("publication_name", "   "),
        ("publication_name", "x" * 201),
        ("tagline_en", "nul \x00 inside"),
    ],
)
def test_bad_values_are_422_and_nothing_is_saved(
    admin: None, client: FlaskClient, db_session: Session, field: str, value: str
) -> None:
    before = current(db_session).publication_name
    response = post_settings(client, **{field: value})
    assert response.status_code == 422
    assert 'class="field-error"' in response.text
    assert current(db_session).publication_name == before
    assert not db_session.scalars(select(AuditLog).where(AuditLog.action.like("settings.%"))).all()


def test_low_contrast_colour_is_saved_with_a_warning(
    admin: None, client: FlaskClient, db_session: Session
) -> None:
    response = post_settings(client, accent_color="#ffff00")
    assert response.status_code == 302
    page = client.get("/staff/settings/").text
    assert "contrast of 1.07:1" in page
    assert current(db_session).accent_color == "#ffff00"


def test_contrast_ratio_matches_wcag() -> None:
    assert editing.contrast_ratio("#000000") == pytest.approx(21.0)
    assert editing.contrast_ratio("#ffffff") == pytest.approx(1.0)
    assert editing.contrast_ratio("#767676") == pytest.approx(4.54, abs=0.01)


def upload(client: FlaskClient, data: bytes, filename: str = "logo.png"):  # noqa: ANN201
    return client.post(
        "/staff/settings/logo",
        data={
            "csrf_token": csrf_token(client.get("/staff/settings/").text),
            "logo": (io.BytesIO(data), filename),
        },
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (SVG, "image/svg+xml")],
)
def test_logo_upload_by_magic_bytes(
    admin: None, client: FlaskClient, db_session: Session, data: bytes, mime: str
) -> None:
    # The file name lies on purpose: only the content decides.
    response = upload(client, data, filename="whatever.bin")
    assert response.status_code == 302
    logo = client.get("/logo")
    assert logo.status_code == 200 and logo.mimetype == mime and logo.data == data
    assert current(db_session).logo_mime == mime


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + b"\x00" * 10,
        b"just some text pretending to be a png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    ],
)
def test_bad_logo_is_422(
    admin: None, client: FlaskClient, db_session: Session, data: bytes
) -> None:
    response = upload(client, data)
    assert response.status_code == 422
    assert current(db_session).logo_data is None


def test_missing_logo_file_is_422(admin: None, client: FlaskClient) -> None:
    response = client.post(
        "/staff/settings/logo", data={"csrf_token": csrf_token(client.get("/staff/settings/").text)}
    )
    assert response.status_code == 422


def test_too_large_logo_is_413(admin: None, client: FlaskClient, db_session: Session) -> None:
    response = upload(client, PNG + b"\x00" * (512 * 1024))
    assert response.status_code == 413
    assert current(db_session).logo_data is None


def test_remove_logo(admin: None, client: FlaskClient, db_session: Session) -> None:
    upload(client, PNG)
    response = client.post(
        "/staff/settings/logo/remove",
        data={"csrf_token": csrf_token(client.get("/staff/settings/").text)},
    )
    assert response.status_code == 302
    assert client.get("/logo").status_code == 404
    actions = list(db_session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["staff.login", "settings.logo_uploaded", "settings.logo_removed"]
