"""Wires the digest feature into an app (called once from `webapp.features`)."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    """Register the archive and staff pages, the `readership digests` commands, the staff nav
    item and this feature's configuration defaults (its erasure and demo data are connected
    to the subscriber signals by `webapp.features`)."""
    from webapp.digests import staff_views, views
    from webapp.digests.cli import digests_group
    from webapp.staff.services import Permission, add_nav_item

    # Messages per second per worker (0: as fast as the server takes them).
    app.config.setdefault("DIGEST_SEND_RATE", 0)
    app.config.setdefault("DIGEST_BATCH_SIZE", 200)
    app.config.setdefault("DIGEST_MAX_ATTEMPTS", 8)
    app.config.setdefault("DIGEST_PAUSE_FAILURE_RATE", 0.2)
    app.config.setdefault("DIGEST_PAUSE_MIN_FINISHED", 50)
    app.register_blueprint(views.bp)
    app.register_blueprint(staff_views.bp)
    app.cli.add_command(digests_group)
    add_nav_item(app, "digests_staff.index", _l("Digest"), Permission.DIGESTS, 30)


def erase_deliveries(session: Session, email: str, subscriber_id: int | None) -> None:
    """Erasure: a person's delivery rows go with them (issue totals stay in `recipients`)."""
    from webapp.digests.models import DigestDelivery

    if subscriber_id is not None:
        session.execute(
            delete(DigestDelivery)
            .where(DigestDelivery.subscriber_id == subscriber_id)
            .execution_options(synchronize_session=False)
        )
