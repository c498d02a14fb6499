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
from typing import cast

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

    def list(self, page: int = 1, per_page: int = 25) -> MailboxPage:
        """One page of messages, newest first; pages past the end show the last page."""
        per_page = max(1, per_page)
        keys = self.keys_newest_first()
        pages = max(1, math.ceil(len(keys) / per_page))
        page = min(max(1, page), pages)
        box = self._box()
        entries: list[MailboxEntry] = []
        for key in keys[(page - 1) * per_page : page * per_page]:
            assert box is not None
            try:
                with box.get_file(key) as handle:
                    headers = cast(
                        EmailMessage,
                        BytesHeaderParser(policy=email.policy.default).parse(handle),  # type: ignore[arg-type]
                    )
            except (KeyError, FileNotFoundError):  # removed between listing and reading
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

    def get(self, key: str) -> MailboxMessage:
        """One message with its HTML and text parts; `KeyError` when there is no such key."""
        box = self._box()
        if box is None:
            raise KeyError(key)
        try:
            raw = box.get_bytes(key)
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        parsed = cast(EmailMessage, BytesParser(policy=email.policy.default).parsebytes(raw))
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
        wanted = address.strip().lower()
        removed = 0
        for key in list(box.keys()):
            try:
                with box.get_file(key) as handle:
                    headers = BytesHeaderParser(policy=email.policy.default).parse(handle)  # type: ignore[arg-type]
            except (KeyError, FileNotFoundError):
                continue
            fields = [str(v) for v in headers.get_all("Delivered-To", [])]
            fields += [str(v) for v in headers.get_all("To", [])]
            if any(addr.lower() == wanted for _name, addr in getaddresses(fields)):
                box.discard(key)
                removed += 1
        return removed


def _content(part: object) -> str | None:
    if part is None:
        return None
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)  # type: ignore[attr-defined]
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
