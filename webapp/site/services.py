"""Reading and changing the publication's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.site.models import SiteSettings


def get_site_settings(session: Session) -> SiteSettings:
    """The settings row, created with defaults on first use.

    Two first requests at once (two gunicorn workers on a fresh database) both find no
    row; the one whose insert loses gets the winner's row instead of an IntegrityError.
    """
    settings = session.get(SiteSettings, 1)
    if settings is None:
        try:
            # A savepoint, so a lost race rolls back only this insert, not the caller's work.
            with session.begin_nested():
                session.add(SiteSettings(id=1))
        except IntegrityError:
            pass
        settings = session.get(SiteSettings, 1)
        if settings is None:  # pragma: no cover (the winner's row is committed by now)
            raise RuntimeError("the site settings row could not be created")
    return settings


def update_site_settings(
    session: Session, changes: dict[str, Any], now: datetime
) -> SiteSettings:
    """Apply `changes` (already validated) to the settings; the caller commits."""
    settings = get_site_settings(session)
    for name, value in changes.items():
        if not hasattr(SiteSettings, name):
            raise AttributeError(name)
        setattr(settings, name, value)
    settings.updated_at = now
    return settings
