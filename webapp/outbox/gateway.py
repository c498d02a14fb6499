"""The composition root of email: renderer, sender address and the sender to use.

`init_app` builds one `Mailer` per app from the configuration: SMTP when `SMTP_URL` is set,
otherwise the local Maildir in `MAILBOX_DIR` that staff read in the browser; with
`DKIM_PRIVATE_KEY_PATH` and `DKIM_SELECTOR` every message is DKIM-signed as it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from emails import TEMPLATES_DIR, EmailRenderer, MaildirSender, Sender, SmtpSender
from emails.message import address_domain, format_sender
from emails.signing import DkimKeyError, DkimSigner, SigningSender, check_dns_name
from webapp.core.leases import LeaseTerms, lease_terms


@dataclass
class Mailer:
    """Everything services need to render and send email."""

    #: Renders the email folders (compile once, fill per recipient).
    renderer: EmailRenderer
    #: MAIL_FROM, e.g. "Readership <newsletter@example.org>".
    mail_from: str
    #: BASE_URL of the app, without a trailing slash.
    base_url: str
    #: Makes a fresh sender (one per delivery run; it reuses its connection inside the run).
    sender_factory: Callable[[], Sender]
    #: True when mail goes to an SMTP server, False when it goes to the local mailbox.
    uses_smtp: bool
    #: The Maildir folder of the local mailbox (read by the staff viewer even under SMTP).
    mailbox_dir: Path
    #: Domain used in Message-ID headers.
    message_id_domain: str = field(default="localhost")
    #: How long a sending worker holds the rows it claimed (outbox and digest alike).
    lease: LeaseTerms = field(default_factory=LeaseTerms)
    #: Signs every message the senders hand over (None: DKIM is off, the relay signs).
    dkim: DkimSigner | None = None

    def new_sender(self) -> Sender:
        """A new, unopened sender."""
        return self.sender_factory()

    @property
    def envelope_from(self) -> str:
        """The bare address of MAIL_FROM, used as the SMTP envelope sender."""
        return parseaddr(self.mail_from)[1] or self.mail_from

    def from_header(self, display_name: str | None) -> str:
        """The From header: `display_name` (the publication's name) at MAIL_FROM's address;
        MAIL_FROM's own name when no display name is given."""
        # One line whatever the settings hold: a header cannot carry line breaks.
        name = " ".join((display_name or "").split()) or parseaddr(self.mail_from)[0]
        return format_sender(name, self.envelope_from) if name else self.envelope_from


def build_mailer(config: Mapping[str, Any], translations_dir: str | Path) -> Mailer:
    """A `Mailer` from app configuration (`SMTP_URL`, `SMTP_TIMEOUT`, `MAIL_FROM`,
    `MAILBOX_DIR`, `BASE_URL`, `SEND_LEASE_SECONDS`, the `DKIM_*` settings). Raises
    `ValueError` for an unusable `SMTP_URL` and `DkimKeyError` (a `ValueError`) for DKIM
    settings that cannot sign."""
    smtp_url = config.get("SMTP_URL")
    timeout = float(config.get("SMTP_TIMEOUT", 30.0))
    mailbox_dir = Path(config["MAILBOX_DIR"])
    mail_from = str(config.get("MAIL_FROM") or "Readership <newsletter@localhost>")
    unsigned_factory: Callable[[], Sender]
    if smtp_url:
        SmtpSender.from_url(smtp_url, timeout)  # fail at start-up, not at the first email

        def unsigned_factory() -> Sender:
            return SmtpSender.from_url(smtp_url, timeout)
    else:

        def unsigned_factory() -> Sender:
            return MaildirSender(mailbox_dir)

    signer = dkim_signer(config, mail_from)
    sender_factory: Callable[[], Sender] = unsigned_factory
    if signer is not None:
        dkim = signer

        def sender_factory() -> Sender:
            return SigningSender(unsigned_factory(), dkim)

    return Mailer(
        renderer=EmailRenderer(TEMPLATES_DIR, translations_dir),
        mail_from=mail_from,
        base_url=str(config.get("BASE_URL", "")).rstrip("/"),
        sender_factory=sender_factory,
        uses_smtp=bool(smtp_url),
        mailbox_dir=mailbox_dir,
        message_id_domain=address_domain(mail_from),
        lease=lease_terms(config),
        dkim=signer,
    )


def dkim_signer(config: Mapping[str, Any], mail_from: str) -> DkimSigner | None:
    """The signer the `DKIM_*` settings describe, None when `DKIM_PRIVATE_KEY_PATH` is unset.

    `DKIM_DOMAIN` defaults to the domain of `mail_from`'s address (what DMARC aligns with).
    Raises `DkimKeyError` naming the setting at fault: a key without a selector (or the
    reverse), a key file that is missing, unreadable or not a usable RSA key.
    """
    key_path = config.get("DKIM_PRIVATE_KEY_PATH")
    selector = config.get("DKIM_SELECTOR")
    if not key_path:
        if selector or config.get("DKIM_DOMAIN"):
            raise DkimKeyError(
                "DKIM_SELECTOR or DKIM_DOMAIN is set but DKIM_PRIVATE_KEY_PATH is not: "
                "set the key path to sign mail, or unset them"
            )
        return None
    if not selector:
        raise DkimKeyError(
            "DKIM_PRIVATE_KEY_PATH is set but DKIM_SELECTOR is not: set the selector whose "
            "DNS record (<selector>._domainkey.<domain>) holds the public key"
        )
    check_dns_name("DKIM_SELECTOR", str(selector))
    if config.get("DKIM_DOMAIN"):
        domain = check_dns_name("DKIM_DOMAIN", str(config["DKIM_DOMAIN"]))
    else:
        domain = check_dns_name("the domain of MAIL_FROM", address_domain(mail_from))
    try:
        return DkimSigner.from_key_file(str(key_path), selector=str(selector), domain=domain)
    except DkimKeyError as exc:
        raise DkimKeyError(f"DKIM_PRIVATE_KEY_PATH: {exc}") from None


def init_app(app: Flask) -> None:
    """Build the app's `Mailer` once."""
    translations = Path(app.root_path) / "translations"
    app.extensions["mailer"] = build_mailer(app.config, translations)


def get_mailer(app: Flask | None = None) -> Mailer:
    """The current app's `Mailer`."""
    return (app or current_app).extensions["mailer"]
