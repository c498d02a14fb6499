"""The one place that reads the environment (and `.env`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

#: Languages every public page and email exists in; adding one is a catalogue and this list.
DEFAULT_LANGUAGES = ("en", "ru")


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app configuration from the environment, `.env` and explicit overrides.

    Overrides win over the environment; tests pass a dict instead of touching `os.environ`.
    """
    load_dotenv(Path.cwd() / ".env", override=False)
    env = os.environ
    instance = Path(instance_path)
    base_url = env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    languages = tuple(
        code.strip()
        for code in env.get("LANGUAGES", ",".join(DEFAULT_LANGUAGES)).split(",")
        if code.strip()
    )
    config: dict[str, Any] = {
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'readership.sqlite3'}",
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "BASE_URL": base_url,
        "SMTP_URL": env.get("SMTP_URL") or None,
        "SMTP_TIMEOUT": float(env.get("SMTP_TIMEOUT", "30")),
        # How long a sending worker holds the rows it claimed before another may take them
        # over (outbox and digests); DIGEST_CLAIM_LEASE_SECONDS is its older name.
        "SEND_LEASE_SECONDS": float(
            env.get("SEND_LEASE_SECONDS") or env.get("DIGEST_CLAIM_LEASE_SECONDS") or "600"
        ),
        "MAIL_FROM": env.get("MAIL_FROM", "Readership <newsletter@localhost>"),
        "MAILBOX_DIR": env.get("MAILBOX_DIR") or str(instance / "mailbox"),
        # DKIM signing, for a relay that does not sign with our domain: a PEM RSA key and the
        # selector its DNS record sits under; the domain defaults to MAIL_FROM's.
        "DKIM_PRIVATE_KEY_PATH": (env.get("DKIM_PRIVATE_KEY_PATH") or "").strip() or None,
        "DKIM_SELECTOR": (env.get("DKIM_SELECTOR") or "").strip() or None,
        "DKIM_DOMAIN": (env.get("DKIM_DOMAIN") or "").strip() or None,
        # An address for the mailto: variant of List-Unsubscribe (None: the HTTPS link only).
        "LIST_UNSUBSCRIBE_MAILTO": (env.get("LIST_UNSUBSCRIBE_MAILTO") or "").strip() or None,
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "DELIVER_EMAIL_IMMEDIATELY": _bool(env.get("DELIVER_EMAIL_IMMEDIATELY"), True),
        "LANGUAGES": languages,
        "DEFAULT_LANGUAGE": languages[0] if languages else "en",
        # Flask-Limiter storage; memory:// is per process, use redis:// or memcached:// with
        # several gunicorn workers so the limits are shared.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        # How long a double opt-in link and a pending signup live.
        "CONFIRMATION_MAX_AGE_HOURS": int(env.get("CONFIRMATION_MAX_AGE_HOURS", "72")),
        # At most one confirmation email per address within this window, whatever the IPs.
        "CONFIRMATION_RESEND_MINUTES": int(env.get("CONFIRMATION_RESEND_MINUTES", "15")),
        "PENDING_SIGNUP_EXPIRY_DAYS": int(env.get("PENDING_SIGNUP_EXPIRY_DAYS", "7")),
        "STAFF_SESSION_MAX_AGE_HOURS": int(env.get("STAFF_SESSION_MAX_AGE_HOURS", "12")),
        "TRUST_PROXY": _bool(env.get("TRUST_PROXY"), False),
        # The largest request body the app reads (Flask refuses more with 413, unread); the
        # staff CSV upload has its own, larger limit (SUBSCRIBER_IMPORT_MAX_BYTES).
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH") or 1024 * 1024),
        # The reader-facing forms (signup, embed, donate, links) need far less.
        "FORM_MAX_CONTENT_LENGTH": int(env.get("FORM_MAX_CONTENT_LENGTH") or 64 * 1024),
        # View beacons per client IP, and views of one article counted per IP and day.
        "VIEW_RATE_LIMIT": env.get("VIEW_RATE_LIMIT") or "60 per minute",
        "VIEWS_PER_ADDRESS": int(env.get("VIEWS_PER_ADDRESS") or 3),
        # The bearer token of `POST /email-events/generic` (unset: that endpoint is off).
        "EMAIL_EVENTS_GENERIC_TOKEN": env.get("EMAIL_EVENTS_GENERIC_TOKEN") or None,
        # "user:password" of the Postmark webhook URL (unset: `/email-events/postmark` is off).
        "EMAIL_EVENTS_POSTMARK_CREDENTIALS": env.get("EMAIL_EVENTS_POSTMARK_CREDENTIALS") or None,
        # The webhook signing key of the Mailgun domain (unset: `/email-events/mailgun` is off).
        "EMAIL_EVENTS_MAILGUN_SIGNING_KEY": env.get("EMAIL_EVENTS_MAILGUN_SIGNING_KEY") or None,
        # The verification key SendGrid shows for its signed Event Webhook (unset: endpoint off).
        "EMAIL_EVENTS_SENDGRID_PUBLIC_KEY": env.get("EMAIL_EVENTS_SENDGRID_PUBLIC_KEY") or None,
        # The SNS topics (ARNs, comma-separated) SES posts its notifications to (unset: the
        # `/email-events/ses` endpoint is off). `EMAIL_EVENTS_SNS_TEST_HOSTS` (never read
        # from the environment) lets tests serve SNS certificates from 127.0.0.1.
        "EMAIL_EVENTS_SES_TOPIC_ARNS": env.get("EMAIL_EVENTS_SES_TOPIC_ARNS") or None,
    }
    # Donation limits and Stripe timing; the donations feature fills in its defaults.
    for name, convert in (
        ("DONATE_RATE_LIMIT", str),
        ("DONATE_EMAIL_LIMIT", str),
        ("DONOR_LINK_RATE_LIMIT", str),
        ("DONOR_LINK_MAX_AGE_HOURS", int),
        ("STRIPE_WEBHOOK_TOLERANCE", int),
        ("RECONCILE_LOOKBACK_DAYS", int),
        ("TOP_READS_DAYS", int),
        ("TOP_READS_COUNT", int),
        ("DIGEST_SEND_RATE", float),
        ("DIGEST_BATCH_SIZE", int),
        ("DIGEST_MAX_ATTEMPTS", int),
        ("DIGEST_PAUSE_FAILURE_RATE", float),
        ("DIGEST_PAUSE_MIN_FINISHED", int),
        ("DIGEST_PAUSE_COMPLAINT_RATE", float),
        ("DIGEST_PAUSE_BOUNCE_RATE", float),
        ("DIGEST_PAUSE_MIN_SENT", int),
        ("SUBSCRIBER_IMPORT_MAX_BYTES", int),
        ("FEED_FETCH_DEADLINE_SECONDS", float),
    ):
        if env.get(name):
            config[name] = convert(env[name])
    config["SESSION_COOKIE_SECURE"] = base_url.startswith("https://")
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["WTF_CSRF_TIME_LIMIT"] = None  # tied to the session instead of a clock
    if overrides:
        config.update(overrides)
    return config
