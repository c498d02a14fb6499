"""The audit log page: newest first, paged, filtered by action and actor."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from webapp.db import get_session
from webapp.staff.audit import audit_actions, audit_details, list_audit_entries
from webapp.staff.auth import requires
from webapp.staff.forms import AuditFilterForm
from webapp.staff.roles import Permission

bp = Blueprint("staff_audit", __name__, url_prefix="/staff/audit")

PER_PAGE = 50


@bp.get("/")
@requires(Permission.AUDIT)
def index() -> str:
    """Audit entries, 50 a page; `?action=`, `?actor=` and `?page=` narrow it down."""
    db = get_session()
    form = AuditFilterForm(request.args)
    actions = audit_actions(db)
    form.action.choices = [("", "—")] + [(a, a) for a in actions]
    action = request.args.get("action", "")[:100] or None
    actor = request.args.get("actor", "")[:254] or None
    page = request.args.get("page", 1, type=int) or 1
    result = list_audit_entries(
        db, action=action, actor=actor, page=max(1, min(page, 100_000)), per_page=PER_PAGE
    )
    return render_template(
        "staff/audit.html",
        form=form,
        result=result,
        details=audit_details,
        filters={k: v for k, v in (("action", action), ("actor", actor)) if v},
    )
