"""Imports every feature's models so `Base.metadata` (and Alembic) sees all tables."""

from webapp.articles import models as article_models  # noqa: F401
from webapp.digests import models as digest_models  # noqa: F401
from webapp.donations import models as donation_models  # noqa: F401
from webapp.email_events import models as email_event_models  # noqa: F401
from webapp.outbox import models as outbox_models  # noqa: F401
from webapp.reports import models as report_models  # noqa: F401
from webapp.reports import summary as report_summary  # noqa: F401
from webapp.scheduling import models as scheduling_models  # noqa: F401
from webapp.site import models as site_models  # noqa: F401
from webapp.staff import models as staff_models  # noqa: F401
from webapp.subscribers import models as subscriber_models  # noqa: F401
