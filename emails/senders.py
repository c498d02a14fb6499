"""Where finished messages go: an SMTP server, or a local Maildir staff read in the browser.

Both senders keep the `Sender` protocol: `open()`, `send(...)` any number of times over one
connection, `close()`; or use them as a context manager. Failures are reported as
`TemporaryFailure` (try again later: 4xx replies, connection errors, timeouts) or
`PermanentFailure` (5xx: this message to this address will never go).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import mailbox
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("readership.emails")

#: Recipients a server refused while accepting the message for others: address -> (code, text).
Refused = Mapping[str, tuple[int, str]]


class DeliveryError(Exception):
    """A message could not be handed over; `code` is the SMTP reply code when there was one."""

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(f"{code} {text}" if code else text)
        self.code = code
        self.text = text


class TemporaryFailure(DeliveryError):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout, a TLS error."""


class PermanentFailure(DeliveryError):
    """A 5xx reply about this message or recipient: sending it again will not help."""


@runtime_checkable
class Sender(Protocol):
    """Hands messages to a mail system, reusing one connection for many sends."""

    def open(self) -> None:
        """Connect (a no-op when already connected)."""
        ...

    def send(self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes) -> Refused:
        """Deliver one message (CRLF bytes); returns the recipients refused while others got it.

        Raises `TemporaryFailure` or `PermanentFailure` when nobody got it.
        """
        ...

    def close(self) -> None:
        """Disconnect politely; safe to call twice."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _ContextManager:
    def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _failure(code: int, text: str | bytes) -> DeliveryError:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if 500 <= code < 600:
        return PermanentFailure(code, message)
    return TemporaryFailure(code, message)


class SmtpSender(_ContextManager):
    """Sends over SMTP: plain with STARTTLS when offered (or required), or implicit TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        implicit_tls: bool = False,
        starttls: str = "auto",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if starttls not in {"auto", "required", "never"}:
            raise ValueError("starttls must be auto, required or never")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.timeout = timeout
        self.ssl_context = ssl_context
        # socket.getfqdn() (smtplib's default) can wait seconds on reverse DNS.
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_url(
        cls, url: str, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> SmtpSender:
        """A sender for `smtp://user:pass@host:port` or `smtps://...` (implicit TLS).

        User name and password are percent-decoded. `?starttls=required` refuses to send
        without TLS, `?starttls=never` never upgrades; the default upgrades when offered.
        Default ports: 25 for smtp, 465 for smtps. Raises `ValueError` for other URLs (the
        message never repeats the password).
        """
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError("SMTP_URL has an invalid port") from exc
        if not parts.hostname:
            raise ValueError("SMTP_URL has no host")
        query = parse_qs(parts.query)
        starttls = (query.get("starttls") or ["auto"])[0].lower()
        starttls = {"true": "required", "1": "required", "false": "never", "0": "never"}.get(
            starttls, starttls
        )
        implicit = parts.scheme == "smtps"
        return cls(
            parts.hostname,
            port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            implicit_tls=implicit,
            starttls="never" if implicit else starttls,
            timeout=timeout,
            ssl_context=ssl_context,
        )

    @property
    def connected(self) -> bool:
        """True while a connection is open (it may still have been dropped by the server)."""
        return self._smtp is not None and getattr(self._smtp, "sock", None) is not None

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def open(self) -> None:
        """Connect, upgrade to TLS, log in. Any failure is a `TemporaryFailure`: it is about
        the server or our settings, never about a message."""
        if self.connected:
            return
        self._smtp = None
        smtp: smtplib.SMTP | None = None
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=self._context(),
                )
            else:
                smtp = smtplib.SMTP(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                )
            smtp.ehlo()
            if not self.implicit_tls and self.starttls != "never":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                elif self.starttls == "required":
                    raise TemporaryFailure(None, "the SMTP server does not offer STARTTLS")
            if self.username:
                self._login(smtp)
        except DeliveryError:
            _quietly_close(smtp)
            raise
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            raise TemporaryFailure(exc.smtp_code, _text(exc.smtp_error)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            _quietly_close(smtp)
            where = f"{self.host}:{self.port}"
            raise TemporaryFailure(None, f"cannot connect to {where}: {exc}") from exc
        self._smtp = smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        user, password = self.username or "", self.password or ""
        mechanisms = str(smtp.esmtp_features.get("auth", "")).upper().split()
        if "PLAIN" in mechanisms:
            # One try, UTF-8 credentials (RFC 4616). smtplib.login() encodes as ASCII and,
            # after a refusal, tries further mechanisms some servers then wait on.
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
            if code != 235:
                raise smtplib.SMTPAuthenticationError(code, reply)
            return
        smtp.login(user, password)

    def send(self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes) -> Refused:
        """Send over the open connection (opening it first when needed).

        A connection the server dropped since the last message is reopened once; failing
        again raises `TemporaryFailure`. Replies are mapped: 5xx -> `PermanentFailure`,
        anything else -> `TemporaryFailure`. A refused sender address is always temporary:
        it is our configuration, not the recipient.
        """
        recipients = list(to_addrs)
        for attempt in (1, 2):
            reused = self.connected
            self.open()
            assert self._smtp is not None
            try:
                refused = self._smtp.sendmail(from_addr, recipients, message_bytes)
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                codes = list(exc.recipients.values())
                if codes and all(500 <= code < 600 for code, _ in codes):
                    first_code, first_text = codes[0]
                    raise PermanentFailure(first_code, _text(first_text)) from exc
                fallback: tuple[int | None, bytes] = (None, b"")
                soft_code, soft_text = next(
                    ((c, t) for c, t in codes if not 500 <= c < 600), fallback
                )
                raise TemporaryFailure(soft_code, _text(soft_text)) from exc
            except smtplib.SMTPSenderRefused as exc:
                self._reset()
                raise TemporaryFailure(exc.smtp_code, _text(exc.smtp_error)) from exc
            except smtplib.SMTPResponseException as exc:
                self._reset()
                raise _failure(exc.smtp_code, exc.smtp_error) from exc
            except (OSError, smtplib.SMTPException) as exc:
                # Dropped connection (idle timeout on the server, network blip).
                self._drop()
                if attempt == 1 and reused:
                    log.info("SMTP connection to %s lost (%s); reconnecting", self.host, exc)
                    continue
                raise TemporaryFailure(None, f"SMTP connection failed: {exc}") from exc
            return {addr: (code, _text(text)) for addr, (code, text) in refused.items()}
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        # After a refusal the connection stays usable unless the server closed it (421).
        if self._smtp is None or getattr(self._smtp, "sock", None) is None:
            self._drop()
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        _quietly_close(self._smtp)
        self._smtp = None

    def close(self) -> None:
        """Say QUIT and disconnect; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if getattr(smtp, "sock", None) is not None:
                smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            _quietly_close(smtp)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    with contextlib.suppress(OSError):
        smtp.close()


class MaildirSender(_ContextManager):
    """Delivers into a local Maildir folder (used when no SMTP server is configured)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._box: mailbox.Maildir | None = None

    def open(self) -> None:
        """Create the Maildir folders when missing."""
        if self._box is None:
            try:
                self._box = mailbox.Maildir(self.path, create=True)
            except OSError as exc:
                raise TemporaryFailure(None, f"cannot open mailbox {self.path}: {exc}") from exc

    def send(self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes) -> Refused:
        """Store the message as a new file, with the envelope written in front as a local
        delivery agent would (`Return-Path`, `Delivered-To`)."""
        if any(c in address for address in [from_addr, *to_addrs] for c in "\r\n\x00"):
            raise PermanentFailure(None, "line break in an envelope address")
        self.open()
        assert self._box is not None
        envelope = f"Return-Path: <{from_addr}>\r\n" + "".join(
            f"Delivered-To: {address}\r\n" for address in to_addrs
        )
        try:
            self._box.add(envelope.encode("utf-8") + message_bytes)
        except OSError as exc:
            raise TemporaryFailure(None, f"cannot write to mailbox {self.path}: {exc}") from exc
        return {}

    def close(self) -> None:
        """Nothing to release; kept for the protocol."""
        self._box = None
