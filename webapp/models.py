"""Imports every feature's models so `Base.metadata` (and Alembic) sees all tables."""

from webapp.site import models as site_models  # noqa: F401
