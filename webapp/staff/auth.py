"""Who is signed in, and the `requires` decorator every staff view carries.

The URL-map test checks that every `/staff` rule's view either carries
`required_permission` (set by `requires`) or is listed in `PUBLIC_STAFF_ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, url_for

from webapp.staff.roles import Permission, role_allows

F = TypeVar("F", bound=Callable[..., Any])

#: Staff endpoints reachable without signing in (the sign-in steps themselves).
PUBLIC_STAFF_ENDPOINTS: set[str] = set()


def current_staff() -> Any | None:
    """The signed-in staff user of this request, or None (set by the session loader)."""
    return g.get("staff")


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
