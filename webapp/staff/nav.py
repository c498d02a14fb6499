"""The staff navigation: features register their sections; each user sees what they may open.

`register_nav_item` is called from a feature's registration in `webapp.features` (not at
import time). Registering the same endpoint again replaces the earlier entry, so building
several apps in one process (tests) does not duplicate items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request, url_for

from webapp.staff.auth import current_staff
from webapp.staff.roles import Permission, role_allows


@dataclass(frozen=True)
class NavItem:
    """A section in the staff bar."""

    #: Endpoint the link goes to, e.g. "subscribers_staff.index".
    endpoint: str
    #: Label (a lazy string, so it is translated per request).
    label: Any
    #: Who sees the link.
    permission: Permission
    #: Lower comes first.
    order: int = 100

    @property
    def blueprint(self) -> str:
        """The blueprint the endpoint belongs to ("" for app-level endpoints)."""
        return self.endpoint.rpartition(".")[0]


@dataclass(frozen=True)
class NavLink:
    """A nav item as a template shows it."""

    endpoint: str
    label: str
    url: str
    active: bool


_ITEMS: dict[str, NavItem] = {}


def register_nav_item(endpoint: str, label: Any, permission: Permission, order: int = 100) -> None:
    """Show a link to `endpoint` to staff whose role has `permission`.

    `label` should be `lazy_gettext(...)` so it is translated when shown.
    """
    _ITEMS[endpoint] = NavItem(endpoint, label, permission, order)


def nav_items() -> list[NavItem]:
    """Every registered item in display order."""
    return sorted(_ITEMS.values(), key=lambda item: (item.order, item.endpoint))


def _is_active(item: NavItem) -> bool:
    if request.endpoint == item.endpoint:
        return True
    current = request.blueprint or ""
    # Nested blueprints ("staff.users") belong to their own section, not to "staff".
    return bool(item.blueprint) and current == item.blueprint and not any(
        other.endpoint == request.endpoint for other in _ITEMS.values()
    )


def staff_nav() -> list[NavLink]:
    """The items the signed-in staff user may open (none when signed out).

    Items whose endpoint is not registered on this app are skipped, so an optional feature
    that is switched off leaves no dead link.
    """
    staff = current_staff()
    if staff is None:
        return []
    links = []
    for item in nav_items():
        if item.endpoint not in current_app.view_functions:
            continue
        if not role_allows(staff.role, item.permission):
            continue
        links.append(
            NavLink(item.endpoint, str(item.label), url_for(item.endpoint), _is_active(item))
        )
    return links


def init_app(app: Flask) -> None:
    """Expose `staff_nav()` to templates."""
    app.add_template_global(staff_nav, "staff_nav")
