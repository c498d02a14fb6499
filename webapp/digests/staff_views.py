"""Staff digest pages (editors and admins): the issue list and settings, one issue's editor
with previews, test send, approval, and live progress with pause and resume."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.core.clock import get_clock
from webapp.core.forms import language_choices
from webapp.db import get_database, get_session
from webapp.digests import content
from webapp.digests.building import NO_NEW_ARTICLES, get_digest_settings, next_slot
from webapp.digests.models import DigestIssue, IssueStatus
from webapp.digests.services import (
    IssueStateError,
    NotEditable,
    approve_issue,
    drop_item,
    eligible_subscribers,
    issue_progress,
    latest_issues,
    move_item,
    pause_issue,
    preview,
    queue_test_send,
    redirect_is_on,
    resume_issue,
    run_build,
    update_issue,
)
from webapp.digests.staff_forms import ActionForm, DigestSettingsForm, IssueForm, TestSendForm
from webapp.outbox.services import deliver_now, get_mailer
from webapp.staff.services import Permission, audit_request, current_staff, requires
from webapp.subscribers.models import Subscriber

bp = Blueprint(
    "digests_staff",
    __name__,
    url_prefix="/staff/digests",
    template_folder="templates",
)

#: The email preview is a whole HTML document with inline styles (as mail clients need):
#: it gets its own policy, with no scripts at all, framed only by the staff page.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def note_text(note: str) -> str:
    """An issue's note as staff read it."""
    if note == NO_NEW_ARTICLES:
        return _("No issue: nothing was published since the previous issue.")
    if note.startswith("error-threshold: "):
        return _("Paused automatically, too many deliveries failed: %(detail)s", detail=note[17:])
    if note.startswith("complaint-threshold: "):
        return _(
            "Paused automatically, too many spam complaints: %(detail)s",
            detail=note.split(": ", 1)[1],
        )
    if note.startswith("bounce-threshold: "):
        return _(
            "Paused automatically, too many addresses bounced: %(detail)s",
            detail=note.split(": ", 1)[1],
        )
    return note


def status_label(status: str) -> str:
    """A status in the staff's language."""
    return {
        IssueStatus.SKIPPED: _("skipped"),
        IssueStatus.DRAFT: _("draft"),
        IssueStatus.SENDING: _("sending"),
        IssueStatus.PAUSED: _("paused"),
        IssueStatus.SENT: _("sent"),
    }.get(IssueStatus(status), status)


def _issue(session: Session, issue_id: int) -> DigestIssue:
    issue = session.get(DigestIssue, issue_id)
    if issue is None:
        abort(404)
    return issue


def _settings_form(session: Session) -> DigestSettingsForm:
    settings = get_digest_settings(session)
    form = DigestSettingsForm(
        data={
            "weekday": settings.weekday,
            "send_time": settings.send_time,
            "timezone": settings.timezone,
            "auto_send": "auto" if settings.auto_send else "wait",
            "new_articles_limit": settings.new_articles_limit,
            "click_redirect_languages": [
                lang for lang in _languages() if redirect_is_on(settings, lang)
            ],
        }
    )
    form.click_redirect_languages.choices = language_choices(_languages())
    return form


def _languages() -> list[str]:
    return list(current_app.config["LANGUAGES"])


def _render_index(session: Session, form: DigestSettingsForm, status: int = 200) -> Any:
    now = get_clock().now()
    issues = latest_issues(session)
    settings = get_digest_settings(session)
    rows = [(issue, issue_progress(session, issue, now)) for issue in issues]
    return (
        render_template(
            "digests/staff/index.html",
            rows=rows,
            form=form,
            action_form=ActionForm(),
            next_build=next_slot(settings, now),
            settings=settings,
            note_text=note_text,
            status_label=status_label,
        ),
        status,
    )


@bp.get("/")
@requires(Permission.DIGESTS)
def index() -> Any:
    session = get_session()
    return _render_index(session, _settings_form(session))


@bp.post("/settings")
@requires(Permission.DIGESTS)
def save_settings() -> Any:
    session = get_session()
    form = DigestSettingsForm()
    form.click_redirect_languages.choices = language_choices(_languages())
    if not form.validate():
        return _render_index(session, form, 400)
    settings = get_digest_settings(session)
    settings.weekday = int(form.weekday.data)
    settings.send_time = str(form.send_time.data)
    settings.timezone = str(form.timezone.data)
    settings.auto_send = form.auto_send.data == "auto"
    settings.new_articles_limit = int(form.new_articles_limit.data or 12)
    counted = set(form.click_redirect_languages.data or [])
    # Languages not offered here (no longer configured) keep their setting.
    kept = [lang for lang in settings.plain_link_languages or [] if lang not in _languages()]
    settings.plain_link_languages = kept + [lang for lang in _languages() if lang not in counted]
    settings.updated_at = get_clock().now()
    audit_request(session, action="digest.settings", details=form.data | {"csrf_token": None})
    session.commit()
    flash(_("Digest settings saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/build")
@requires(Permission.DIGESTS)
def build_now() -> Any:
    session = get_session()
    if not ActionForm().validate():
        abort(400)
    results = run_build(session, current_app, get_mailer(), now=get_clock().now(), force=True)
    audit_request(session, action="digest.build", details={"issues": [r.issue_id for r in results]})
    session.commit()
    flash(_("Issues built: %(count)d.", count=len(results)), "success")
    return redirect(url_for(".index"))


def _render_issue(session: Session, issue: DigestIssue, **forms: Any) -> Any:
    now = get_clock().now()
    staff = current_staff()
    sibling = None
    if issue.slot is not None:
        sibling = session.scalar(
            select(DigestIssue)
            .where(DigestIssue.slot == issue.slot, DigestIssue.id != issue.id)
            .limit(1)
        )
    audience_count = int(
        session.scalar(
            select(func.count()).select_from(Subscriber).where(eligible_subscribers(issue.language))
        )
        or 0
    )
    return render_template(
        "digests/staff/issue.html",
        issue=issue,
        items=content.issue_articles(session, issue),
        progress=issue_progress(session, issue, now),
        form=forms.get("form") or IssueForm(data={"subject": issue.subject, "intro": issue.intro}),
        test_form=forms.get("test_form") or TestSendForm(data={"to": staff.email if staff else ""}),
        action_form=ActionForm(),
        sibling=sibling,
        audience_count=audience_count,
        note_text=note_text,
        status_label=status_label,
    ), forms.get("status", 200)


@bp.get("/<int:issue_id>")
@requires(Permission.DIGESTS)
def issue_page(issue_id: int) -> Any:
    session = get_session()
    return _render_issue(session, _issue(session, issue_id))


@bp.post("/<int:issue_id>")
@requires(Permission.DIGESTS)
def save_issue(issue_id: int) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    form = IssueForm()
    if not form.validate():
        return _render_issue(session, issue, form=form, status=400)
    try:
        update_issue(
            issue,
            subject=form.subject.data or "",
            intro=form.intro.data or "",
            item_order=[],
            dropped=set(),
            now=get_clock().now(),
        )
    except NotEditable:
        flash(_("Only drafts can be edited."), "error")
        return redirect(url_for(".issue_page", issue_id=issue_id))
    audit_request(session, action="digest.update", target_type="digest_issue", target_id=issue_id)
    session.commit()
    flash(_("Issue saved."), "success")
    return redirect(url_for(".issue_page", issue_id=issue_id))


@bp.post("/<int:issue_id>/items/<int:article_id>/<any(up, down, drop):action>")
@requires(Permission.DIGESTS)
def change_item(issue_id: int, article_id: int, action: str) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    if not ActionForm().validate():
        abort(400)
    now = get_clock().now()
    try:
        if action == "drop":
            drop_item(issue, article_id, now)
        else:
            move_item(issue, article_id, -1 if action == "up" else 1, now)
    except NotEditable:
        flash(_("Only drafts can be edited."), "error")
        return redirect(url_for(".issue_page", issue_id=issue_id))
    audit_request(
        session,
        action=f"digest.item_{action}",
        target_type="digest_issue",
        target_id=issue_id,
        details={"article_id": article_id},
    )
    session.commit()
    return redirect(url_for(".issue_page", issue_id=issue_id) + "#items")


@bp.post("/<int:issue_id>/test")
@requires(Permission.DIGESTS)
def test_send(issue_id: int) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    form = TestSendForm()
    if not form.validate():
        return _render_issue(session, issue, test_form=form, status=400)
    now = get_clock().now()
    staff = current_staff()
    mailer = get_mailer()
    message = queue_test_send(
        session,
        mailer,
        issue,
        to=str(form.to.data).strip(),
        name=staff.email.split("@")[0] if staff else "",
        as_donor=bool(form.as_donor.data),
        secret=str(current_app.config["SECRET_KEY"]),
        now=now,
        unsubscribe_mailto=current_app.config.get("LIST_UNSUBSCRIBE_MAILTO") or None,
    )
    audit_request(
        session,
        action="digest.test_send",
        target_type="digest_issue",
        target_id=issue_id,
        details={"to": message.to_address, "as_donor": bool(form.as_donor.data)},
    )
    session.commit()
    counts = deliver_now(get_database(), mailer, [message.id], now)
    if counts.sent:
        flash(_("Test sent to %(to)s.", to=message.to_address), "success")
    else:
        flash(_("The test is queued; the mail server did not take it yet."), "warning")
    return redirect(url_for(".issue_page", issue_id=issue_id))


@bp.post("/<int:issue_id>/<any(approve, pause, resume):action>")
@requires(Permission.DIGESTS)
def change_state(issue_id: int, action: str) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    if not ActionForm().validate():
        abort(400)
    now = get_clock().now()
    staff = current_staff()
    try:
        if action == "approve":
            recipients = approve_issue(
                session, issue, now=now, staff_id=staff.id if staff else None
            )
            flash(_("Approved: sending to %(count)d readers.", count=recipients), "success")
        elif action == "pause":
            pause_issue(
                session,
                issue,
                now=now,
                note=_("Paused by %(who)s.", who=staff.email if staff else "staff"),
            )
            flash(_("Sending paused."), "success")
        else:
            resume_issue(session, issue, now=now)
            flash(_("Sending resumed."), "success")
    except IssueStateError:
        flash(
            _(
                "That is not possible in this issue's state (%(status)s).",
                status=status_label(issue.status),
            ),
            "error",
        )
        return redirect(url_for(".issue_page", issue_id=issue_id))
    audit_request(
        session, action=f"digest.{action}", target_type="digest_issue", target_id=issue_id
    )
    session.commit()
    return redirect(url_for(".issue_page", issue_id=issue_id))


@bp.get("/<int:issue_id>/preview")
@requires(Permission.DIGESTS)
def preview_html(issue_id: int) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    staff = current_staff()
    rendered = preview(
        session,
        get_mailer(),
        issue,
        secret=str(current_app.config["SECRET_KEY"]),
        now=get_clock().now(),
        as_donor=request.args.get("donor") == "1",
        email=staff.email if staff else "reader@example.org",
    )
    response = Response(rendered.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


@bp.get("/<int:issue_id>/progress.json")
@requires(Permission.DIGESTS)
def progress_json(issue_id: int) -> Any:
    session = get_session()
    issue = _issue(session, issue_id)
    data = issue_progress(session, issue, get_clock().now()).as_dict()
    data["status_label"] = status_label(issue.status)
    data["note"] = note_text(issue.note)
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response
