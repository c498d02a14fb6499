"""Email: templates (one folder per email), two-stage rendering, MIME building and senders.

This package imports nothing from `webapp`; the app wires it in `webapp.outbox.gateway`.

Emails and the context each needs (besides the layout values in
`emails.rendering.LAYOUT_DEFAULTS`, and the recipient field `email`):

- `confirm_subscription`: `confirm_url`; optional `link_valid_hours`.
- `subscription_confirmed`: `preferences_url`; optional `unsubscribe_url`.
- `manage_subscription`: `preferences_url`; optional `link_valid_hours`.
- `staff_test`: optional `requested_by`.
"""

from pathlib import Path

from emails.message import build_message, build_message_bytes, message_bytes
from emails.rendering import CompiledEmail, EmailRenderer, RenderedEmail, UnknownEmail
from emails.senders import (
    DeliveryError,
    MaildirSender,
    PermanentFailure,
    Sender,
    SmtpSender,
    TemporaryFailure,
)

#: The folder holding one sub-folder per email and the shared layouts.
TEMPLATES_DIR = Path(__file__).parent / "templates"

__all__ = [
    "TEMPLATES_DIR",
    "CompiledEmail",
    "DeliveryError",
    "EmailRenderer",
    "MaildirSender",
    "PermanentFailure",
    "RenderedEmail",
    "Sender",
    "SmtpSender",
    "TemporaryFailure",
    "UnknownEmail",
    "build_message",
    "build_message_bytes",
    "message_bytes",
]
