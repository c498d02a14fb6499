"""Sign-in, sign-out, the staff start page and one's own account (password, TOTP, sessions)."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from typing import Any

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup

from webapp.core.clock import utcnow
from webapp.core.forms import EmptyForm
from webapp.core.net import client_ip, is_safe_redirect
from webapp.db import get_session
from webapp.staff import services
from webapp.staff.auth import (
    PENDING_TOTP_KEY,
    SESSION_KEY,
    current_staff,
    public_staff_endpoint,
    requires,
    signed_in_staff,
)
from webapp.staff.forms import ChangePasswordForm, LoginForm, TotpCodeForm, TotpLoginForm
from webapp.staff.nav import staff_nav
from webapp.staff.roles import Permission
from webapp.staff.setup import PUBLICATION_NAME_KEY

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: How long the second sign-in step may follow the first.
TOTP_STEP_MAX_AGE = timedelta(minutes=5)


def _next_target(raw: str | None) -> str:
    """Where to go after signing in: a safe path inside /staff, else the dashboard."""
    if raw and is_safe_redirect(raw) and (raw == "/staff" or raw.startswith("/staff/")):
        return raw
    return url_for("staff.dashboard")


def _locked_message(outcome: services.LoginOutcome) -> str:
    if outcome is services.LoginOutcome.IP_LOCKED:
        return _(
            "Too many failed sign-in attempts from your network. "
            "Please wait 15 minutes and try again."
        )
    return _(
        "Too many failed sign-in attempts for this account. "
        "It is locked for 15 minutes; please try again later."
    )


def _finish_login(user: Any, target: str) -> Response:
    """Rotate: drop the old cookie session entirely, then start a new server-side session."""
    previous = session.get(SESSION_KEY)
    session.clear()
    db = get_session()
    _row, token = services.start_session(
        db,
        user=user,
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent", ""),
        now=utcnow(),
        lifetime=timedelta(hours=current_app.config.get("STAFF_SESSION_MAX_AGE_HOURS", 12)),
        replaces=previous,
    )
    db.commit()
    session[SESSION_KEY] = token
    return redirect(target)  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
@public_staff_endpoint
def login() -> Any:
    """Step one of sign-in: address and password (throttled per account and per IP)."""
    if current_staff() is not None and request.method == "GET":
        return redirect(_next_target(request.args.get("next")))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return render_template("staff/login.html", form=form, error=None)
    if not form.validate_on_submit():
        return render_template("staff/login.html", form=form, error=None), 422
    db = get_session()
    result = services.authenticate(
        db,
        email=form.email.data or "",
        password=form.password.data or "",
        ip=client_ip(),
        now=utcnow(),
    )
    db.commit()
    outcome = result.outcome
    if outcome in (services.LoginOutcome.IP_LOCKED, services.LoginOutcome.ACCOUNT_LOCKED):
        return render_template("staff/login.html", form=form, error=_locked_message(outcome)), 429
    if outcome is services.LoginOutcome.INVALID or result.user is None:
        error = _("That email and password do not match an active staff account.")
        return render_template("staff/login.html", form=form, error=error), 422
    target = _next_target(form.next.data)
    if outcome is services.LoginOutcome.TOTP_REQUIRED:
        session.clear()
        session[PENDING_TOTP_KEY] = {
            "uid": result.user.id,
            "at": utcnow().timestamp(),
            "next": target,
        }
        return redirect(url_for("staff.login_totp"))
    return _finish_login(result.user, target)


def _pending_totp() -> dict[str, Any] | None:
    pending = session.get(PENDING_TOTP_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("uid"), int):
        return None
    try:
        started = float(pending.get("at", 0))
    except (TypeError, ValueError):
        return None
    if utcnow().timestamp() - started > TOTP_STEP_MAX_AGE.total_seconds():
        return None
    return pending


@bp.route("/login/totp", methods=["GET", "POST"])
@public_staff_endpoint
def login_totp() -> Any:
    """Step two of sign-in: the TOTP code, for accounts that turned it on."""
    pending = _pending_totp()
    if pending is None:
        session.pop(PENDING_TOTP_KEY, None)
        flash(_("Please sign in again."), "error")
        return redirect(url_for("staff.login"))
    form = TotpLoginForm()
    if request.method == "GET":
        return render_template("staff/login_totp.html", form=form, error=None)
    if not form.validate_on_submit():
        return render_template("staff/login_totp.html", form=form, error=None), 422
    db = get_session()
    result = services.verify_totp_login(
        db, user_id=pending["uid"], code=form.code.data or "", ip=client_ip(), now=utcnow()
    )
    db.commit()
    outcome = result.outcome
    if outcome in (services.LoginOutcome.IP_LOCKED, services.LoginOutcome.ACCOUNT_LOCKED):
        session.pop(PENDING_TOTP_KEY, None)
        return render_template(
            "staff/login_totp.html", form=form, error=_locked_message(outcome)
        ), 429
    if outcome is not services.LoginOutcome.OK or result.user is None:
        error = _("That code is not right. Check your authenticator app's clock and try again.")
        return render_template("staff/login_totp.html", form=form, error=error), 422
    return _finish_login(result.user, _next_target(pending.get("next")))


@bp.post("/logout")
@requires(Permission.DASHBOARD)
def logout() -> Any:
    """Sign this browser out (POST only, with the CSRF token)."""
    token = session.get(SESSION_KEY)
    if token:
        db = get_session()
        services.revoke_session(db, token=str(token), now=utcnow())
        db.commit()
    session.clear()
    flash(_("You have signed out."), "ok")
    return redirect(url_for("staff.login"))


@bp.get("/")
@requires(Permission.DASHBOARD)
def dashboard() -> str:
    """The staff start page.

    Roles that see reports get the supporter dashboard (registered by the reports feature);
    the others a welcome and the sections they may open.
    """
    start_page = current_app.extensions.get("staff_dashboard")
    if start_page is not None:
        page = start_page()
        if page is not None:
            return page
    return render_template("staff/dashboard.html", sections=staff_nav())


# --- My account -----------------------------------------------------------------------


def _qr_svg(data: str) -> Markup:
    """`data` as an inline SVG QR code (no script, no style attribute: CSP-safe)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1]
    svg = svg.replace("<svg ", '<svg role="img" class="qr" aria-label="QR code" ', 1)
    return Markup(svg)  # noqa: S704 - produced by qrcode from our own otpauth URI


def _render_account(status: int = 200, **forms: Any) -> tuple[str, int]:
    user = signed_in_staff()
    now = utcnow()
    enrolment = None
    if user.totp_secret and not user.totp_enabled:
        publication_name = current_app.extensions[PUBLICATION_NAME_KEY]
        issuer = publication_name(get_session()) or services.TOTP_ISSUER
        uri = services.totp_uri(user, user.totp_secret, issuer=issuer)
        enrolment = {"secret": user.totp_secret, "qr": _qr_svg(uri)}
    context = {
        "password_form": forms.get("password_form") or ChangePasswordForm(formdata=None),
        "totp_form": forms.get("totp_form") or TotpCodeForm(formdata=None),
        "button_form": EmptyForm(formdata=None),
        "enrolment": enrolment,
        "sessions": services.live_sessions(get_session(), user=user, now=now),
        "current_session": g.get("staff_session"),
    }
    return render_template("staff/account.html", **context), status


@bp.get("/account")
@requires(Permission.DASHBOARD)
def account() -> Any:
    """My account: password, two-factor sign-in, where I am signed in."""
    return _render_account()


@bp.post("/account/password")
@requires(Permission.DASHBOARD)
def change_password() -> Any:
    """Change my password; my other sessions are signed out."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _render_account(422, password_form=form)
    db = get_session()
    try:
        services.change_own_password(
            db,
            user=signed_in_staff(),
            current_password=form.current_password.data or "",
            new_password=form.new_password.data or "",
            now=utcnow(),
            ip=client_ip(),
            keep_session=g.get("staff_session"),
        )
    except ValueError:
        db.rollback()
        form.current_password.errors = [_("The current password is not right.")]
        return _render_account(422, password_form=form)
    db.commit()
    flash(_("Your password has been changed; your other sessions were signed out."), "ok")
    return redirect(url_for("staff.account"))


@bp.post("/account/totp/setup")
@requires(Permission.DASHBOARD)
def totp_setup() -> Any:
    """Start turning on two-factor sign-in: a new secret to scan."""
    if not EmptyForm().validate_on_submit():
        return _render_account(400)
    user = signed_in_staff()
    if user.totp_enabled:
        flash(_("Two-factor sign-in is already on."), "error")
        return redirect(url_for("staff.account"))
    db = get_session()
    services.begin_totp_enrolment(user)
    db.commit()
    return redirect(url_for("staff.account", _anchor="totp"))


@bp.post("/account/totp/enable")
@requires(Permission.DASHBOARD)
def totp_enable() -> Any:
    """Turn on two-factor sign-in once a code from the app matches."""
    form = TotpCodeForm()
    if not form.validate_on_submit():
        return _render_account(422, totp_form=form)
    db = get_session()
    if not services.enable_totp(
        db, user=signed_in_staff(), code=form.totp_code.data or "", now=utcnow(), ip=client_ip()
    ):
        db.rollback()
        form.totp_code.errors = [_("That code is not right. Scan the code again and retry.")]
        return _render_account(422, totp_form=form)
    db.commit()
    flash(_("Two-factor sign-in is on. You will be asked for a code when you sign in."), "ok")
    return redirect(url_for("staff.account"))


@bp.post("/account/totp/disable")
@requires(Permission.DASHBOARD)
def totp_disable() -> Any:
    """Turn off two-factor sign-in (a current code is required)."""
    form = TotpCodeForm()
    if not form.validate_on_submit():
        return _render_account(422, totp_form=form)
    db = get_session()
    user = signed_in_staff()
    if not services.disable_totp(
        db, user=user, code=form.totp_code.data or "", actor=user, now=utcnow(), ip=client_ip()
    ):
        db.rollback()
        form.totp_code.errors = [_("That code is not right.")]
        return _render_account(422, totp_form=form)
    db.commit()
    flash(_("Two-factor sign-in is off."), "ok")
    return redirect(url_for("staff.account"))


@bp.post("/account/sign-out-everywhere")
@requires(Permission.DASHBOARD)
def sign_out_everywhere() -> Any:
    """Revoke all of my sessions, this one included."""
    if not EmptyForm().validate_on_submit():
        return _render_account(400)
    db = get_session()
    services.sign_out_everywhere(db, user=signed_in_staff(), now=utcnow(), ip=client_ip())
    db.commit()
    session.clear()
    flash(_("You have been signed out on every device."), "ok")
    return redirect(url_for("staff.login"))
