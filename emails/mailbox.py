"""Reading the local Maildir that `MaildirSender` writes, for the staff mailbox viewer."""

from __future__ import annotations

import email.policy
import mailbox
import math
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from pathlib import Path

# Python's Maildir names new files "<seconds>.M<microseconds>P<pid>Q<counter>.<host>".
_KEY_TIME = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)\.")


@dataclass(frozen=True)
class MailboxEntry:
    """One message as a list row shows it."""

    key: str
    subject: str
    to: str
    sender: str
    date: datetime | None


@dataclass(frozen=True)
class MailboxPage:
    """One page of the list, newest first."""

    entries: list[MailboxEntry]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1, so an empty mailbox has page 1 of 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True)
class MailboxMessage:
    """One message with its parts."""

    key: str
    subject: str
    to: str
    sender: str
    date: datetime | None
    html: str | None
    text: str | None
    raw: bytes

    @property
    def raw_text(self) -> str:
        """The raw source as text (undecodable bytes shown as replacement characters)."""
        return self.raw.decode("utf-8", "replace")

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header in order, decoded."""
        parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(self.raw)
        return [(name, str(value)) for name, value in parsed.items()]


def _sort_key(key: str) -> tuple[int, int, int, str]:
    match = _KEY_TIME.match(key)
    if not match:
        return (0, 0, 0, key)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)), key)


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return str(value) if value is not None else ""


def _date(message: EmailMessage) -> datetime | None:
    value = message.get("Date")
    try:
        return getattr(value, "datetime", None)
    except (TypeError, ValueError):  # a malformed Date header
        return None


class LocalMailbox:
    """Read access to a Maildir folder; a folder that does not exist yet is an empty mailbox."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _box(self) -> mailbox.Maildir | None:
        if not (self.path / "cur").is_dir():
            return None
        return mailbox.Maildir(self.path, create=False)

    def keys_newest_first(self) -> list[str]:
        """Every message key, the newest delivery first."""
        box = self._box()
        if box is None:
            return []
        return sorted(box.keys(), key=_sort_key, reverse=True)

    def count(self) -> int:
        """How many messages there are."""
        box = self._box()
        return 0 if box is None else len(box)

    def list(self, page: int = 1, per_page: int = 25, *, to: str | None = None) -> MailboxPage:
        """One page of messages, newest first; pages past the end show the last page.

        With `to`, only the messages delivered or addressed to that address (any case) are
        listed and counted: what staff who may not read everyone's mail see.
        """
        per_page = max(1, per_page)
        box = self._box()
        keys = self.keys_newest_first()
        if to is not None:
            keys = [key for key in keys if self._is_addressed_to(box, key, to)]
        pages = max(1, math.ceil(len(keys) / per_page))
        page = min(max(1, page), pages)
        entries: list[MailboxEntry] = []
        for key in keys[(page - 1) * per_page : page * per_page]:
            assert box is not None
            headers = _read_headers(box, key)
            if headers is None:  # removed between listing and reading
                continue
            entries.append(
                MailboxEntry(
                    key=key,
                    subject=_header(headers, "Subject"),
                    to=_header(headers, "To"),
                    sender=_header(headers, "From"),
                    date=_date(headers),
                )
            )
        return MailboxPage(entries, page, per_page, len(keys))

    def is_addressed_to(self, key: str, address: str) -> bool:
        """True when message `key` was delivered or addressed to `address` (any case)."""
        return self._is_addressed_to(self._box(), key, address)

    @staticmethod
    def _is_addressed_to(box: mailbox.Maildir | None, key: str, address: str) -> bool:
        if box is None:
            return False
        headers = _read_headers(box, key)
        return headers is not None and _addressed_to(headers, address)

    def get(self, key: str) -> MailboxMessage:
        """One message with its HTML and text parts; `KeyError` when there is no such key."""
        box = self._box()
        if box is None:
            raise KeyError(key)
        try:
            raw = box.get_bytes(key)
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        html_part = parsed.get_body(preferencelist=("html",))
        text_part = parsed.get_body(preferencelist=("plain",))
        return MailboxMessage(
            key=key,
            subject=_header(parsed, "Subject"),
            to=_header(parsed, "To"),
            sender=_header(parsed, "From"),
            date=_date(parsed),
            html=_content(html_part),
            text=_content(text_part),
            raw=raw,
        )

    def remove_messages_to(self, address: str) -> int:
        """Delete every message addressed to `address` (erasure of a person); returns how many."""
        box = self._box()
        if box is None:
            return 0
        removed = 0
        for key in list(box.keys()):
            headers = _read_headers(box, key)
            if headers is not None and _addressed_to(headers, address):
                box.discard(key)
                removed += 1
        return removed


def _read_headers(box: mailbox.Maildir, key: str) -> EmailMessage | None:
    """The headers of message `key`, or None when it is gone."""
    try:
        with box.get_file(key) as handle:
            return (
                BytesHeaderParser(policy=email.policy.default).parse(handle)  # type: ignore[arg-type]
            )
    except (KeyError, FileNotFoundError):
        return None


def _addressed_to(headers: EmailMessage, address: str) -> bool:
    """True when the envelope (`Delivered-To`) or the `To` header names `address`."""
    wanted = address.strip().lower()
    if not wanted:
        return False
    fields = [str(v) for v in headers.get_all("Delivered-To", [])]
    fields += [str(v) for v in headers.get_all("To", [])]
    return any(addr.strip().lower() == wanted for _name, addr in getaddresses(fields))


def _content(part: object) -> str | None:
    if part is None:
        return None
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)  # type: ignore[attr-defined]
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
