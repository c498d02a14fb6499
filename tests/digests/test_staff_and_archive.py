"""Staff digest pages, the public archive and the `readership digests` commands."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.digests.factories import build, issue_in, week_of_articles
from tests.helpers.html import csrf_token
from tests.helpers.smtp import SmtpSink
from tests.staff.factories import force_login, make_staff
from tests.subscribers.factories import make_subscriber
from webapp.core.clock import FrozenClock
from webapp.digests.cli import digests_group
from webapp.digests.models import DigestIssue, DigestSettings, IssueStatus
from webapp.staff.models import AuditLog


def login(client: FlaskClient, db_session: Session, role: str = "editor") -> str:
    staff = make_staff(db_session, role=role)
    db_session.commit()
    force_login(client, db_session, staff)
    return staff.email


def draft(app: Flask, db_session: Session, clock: FrozenClock) -> int:
    week_of_articles(db_session, clock.now())
    make_subscriber(db_session, name="Ann")
    db_session.commit()
    return build(app, db_session, clock)[0]


def actions(db_session: Session) -> list[str]:
    rows = db_session.scalars(select(AuditLog.action).order_by(AuditLog.id))
    return [action for action in rows if action.startswith("digest.")]


def test_list_shows_issues_and_the_reason_for_a_skipped_one(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    draft(app, db_session, clock)
    login(client, db_session)
    page = client.get("/staff/digests/").get_data(as_text=True)
    assert "draft" in page and "skipped" in page
    assert "nothing was published since the previous issue" in page


def test_edit_reorder_drop_and_approve(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    issue_id = draft(app, db_session, clock)
    login(client, db_session)
    page = client.get(f"/staff/digests/{issue_id}").get_data(as_text=True)
    token = csrf_token(page)
    response = client.post(
        f"/staff/digests/{issue_id}",
        data={"csrf_token": token, "subject": "  Our   week ", "intro": "Hi.\r\n\r\nMore."},
    )
    assert response.status_code == 302
    issue = issue_in(db_session, issue_id)
    assert issue.subject == "Our week" and issue.intro == "Hi.\n\nMore."
    first, second = (item["article_id"] for item in issue.items[:2])
    client.post(f"/staff/digests/{issue_id}/items/{second}/up", data={"csrf_token": token})
    assert [i["article_id"] for i in issue_in(db_session, issue_id).items[:2]] == [second, first]
    client.post(f"/staff/digests/{issue_id}/items/{first}/drop", data={"csrf_token": token})
    assert first not in [i["article_id"] for i in issue_in(db_session, issue_id).items]
    # An empty subject is refused with a message, nothing changes.
    bad = client.post(f"/staff/digests/{issue_id}", data={"csrf_token": token, "subject": ""})
    assert bad.status_code == 400 and issue_in(db_session, issue_id).subject == "Our week"
    client.post(f"/staff/digests/{issue_id}/approve", data={"csrf_token": token})
    approved = issue_in(db_session, issue_id)
    assert approved.status == IssueStatus.SENDING and approved.recipients == 1
    # Approving twice is refused politely.
    again = client.post(
        f"/staff/digests/{issue_id}/approve", data={"csrf_token": token}, follow_redirects=True
    )
    assert again.status_code == 200 and "not possible" in again.get_data(as_text=True)
    progress = client.get(f"/staff/digests/{issue_id}/progress.json").get_json()
    assert progress["left"] == 1 and progress["sent"] == 0
    client.post(f"/staff/digests/{issue_id}/pause", data={"csrf_token": token})
    assert issue_in(db_session, issue_id).status == IssueStatus.PAUSED
    client.post(f"/staff/digests/{issue_id}/resume", data={"csrf_token": token})
    assert issue_in(db_session, issue_id).status == IssueStatus.SENDING
    assert actions(db_session) == [
        "digest.update",
        "digest.item_up",
        "digest.item_drop",
        "digest.approve",
        "digest.pause",
        "digest.resume",
    ]


def test_preview_as_donor_and_reader_with_its_own_policy(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    issue_id = draft(app, db_session, clock)
    login(client, db_session)
    reader = client.get(f"/staff/digests/{issue_id}/preview?donor=0")
    donor = client.get(f"/staff/digests/{issue_id}/preview?donor=1")
    assert "script-src" not in reader.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in reader.headers["Content-Security-Policy"]
    assert "Support us" in reader.get_data(as_text=True)
    assert "Thank you for supporting" in donor.get_data(as_text=True)
    assert "<script" not in reader.get_data(as_text=True)


def test_test_send_reaches_the_staff_address(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    clock: FrozenClock,
    smtp_sink: SmtpSink,
) -> None:
    issue_id = draft(app, db_session, clock)
    email = login(client, db_session)
    token = csrf_token(client.get(f"/staff/digests/{issue_id}").get_data(as_text=True))
    response = client.post(
        f"/staff/digests/{issue_id}/test",
        data={"csrf_token": token, "to": email, "as_donor": "y"},
    )
    assert response.status_code == 302
    message = smtp_sink.wait_for(1)[0]
    assert message.subject.startswith("[TEST] ")
    assert "Thank you for supporting" in message.part("text/plain")
    bad = client.post(f"/staff/digests/{issue_id}/test", data={"csrf_token": token, "to": "x"})
    assert bad.status_code == 400


def test_settings_are_validated_and_saved(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    login(client, db_session)
    token = csrf_token(client.get("/staff/digests/").get_data(as_text=True))
    values = {
        "csrf_token": token,
        "weekday": "4",
        "send_time": "07:30",
        "timezone": "Europe/Moscow",
        "auto_send": "auto",
        "new_articles_limit": "8",
    }
    bad = client.post("/staff/digests/settings", data={**values, "timezone": "Mars/Base"})
    assert bad.status_code == 400 and "Unknown time zone" in bad.get_data(as_text=True)
    assert (
        client.post("/staff/digests/settings", data={**values, "send_time": "25:00"}).status_code
        == 400
    )
    assert client.post("/staff/digests/settings", data=values).status_code == 302
    db_session.expire_all()
    settings = db_session.get(DigestSettings, 1)
    assert settings is not None
    assert (settings.weekday, settings.send_time, settings.timezone, settings.auto_send) == (
        4,
        "07:30",
        "Europe/Moscow",
        True,
    )


def test_roles_without_the_digest_permission_are_refused(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    issue_id = draft(app, db_session, clock)
    login(client, db_session, role="fundraiser")
    assert client.get("/staff/digests/").status_code == 403
    assert client.get(f"/staff/digests/{issue_id}/preview").status_code == 403


def test_unknown_issue_is_404(client: FlaskClient, db_session: Session) -> None:
    login(client, db_session)
    assert client.get("/staff/digests/999").status_code == 404


def test_archive_shows_approved_issues_only(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock, runner: FlaskCliRunner
) -> None:
    issue_id = draft(app, db_session, clock)
    assert client.get(f"/en/digest/{issue_id}").status_code == 404
    result = runner.invoke(digests_group, ["approve", str(issue_id)])
    assert result.exit_code == 0, result.output
    assert "approved for 1 recipients" in result.output
    page = client.get(f"/en/digest/{issue_id}").get_data(as_text=True)
    assert issue_in(db_session, issue_id).subject in page
    assert "Most read this week" in page
    archive = client.get("/en/digest").get_data(as_text=True)
    assert f"/en/digest/{issue_id}" in archive
    assert client.get("/ru/digest").status_code == 200


def test_cli_list_build_send_with_progress(
    app: Flask, db_session: Session, clock: FrozenClock, runner: FlaskCliRunner, smtp_sink: SmtpSink
) -> None:
    week_of_articles(db_session, clock.now())
    for _ in range(3):
        make_subscriber(db_session)
    db_session.commit()
    built = runner.invoke(digests_group, ["build"])
    assert built.exit_code == 0 and "en: issue" in built.output
    issue_id = int(built.output.split("en: issue ")[1].split()[0])
    listed = runner.invoke(digests_group, ["list"])
    assert "draft" in listed.output and "skipped" in listed.output
    assert runner.invoke(digests_group, ["approve", "12345"]).exit_code != 0
    assert runner.invoke(digests_group, ["approve", str(issue_id)]).exit_code == 0
    sent = runner.invoke(digests_group, ["send"])
    assert sent.exit_code == 0, sent.output
    assert "digest: sent 3" in sent.output and "sending" in sent.output
    assert len(smtp_sink.wait_for(3)) == 3
    assert issue_in(db_session, issue_id).status == IssueStatus.SENT


def test_demo_data_has_articles_a_sent_issue_and_a_draft(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, db_session: Session
) -> None:
    from webapp.cli import main

    result = runner.invoke(main, ["demo", "--if-empty", "--subscribers", "60"])
    assert result.exit_code == 0, result.output
    assert "digest issues" in result.output
    statuses = sorted(
        (issue.language, str(issue.status)) for issue in db_session.scalars(select(DigestIssue))
    )
    assert statuses == [("en", "draft"), ("en", "sent"), ("ru", "draft"), ("ru", "sent")]
    sent = db_session.scalars(
        select(DigestIssue).where(DigestIssue.status == IssueStatus.SENT)
    ).first()
    assert sent is not None and sent.recipients > 0
    assert client.get(f"/{sent.language}/digest/{sent.id}").status_code == 200
    assert client.get("/api/top-reads?lang=ru").get_json()


def test_the_archive_language_switch_leads_to_the_same_week_s_issue(
    app: Flask, client: FlaskClient, db_session: Session, clock: FrozenClock
) -> None:
    from webapp.digests.services import approve_issue

    week_of_articles(db_session, clock.now(), "en")
    week_of_articles(db_session, clock.now(), "ru")
    db_session.commit()
    built = [issue_in(db_session, i) for i in build(app, db_session, clock)]
    en = next(issue for issue in built if issue.language == "en")
    ru = next(issue for issue in built if issue.language == "ru")
    approve_issue(db_session, en, now=clock.now())
    db_session.commit()
    # Only the English issue is public: its switch leads to the Russian archive.
    page = client.get(f"/en/digest/{en.id}").get_data(as_text=True)
    assert 'hreflang="ru" href="/ru/digest"' in page
    assert f"/ru/digest/{en.id}" not in page
    # The English issue under /ru/ is sent to its own language, not dressed in Russian.
    moved = client.get(f"/ru/digest/{en.id}")
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/en/digest/{en.id}")
    approve_issue(db_session, ru, now=clock.now())
    db_session.commit()
    page = client.get(f"/en/digest/{en.id}").get_data(as_text=True)
    assert f'hreflang="ru" href="/ru/digest/{ru.id}"' in page
    russian = client.get(f"/ru/digest/{ru.id}").get_data(as_text=True)
    assert f'hreflang="en" href="/en/digest/{en.id}"' in russian
