"""Wires the site feature into an app (called once from `webapp.features`): the publication's
public pages, its staff settings page and nav item, and `site` on every template."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    """Expose the site settings to templates, register the public pages and the staff
    settings page with its nav item (the staff feature must be set up first: it owns the
    nav)."""
    from webapp.site import staff_views, views
    from webapp.site.context import init_app as init_context
    from webapp.staff.services import Permission, add_nav_item

    init_context(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(staff_views.bp)
    add_nav_item(app, "staff_settings.edit", _l("Settings"), Permission.SETTINGS, order=920)
