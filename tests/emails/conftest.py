"""Fixtures for the email package: a renderer on the real templates and catalogues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emails import TEMPLATES_DIR, EmailRenderer

TRANSLATIONS_DIR = Path(__file__).resolve().parents[2] / "webapp" / "translations"

#: The fixed context every snapshot is rendered with.
SITE_CONTEXT: dict[str, Any] = {
    "publication_name": "The Test Review",
    "tagline": "Independent analysis",
    "site_url": "https://review.example",
    "base_url": "https://readers.review.example",
    "logo_url": None,
    "primary_color": "#1d4ed8",
    "accent_color": "#b91c1c",
    "postal_address": "1 Press Street\n10115 Berlin",
}

#: Per-email values, as the features pass them.
EMAIL_CONTEXTS: dict[str, dict[str, Any]] = {
    "confirm_subscription": {
        "confirm_url": "https://readers.review.example/subscribe/confirm/TOKEN?x=1&y=2",
        "link_valid_hours": 72,
    },
    "subscription_confirmed": {
        "preferences_url": "https://readers.review.example/preferences/PREFS",
        "unsubscribe_url": "https://readers.review.example/unsubscribe/UNSUB",
    },
    "manage_subscription": {
        "preferences_url": "https://readers.review.example/preferences/PREFS",
        "link_valid_hours": 72,
    },
    "staff_test": {"requested_by": "editor@review.example"},
}

RECIPIENT = {"email": "reader@example.org"}


def context_for(name: str, **extra: Any) -> dict[str, Any]:
    """The fixed context of one email, with `extra` on top."""
    return {**SITE_CONTEXT, **EMAIL_CONTEXTS[name], **extra}


@pytest.fixture
def renderer() -> EmailRenderer:
    """A fresh renderer (empty cache, zero compiles) on the real templates."""
    return EmailRenderer(TEMPLATES_DIR, TRANSLATIONS_DIR)
