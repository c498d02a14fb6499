"""Staff pages: list (search, filters, keyset paging), one subscriber, status changes,
export and import with progress, and who may do what."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers.html import csrf_token
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import (
    event_kinds,
    get_subscriber,
    make_subscriber,
    start_previewed_import,
    upload_import,
    wait_for_import,
)
from webapp.staff.models import AuditLog
from webapp.subscribers.models import Subscriber

DATA = Path(__file__).parent / "data"


def signed_in(client: FlaskClient, session: Session, role: str = "editor") -> None:
    user = make_staff(session, role=role)
    session.commit()
    force_login(client, session, user)


def audit(session: Session) -> list[tuple[str, dict[str, object]]]:
    session.expire_all()
    rows = session.scalars(select(AuditLog).order_by(AuditLog.id))
    return [(row.action, json.loads(row.details)) for row in rows]


def emails_on(page: str) -> list[str]:
    import re

    return re.findall(r">([a-z0-9.]+@example\.(?:com|org))</a>", page)


@pytest.fixture
def people(db_session: Session) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    make_subscriber(
        db_session, email="anna@example.com", name="Анна Петрова", language="ru", created_at=start
    )
    make_subscriber(
        db_session,
        email="annabel@example.org",
        name="Annabel Lee",
        status="pending",
        source="embed",
        created_at=start + timedelta(days=1),
    )
    make_subscriber(
        db_session,
        email="bob@example.com",
        name="Bob Annan",
        status="unsubscribed",
        source="import",
        created_at=start + timedelta(days=2),
    )
    make_subscriber(
        db_session,
        email="zed@example.com",
        name="Zed",
        status="bounced",
        language="ru",
        created_at=start + timedelta(days=3),
    )
    db_session.commit()


def test_list_search_and_filters(client: FlaskClient, db_session: Session, people: None) -> None:
    signed_in(client, db_session, role="fundraiser")  # may view, not manage
    page = client.get("/staff/subscribers/")
    assert page.status_code == 200
    assert emails_on(page.text) == [
        "zed@example.com",
        "bob@example.com",
        "annabel@example.org",
        "anna@example.com",
    ]
    assert "4 subscribers match" in page.text
    assert "Import CSV" not in page.text and "Export CSV" in page.text

    def found(**args: str) -> list[str]:
        response = client.get("/staff/subscribers/", query_string=args)
        assert response.status_code == 200
        return emails_on(response.text)

    assert found(q="ANNA") == ["annabel@example.org", "anna@example.com"]  # address prefix
    assert found(q="анна") == ["anna@example.com"]  # name prefix, any case, Cyrillic
    assert found(q="lee") == []  # prefix, not substring
    assert found(q="annabel@") == ["annabel@example.org"]
    assert found(status="pending") == ["annabel@example.org"]
    assert found(language="ru") == ["zed@example.com", "anna@example.com"]
    assert found(source="import") == ["bob@example.com"]
    assert found(q="a", language="ru") == ["anna@example.com"]
    assert client.get("/staff/subscribers/?status=nonsense").status_code == 400
    assert client.get("/staff/subscribers/?q=%25").status_code == 200  # LIKE characters are text
    assert found(q="%") == []


def test_keyset_paging_forward_and_back(client: FlaskClient, db_session: Session) -> None:
    for i in range(120):
        make_subscriber(db_session, email=f"p{i:03d}@example.com")
    db_session.commit()
    signed_in(client, db_session)
    first = client.get("/staff/subscribers/").text
    assert len(emails_on(first)) == 50 and emails_on(first)[0] == "p119@example.com"
    assert "Newer" not in first
    import re

    older = re.search(r'href="([^"]*before=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).text
    assert emails_on(second)[0] == "p069@example.com"
    third = client.get(
        re.search(r'href="([^"]*before=\d+[^"]*)"', second).group(1).replace("&amp;", "&")
    ).text
    assert emails_on(third) == [f"p{i:03d}@example.com" for i in range(19, -1, -1)]
    assert "Older" not in third
    back = client.get(
        re.search(r'href="([^"]*after=\d+[^"]*)"', third).group(1).replace("&amp;", "&")
    ).text
    assert emails_on(back) == emails_on(second)
    # Bad paging values are ignored, not errors.
    assert client.get("/staff/subscribers/?before=abc&after=-1").status_code == 200


def test_one_subscribers_page_shows_history_consent_and_emails(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    from tests.subscribers.factories import sign_up

    sign_up(client, "hist@example.com", name="Hist Orian")
    subscriber = get_subscriber(db_session, "hist@example.com")
    signed_in(client, db_session, role="viewer")
    assert client.get(f"/staff/subscribers/{subscriber.id}").status_code == 403
    signed_in(client, db_session, role="fundraiser")
    page = client.get(f"/staff/subscribers/{subscriber.id}")
    assert page.status_code == 200
    assert "hist@example.com" in page.text and "Hist Orian" in page.text
    assert "confirmation_sent" in page.text and "signup_page" in page.text
    assert "confirm_subscription" in page.text  # the email from the outbox
    assert "Change status" not in page.text  # fundraisers only look
    assert client.get("/staff/subscribers/999999").status_code == 404


def test_status_changes_are_audited(client: FlaskClient, db_session: Session) -> None:
    subscriber = make_subscriber(db_session, status="pending")
    db_session.commit()
    signed_in(client, db_session, role="editor")
    path = f"/staff/subscribers/{subscriber.id}"
    token = csrf_token(client.get(path).text)
    for action in ("confirm", "suppress", "unsuppress", "unsubscribe"):
        response = client.post(f"{path}/status", data={"csrf_token": token, "action": action})
        assert response.status_code == 303, action
    changed = get_subscriber(db_session, subscriber.email)
    assert changed.status == "unsubscribed" and not changed.suppressed
    actions = [action for action, _ in audit(db_session) if action.startswith("subscribers.")]
    assert actions == [
        "subscribers.confirm",
        "subscribers.suppress",
        "subscribers.unsuppress",
        "subscribers.unsubscribe",
    ]
    assert event_kinds(db_session, subscriber.id) == [
        "status_changed",
        "suppressed",
        "unsuppressed",
        "unsubscribed",
    ]
    assert (
        client.post(f"{path}/status", data={"csrf_token": token, "action": "delete"}).status_code
        == 400
    )
    assert client.post(f"{path}/status", data={"action": "confirm"}).status_code == 400
    signed_in(client, db_session, role="fundraiser")
    token = csrf_token(client.get(path).text)
    assert (
        client.post(f"{path}/status", data={"csrf_token": token, "action": "confirm"}).status_code
        == 403
    )


def test_export_download_is_audited_and_permissioned(
    client: FlaskClient, db_session: Session, people: None
) -> None:
    signed_in(client, db_session, role="fundraiser")
    token = csrf_token(client.get("/staff/subscribers/").text)
    response = client.post("/staff/subscribers/export", data={"csrf_token": token, "status": ""})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data.decode("utf-8-sig")
    assert body.splitlines()[0].startswith("email,name,language")
    assert "Анна Петрова" in body and len(body.splitlines()) == 5
    only = client.post(
        "/staff/subscribers/export", data={"csrf_token": token, "status": "pending"}
    ).data.decode("utf-8-sig")
    assert len(only.splitlines()) == 2
    exports = [d for a, d in audit(db_session) if a == "subscribers.export"]
    assert exports == [{"rows": 4, "status": "all"}, {"rows": 1, "status": "pending"}]
    assert client.post("/staff/subscribers/export", data={"status": ""}).status_code == 400


def test_upload_runs_in_the_background_with_progress_and_report(
    client: FlaskClient, db_session: Session
) -> None:
    signed_in(client, db_session, role="editor")
    assert client.get("/staff/subscribers/import").status_code == 200
    response = upload_import(client, (DATA / "rejects.csv").read_bytes())
    assert response.status_code == 303
    job_path = response.headers["Location"]
    progress_page = client.get(job_path)
    assert progress_page.status_code == 200
    assert "import_progress.js" in progress_page.text and "<script>" not in progress_page.text
    data = wait_for_import(client, job_path)
    assert data["status"] == "finished" and data["created"] == 3 and data["rejected"] == 6
    assert data["percent"] == 100 and data["encoding"] == "utf-8" and data["dates_clamped"] == 1
    report_page = client.get(job_path).text
    assert "unknown_language" in report_page and "rejected.csv" in report_page
    report = client.get(f"{job_path}/rejected.csv")
    assert report.mimetype == "text/csv"
    assert report.text.splitlines()[1] == "3,,missing_email"
    assert [a for a, _ in audit(db_session)][-1] == "subscribers.import"
    assert get_subscriber(db_session, "good@example.com").status == "confirmed"


def test_staff_see_the_encoding_and_first_rows_before_anything_is_written(
    client: FlaskClient, db_session: Session
) -> None:
    signed_in(client, db_session)
    body = "email,name\nolga@example.com,Ольга Орлова\nivan@example.com,Иван\n"
    response = upload_import(client, body.encode("cp1251"), filename="excel.csv", start=False)
    job_path = response.headers["Location"]
    page = client.get(job_path).text
    assert "<strong>cp1251</strong> (detected)" in page and "Ольга Орлова" in page
    assert 'value="start"' in page and "readership" in page
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 0
    russian = client.get(job_path, headers={"Accept-Language": "ru"}).text
    assert "Проверьте файл перед импортом" in russian and "(определена)" in russian
    assert "Посмотреть в этой кодировке" in russian
    # Staff choose another encoding and preview again: the page reads the file in it.
    start_previewed_import(client, job_path, encoding="koi8-r", action="preview")
    page = client.get(job_path).text
    assert "<strong>koi8-r</strong> (chosen)" in page and "Ольга Орлова" not in page
    start_previewed_import(client, job_path, encoding="cp1251")
    data = wait_for_import(client, job_path)
    assert data["status"] == "finished" and data["encoding"] == "cp1251" and data["created"] == 2
    assert get_subscriber(db_session, "olga@example.com").name == "Ольга Орлова"
    # A second "Start" starts nothing.
    assert (
        client.post(
            f"{job_path}/start",
            data={"csrf_token": csrf_token(page), "encoding": "auto", "action": "start"},
        ).status_code
        == 303
    )
    assert db_session.scalar(select(func.count()).select_from(Subscriber)) == 2


def test_a_file_that_cannot_be_imported_fails_at_upload_with_a_message(
    client: FlaskClient, db_session: Session
) -> None:
    signed_in(client, db_session)
    response = upload_import(client, b"name,phone\nAnn,123\n", start=False)
    data = wait_for_import(client, response.headers["Location"])
    assert data["status"] == "failed" and "No email column" in str(data["error"])
    page = client.get(response.headers["Location"]).text
    assert "No email column" in page and 'value="start"' not in page


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    return {**app_config, "SUBSCRIBER_IMPORT_MAX_BYTES": 2048}


def test_too_large_upload_is_413_and_nothing_starts(
    client: FlaskClient, db_session: Session
) -> None:
    from webapp.subscribers.models import ImportJob

    signed_in(client, db_session)
    big = b"email\n" + b"".join(f"u{i}@example.com\n".encode() for i in range(500))
    response = upload_import(client, big, filename="big.csv")
    assert response.status_code == 413
    assert "too large" in response.text
    assert db_session.scalars(select(ImportJob)).first() is None


def test_missing_file_and_bad_format_are_422(client: FlaskClient, db_session: Session) -> None:
    signed_in(client, db_session)
    page = client.get("/staff/subscribers/import")
    token = csrf_token(page.text)
    assert (
        client.post(
            "/staff/subscribers/import",
            data={"csrf_token": token, "format": "auto", "language": "en"},
            content_type="multipart/form-data",
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/staff/subscribers/import",
            data={
                "csrf_token": token,
                "format": "excel",
                "language": "en",
                "file": (io.BytesIO(b"email\n"), "x.csv"),
            },
            content_type="multipart/form-data",
        ).status_code
        == 422
    )


def test_fundraisers_cannot_import(client: FlaskClient, db_session: Session) -> None:
    signed_in(client, db_session, role="fundraiser")
    assert client.get("/staff/subscribers/import").status_code == 403
    assert client.get("/staff/subscribers/import/1/progress.json").status_code == 403
