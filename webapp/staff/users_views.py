"""Admin-only staff management: list, add, change role, deactivate, reset password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _

from webapp.core.clock import utcnow
from webapp.core.forms import EmptyForm
from webapp.core.net import client_ip
from webapp.db import get_session
from webapp.staff import services
from webapp.staff.auth import current_staff, requires
from webapp.staff.forms import NewStaffForm, RoleForm
from webapp.staff.models import StaffUser
from webapp.staff.roles import Permission

bp = Blueprint("staff_users", __name__, url_prefix="/staff/users")


def _user_or_404(user_id: int) -> StaffUser:
    user = get_session().get(StaffUser, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/")
@requires(Permission.STAFF)
def index() -> str:
    """Every staff user with role, status and last sign-in."""
    return render_template(
        "staff/users/index.html", users=services.list_staff(get_session()), now=utcnow()
    )


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.STAFF)
def new() -> Any:
    """Add a staff user; a generated temporary password is shown once, on this answer."""
    form = NewStaffForm()
    if not form.is_submitted():
        return render_template("staff/users/new.html", form=form)
    if not form.validate():
        return render_template("staff/users/new.html", form=form), 422
    db = get_session()
    try:
        user, temporary = services.invite_staff_user(
            db,
            actor=current_staff(),
            email=form.email.data or "",
            role=form.role.data or "",
            name=form.name.data or "",
            password=form.password.data or None,
            now=utcnow(),
            ip=client_ip(),
        )
    except ValueError as exc:
        db.rollback()
        form.email.errors = (
            [_("A staff user with this address already exists.")]
            if ("already exists" in str(exc))
            else [str(exc)]
        )
        return render_template("staff/users/new.html", form=form), 409 if (
            "already exists" in str(exc)
        ) else 422
    db.commit()
    if temporary is None:
        flash(_("%(email)s can now sign in.", email=user.email), "ok")
        return redirect(url_for("staff_users.detail", user_id=user.id))
    # Rendered, not redirected: the password must not travel through a URL or the session.
    return render_template("staff/users/password_shown.html", user=user, password=temporary)


@bp.get("/<int:user_id>")
@requires(Permission.STAFF)
def detail(user_id: int) -> str:
    """One staff user: role, status, sessions; the forms that change them."""
    user = _user_or_404(user_id)
    return _render_detail(user)


def _render_detail(user: StaffUser, role_form: RoleForm | None = None) -> str:
    if role_form is None:
        role_form = RoleForm(formdata=None, role=user.role)
    return render_template(
        "staff/users/detail.html",
        user=user,
        role_form=role_form,
        button_form=EmptyForm(formdata=None),
        sessions=services.live_sessions(get_session(), user=user, now=utcnow()),
    )


@bp.post("/<int:user_id>/role")
@requires(Permission.STAFF)
def change_role(user_id: int) -> Any:
    """Give the user another role (never leaving the site without an active admin)."""
    user = _user_or_404(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _render_detail(user, form), 422
    db = get_session()
    try:
        changed = services.change_role(
            db,
            user=user,
            role=form.role.data or "",
            actor=current_staff(),
            now=utcnow(),
            ip=client_ip(),
        )
    except services.StaffRuleError:
        db.rollback()
        form.role.errors = [_("This is the last active admin; make someone else admin first.")]
        return _render_detail(user, form), 409
    db.commit()
    if changed:
        flash(_("%(email)s is now %(role)s.", email=user.email, role=user.role), "ok")
    return redirect(url_for("staff_users.detail", user_id=user.id))


@bp.post("/<int:user_id>/deactivate")
@requires(Permission.STAFF)
def deactivate(user_id: int) -> Any:
    """Stop the user signing in and sign them out everywhere."""
    user = _user_or_404(user_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_session()
    try:
        services.set_active(
            db, user=user, active=False, actor=current_staff(), now=utcnow(), ip=client_ip()
        )
    except services.StaffRuleError:
        db.rollback()
        flash(_("This is the last active admin; they cannot be deactivated."), "error")
        return _render_detail(user), 409
    db.commit()
    flash(_("%(email)s is deactivated and signed out everywhere.", email=user.email), "ok")
    return redirect(url_for("staff_users.detail", user_id=user.id))


@bp.post("/<int:user_id>/reactivate")
@requires(Permission.STAFF)
def reactivate(user_id: int) -> Any:
    """Let a deactivated user sign in again."""
    user = _user_or_404(user_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_session()
    services.set_active(
        db, user=user, active=True, actor=current_staff(), now=utcnow(), ip=client_ip()
    )
    db.commit()
    flash(_("%(email)s can sign in again.", email=user.email), "ok")
    return redirect(url_for("staff_users.detail", user_id=user.id))


@bp.post("/<int:user_id>/reset-password")
@requires(Permission.STAFF)
def reset_password(user_id: int) -> Any:
    """Give the user a new temporary password (shown once) and sign them out everywhere."""
    user = _user_or_404(user_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    db = get_session()
    temporary = services.generate_temporary_password()
    me = current_staff()
    services.set_password(
        db,
        user=user,
        password=temporary,
        now=utcnow(),
        actor=me,
        ip=client_ip(),
        keep_session=g.get("staff_session") if user is me else None,
    )
    db.commit()
    return render_template("staff/users/password_shown.html", user=user, password=temporary)
