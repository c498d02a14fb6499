"""Staff pages: the local mailbox (list, one message, its HTML, raw source) and the outbox.

Who sees what is decided in `webapp.outbox.visibility`: the whole mailbox for admins, one's
own messages for the other staff with the outbox right; outbox recipients only where the
role may see that person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from emails.mailbox import LocalMailbox, MailboxMessage
from webapp.core.clock import as_utc, utcnow
from webapp.db import get_database, get_session
from webapp.i18n import current_language
from webapp.outbox.gateway import get_mailer
from webapp.outbox.models import InvalidTransition, OutboxMessage, OutboxStatus
from webapp.outbox.services import (
    deliver_now,
    list_outbox,
    outbox_counts,
    queue_email,
    retry_failed_message,
)
from webapp.outbox.visibility import may_read_whole_mailbox, may_see_recipient
from webapp.staff.services import Permission, requires, signed_in_staff

bp = Blueprint("outbox", __name__, url_prefix="/staff", template_folder="templates")

#: Maildir keys are made of these characters; anything else cannot be a message.
_KEY = re.compile(r"^[A-Za-z0-9._,:=-]{1,200}$")
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
#: What an email's HTML may do when staff open it: show itself and its images, nothing else.
EMAIL_HTML_CSP = (
    "default-src 'none'; img-src data: https: http:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
#: Outbox page filters: name -> statuses shown.
OUTBOX_FILTERS: dict[str, tuple[OutboxStatus, ...]] = {
    "attention": (OutboxStatus.PENDING, OutboxStatus.FAILED),
    "pending": (OutboxStatus.PENDING,),
    "failed": (OutboxStatus.FAILED,),
    "sent": (OutboxStatus.SENT,),
    "all": tuple(OutboxStatus),
}
PER_PAGE = 25


def format_utc(value: datetime | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS` in UTC ("" for none; naive values are UTC)."""
    if value is None:
        return ""
    return as_utc(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "format_utc": format_utc,
        "status_labels": {
            OutboxStatus.PENDING: _("Pending"),
            OutboxStatus.SENT: _("Sent"),
            OutboxStatus.FAILED: _("Failed"),
        },
        "filter_labels": {
            "attention": _("Pending and failed"),
            "pending": _("Pending"),
            "failed": _("Failed"),
            "sent": _("Sent"),
            "all": _("All"),
        },
    }


class ActionForm(FlaskForm):
    """A button that changes something: CSRF token only."""


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return max(1, min(page, 1_000_000))


def _mailbox() -> LocalMailbox:
    return LocalMailbox(get_mailer().mailbox_dir)


def _own_address_only() -> str | None:
    """None when the signed-in staff member may read the whole mailbox, else their address
    (the only one whose messages they may open)."""
    staff = signed_in_staff()
    return None if may_read_whole_mailbox(staff.role) else str(staff.email)


def _message(key: str) -> MailboxMessage:
    """The message `key`, or 404 when there is none or it is not this staff member's to read
    (the same answer, so a key says nothing about someone else's mail)."""
    if not _KEY.match(key):
        abort(404)
    box = _mailbox()
    own = _own_address_only()
    if own is not None and not box.is_addressed_to(key, own):
        abort(404)
    try:
        return box.get(key)
    except KeyError:
        abort(404)


@bp.get("/mailbox")
@requires(Permission.OUTBOX)
def mailbox() -> str:
    """The local mailbox, newest first (only one's own messages without the mailbox right)."""
    mailer = get_mailer()
    own = _own_address_only()
    return render_template(
        "outbox/mailbox.html",
        result=_mailbox().list(page=_page(), per_page=PER_PAGE, to=own),
        own_only=own is not None,
        uses_smtp=mailer.uses_smtp,
        form=ActionForm(),
    )


@bp.get("/mailbox/<key>")
@requires(Permission.OUTBOX)
def mailbox_message(key: str) -> str:
    """One message: headers, the HTML part in a sandboxed frame, the text part, the source."""
    return render_template("outbox/message.html", message=_message(key))


@bp.get("/mailbox/<key>/html")
@requires(Permission.OUTBOX)
def mailbox_message_html(key: str) -> Response:
    """The HTML part alone, for the frame: no scripts, no requests but images, links open
    in a new tab."""
    message = _message(key)
    if message.html is None:
        abort(404)
    # Links would otherwise navigate inside the sandboxed frame. The tag goes inside
    # <head>: anything before the doctype would switch the page to quirks mode.
    body, found = _HEAD.subn(r'\g<0><base target="_blank">', message.html, count=1)
    if not found:
        body = '<base target="_blank">' + message.html
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_HTML_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/mailbox/<key>/raw")
@requires(Permission.OUTBOX)
def mailbox_message_raw(key: str) -> Response:
    """The message source exactly as stored."""
    message = _message(key)
    response = Response(message.raw, mimetype="text/plain")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/mailbox/test")
@requires(Permission.OUTBOX)
def send_test_email() -> Any:
    """Send the `staff_test` email to the signed-in staff member."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    staff = signed_in_staff()
    now = utcnow()
    session = get_session()
    mailer = get_mailer()
    message = queue_email(
        session,
        mailer,
        template="staff_test",
        to=staff.email,
        language=current_language(),
        context={"requested_by": staff.email},
        now=now,
    )
    session.commit()
    counts = deliver_now(get_database(), mailer, [message.id], now)
    if counts.sent:
        flash(_("A test email was sent to %(email)s.", email=staff.email), "success")
    else:
        flash(_("The test email could not be sent yet; see the outbox for the reason."), "error")
    return redirect(url_for(".mailbox" if not mailer.uses_smtp else ".outbox"), code=303)


@bp.get("/outbox")
@requires(Permission.OUTBOX)
def outbox() -> str:
    """Transactional email waiting, failed or sent, with the last error."""
    name = request.args.get("status", "attention")
    if name not in OUTBOX_FILTERS:
        name = "attention"
    staff = signed_in_staff()
    return render_template(
        "outbox/outbox.html",
        result=list_outbox(get_session(), OUTBOX_FILTERS[name], page=_page(), per_page=PER_PAGE),
        shows_recipient=lambda row: may_see_recipient(
            staff.role, staff.email, purpose=row.purpose, to_address=row.to_address
        ),
        counts=outbox_counts(get_session()),
        status_filter=name,
        filters=OUTBOX_FILTERS,
        form=ActionForm(),
        uses_smtp=get_mailer().uses_smtp,
    )


@bp.post("/outbox/<int:message_id>/retry")
@requires(Permission.OUTBOX)
def retry_message(message_id: int) -> Any:
    """Queue a failed message again and try it at once."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    now = utcnow()
    row = session.get(OutboxMessage, message_id)
    staff = signed_in_staff()
    if row is not None and not may_see_recipient(
        staff.role, staff.email, purpose=row.purpose, to_address=row.to_address
    ):
        abort(403)  # a message to someone this role may not see is not its to send again
    try:
        retry_failed_message(session, message_id, now)
    except LookupError:
        abort(404)
    except InvalidTransition:
        abort(409)
    session.commit()
    counts = deliver_now(get_database(), get_mailer(), [message_id], now)
    if counts.sent:
        flash(_("The message was sent."), "success")
    else:
        flash(_("The message is queued again; it has not gone out yet."), "error")
    return redirect(url_for(".outbox", status="attention"), code=303)
