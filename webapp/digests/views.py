"""The public archive: every approved issue has a web page, listed per language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, url_for

from webapp.core.clock import get_clock
from webapp.db import get_session
from webapp.digests import content
from webapp.digests.models import DigestIssue
from webapp.digests.services import archive_entries, is_public, same_week_issue
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
