"""The few configuration values the subscriber services need, gathered once per call site."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: Flask-Limiter limits for signup POSTs per client IP (page and embed share them).
DEFAULT_SUBSCRIBE_RATE_LIMIT = "10 per minute;60 per hour"
#: Largest CSV the staff upload page accepts.
DEFAULT_IMPORT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ListSettings:
    """What building links and sending subscription emails depends on."""

    #: Public base URL of the app, e.g. https://news.example.org (no trailing slash).
    base_url: str
    #: Secret that signs links and keys hashes.
    secret: str
    #: Languages the list offers; the first is the default.
    languages: tuple[str, ...]
    #: How long a confirmation link works.
    confirm_max_age: timedelta
    #: At most one signup email per address within this window.
    resend_after: timedelta

    @property
    def default_language(self) -> str:
        """The language given when none (or an unknown one) is asked for."""
        return self.languages[0] if self.languages else "en"

    def language_or_default(self, language: str | None) -> str:
        """`language` when the list offers it, else the default language."""
        return language if language in self.languages else self.default_language


def list_settings(config: Mapping[str, Any]) -> ListSettings:
    """`ListSettings` from a Flask app's config."""
    return ListSettings(
        base_url=str(config["BASE_URL"]).rstrip("/"),
        secret=str(config["SECRET_KEY"]),
        languages=tuple(config["LANGUAGES"]),
        confirm_max_age=timedelta(hours=int(config["CONFIRMATION_MAX_AGE_HOURS"])),
        resend_after=timedelta(minutes=int(config["CONFIRMATION_RESEND_MINUTES"])),
    )
