"""The public archive: every approved issue has a web page, listed per language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from webapp.core.clock import get_clock
from webapp.db import get_session
from webapp.digests import content
from webapp.digests.models import DigestIssue
from webapp.digests.services import (
    ClickLinkError,
    archive_entries,
    is_public,
    record_click,
    resolve_click,
    same_week_issue,
)
from webapp.i18n import current_language, public_route
from webapp.outbox.services import get_mailer

# The staff pages' CSS and JS are served from here: files under /staff would need a login.
bp = Blueprint(
    "digests",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/digests/assets",
)


@public_route(bp, "/digest")
def archive() -> Any:
    """Past issues in the page's language, newest first."""
    language = current_language()
    return render_template("digests/archive.html", entries=archive_entries(get_session(), language))


@public_route(bp, "/digest/<int:issue_id>")
def archive_issue(issue_id: int) -> Any:
    """One issue as a web page (the "read in your browser" link of the email)."""
    session = get_session()
    issue = session.get(DigestIssue, issue_id)
    if issue is None or not is_public(issue):
        abort(404)
    if issue.language != current_language():
        # An issue is one language's: its page wears that language's furniture.
        return redirect(url_for("digests.archive_issue", lang=issue.language, issue_id=issue.id))
    # The language switch leads to the same week's issue in the other language, or to that
    # language's archive when there is none.
    language_links = {}
    for language in current_app.config["LANGUAGES"]:
        if language != issue.language:
            sibling = same_week_issue(session, issue, language)
            language_links[language] = (
                url_for("digests.archive_issue", lang=language, issue_id=sibling)
                if sibling is not None
                else url_for("digests.archive", lang=language)
            )
    base_url = get_mailer().base_url
    values = content.issue_context(session, get_mailer(), issue, base_url)
    support = content.support_context(session, issue, base_url, get_clock().now())
    return render_template(
        "digests/issue.html",
        issue=issue,
        values=values,
        support=support,
        donate_enabled="donations.donate" in current_app.view_functions,
        language_links=language_links,
    )


@bp.get("/r/<token>")
def follow_link(token: str) -> Any:
    """A digest link: count (issue, link) and send the reader on with a 302.

    Nothing about the reader is read or kept. A token that does not verify is a 404 (in
    the browser's language), so this is never an open redirect. HEAD (Flask answers it
    from this view) goes on without counting: mail scanners probe links that way. No
    language prefix: a prefixed page remembers its language in a cookie, and this one
    sets none.
    """
    try:
        target = resolve_click(str(current_app.config["SECRET_KEY"]), token)
    except ClickLinkError:
        abort(404)
    if request.method == "GET":
        session = get_session()
        record_click(session, target, get_clock().now())
        session.commit()
    response = redirect(target.url, code=302)
    # Each click must reach us: no cache may answer it, and the article learns nothing
    # of the redirect's address.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
