"""Reading and changing the publication's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from webapp.db import get_or_create_row
from webapp.site.models import SiteSettings


def get_site_settings(session: Session) -> SiteSettings:
    """The settings row, created with defaults on first use (race-safe: `get_or_create_row`)."""
    return get_or_create_row(session, SiteSettings)


def update_site_settings(session: Session, changes: dict[str, Any], now: datetime) -> SiteSettings:
    """Apply `changes` (already validated) to the settings; the caller commits."""
    settings = get_site_settings(session)
    for name, value in changes.items():
        if not hasattr(SiteSettings, name):
            raise AttributeError(name)
        setattr(settings, name, value)
    settings.updated_at = now
    return settings
