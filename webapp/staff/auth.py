"""Who is signed in, and the `requires` decorator every staff view carries.

The URL-map test checks that every `/staff` rule's view either carries
`required_permission` (set by `requires`) or is listed in `PUBLIC_STAFF_ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, session, url_for

from webapp.staff.roles import Permission, role_allows

F = TypeVar("F", bound=Callable[..., Any])

#: Staff endpoints reachable without signing in (the sign-in steps themselves).
PUBLIC_STAFF_ENDPOINTS: set[str] = set()

#: Key in Flask's signed cookie session holding the random staff session token.
SESSION_KEY = "staff_sid"
#: Key holding the pending second-factor step: {"uid": user id, "at": epoch seconds, "next": path}.
PENDING_TOTP_KEY = "staff_totp_pending"


def current_staff() -> Any | None:
    """The signed-in staff user of this request, or None (set by the session loader)."""
    return g.get("staff")


def signed_in_staff() -> Any:
    """The signed-in staff user, for views behind `requires` or `login_required` (which
    guarantee there is one); raises when called where nobody signed in."""
    staff = current_staff()
    if staff is None:
        raise RuntimeError("no staff user signed in: is the view missing @requires?")
    return staff


def requires(permission: Permission) -> Callable[[F], F]:
    """Deny anonymous users (redirect to sign-in) and roles without `permission` (403)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None:
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            if not role_allows(staff.role, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def public_staff_endpoint(view: F) -> F:
    """Mark a staff view as reachable while signed out (sign-in, second factor)."""
    PUBLIC_STAFF_ENDPOINTS.add(f"{view.__module__}:{view.__name__}")
    view.public_staff_endpoint = True  # type: ignore[attr-defined]
    return view


def is_marked(view: Callable[..., Any] | None) -> bool:
    """True when a view carries `@requires(...)` or `@public_staff_endpoint`."""
    return view is not None and (
        getattr(view, "required_permission", None) is not None
        or bool(getattr(view, "public_staff_endpoint", False))
    )


def load_staff() -> None:
    """Before each request: find the live server-side session named by the cookie.

    Sets `g.staff` (the `StaffUser`) and `g.staff_session` (the `StaffSession`), or leaves
    them unset. A dead token is dropped from the cookie. `last_seen_at` is written at most
    once a minute.
    """
    token = session.get(SESSION_KEY)
    if not token or request.endpoint == "static":
        return
    # Imported here: models import the database layer, which this module must not need
    # at import time (roles and decorators are imported everywhere).
    from webapp.core.clock import utcnow
    from webapp.db import get_session
    from webapp.staff.services import load_session, touch_session

    db = get_session()
    now = utcnow()
    row = load_session(db, token=str(token), now=now)
    if row is None:
        session.pop(SESSION_KEY, None)
        return
    if touch_session(row, now):
        db.commit()
    g.staff = row.user
    g.staff_session = row


def deny_unmarked_staff_views() -> None:
    """Before each request: a `/staff` view without `requires` or `public_staff_endpoint`
    answers 403, so a forgotten decorator fails closed."""
    if not (request.path == "/staff" or request.path.startswith("/staff/")):
        return
    if request.endpoint is None:  # 404/405: the routing error answers
        return
    view = current_app.view_functions.get(request.endpoint)
    if not is_marked(view):
        abort(403)


def init_app(app: Flask) -> None:
    """Install the session loader and the fail-closed check for `/staff` paths."""
    app.before_request(load_staff)
    app.before_request(deny_unmarked_staff_views)
