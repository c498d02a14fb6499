"""The staff navigation: features add their sections; each user sees what they may open.

Each app has its own `Nav`, made by the staff feature's `init_app` and kept in
`app.extensions["staff.nav"]`; a feature's `init_app` adds its section with
`add_nav_item(app, ...)`. Adding the same endpoint again replaces the earlier entry.
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


#: Where an app keeps its `Nav`.
EXTENSION_KEY = "staff.nav"


class Nav:
    """One app's staff bar: the sections the features added, by endpoint."""

    def __init__(self) -> None:
        self._items: dict[str, NavItem] = {}

    def add(self, endpoint: str, label: Any, permission: Permission, order: int = 100) -> None:
        """Show a link to `endpoint` to staff whose role has `permission` (an item with the
        same endpoint is replaced)."""
        self._items[endpoint] = NavItem(endpoint, label, permission, order)

    def items(self) -> list[NavItem]:
        """Every item in display order."""
        return sorted(self._items.values(), key=lambda item: (item.order, item.endpoint))


def get_nav(app: Flask | None = None) -> Nav:
    """The `Nav` of `app` (default: the current app); `KeyError` before staff's `init_app`."""
    nav: Nav = (app or current_app).extensions[EXTENSION_KEY]
    return nav


def add_nav_item(
    app: Flask, endpoint: str, label: Any, permission: Permission, order: int = 100
) -> None:
    """Show a link to `endpoint` in `app`'s staff bar to staff whose role has `permission`.

    `label` should be `lazy_gettext(...)` so it is translated when shown.
    """
    get_nav(app).add(endpoint, label, permission, order)


def nav_items(app: Flask | None = None) -> list[NavItem]:
    """Every item of `app` (default: the current app) in display order."""
    return get_nav(app).items()


def _is_active(item: NavItem, items: list[NavItem]) -> bool:
    if request.endpoint == item.endpoint:
        return True
    current = request.blueprint or ""
    # Nested blueprints ("staff.users") belong to their own section, not to "staff".
    return (
        bool(item.blueprint)
        and current == item.blueprint
        and not any(other.endpoint == request.endpoint for other in items)
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
    items = nav_items()
    for item in items:
        if item.endpoint not in current_app.view_functions:
            continue
        if not role_allows(staff.role, item.permission):
            continue
        links.append(
            NavLink(item.endpoint, str(item.label), url_for(item.endpoint), _is_active(item, items))
        )
    return links


def init_app(app: Flask) -> None:
    """Give `app` its (empty) `Nav` and expose `staff_nav()` to templates."""
    app.extensions[EXTENSION_KEY] = Nav()
    app.add_template_global(staff_nav, "staff_nav")
