"""Turning a rendered email into a MIME message ready for SMTP."""

from __future__ import annotations

import base64
import email.policy
import functools
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr

from emails.rendering import RenderedEmail

#: Headers the message builder writes itself; callers may not pass them in `headers`.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


class HeaderError(ValueError):
    """A header value that would break the message (line breaks, reserved names)."""


def _one_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderError(f"{name} may not contain line breaks")
    return value


def address_domain(address: str, default: str = "localhost") -> str:
    """The domain part of an address like `Name <user@example.org>` (`default` without one)."""
    _name, addr = parseaddr(address)
    _local, at, domain = addr.rpartition("@")
    return domain if at and domain else default


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    headers: Mapping[str, str] | None,
    message_id_domain: str,
    date: datetime | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML), UTF-8, with `Message-ID` and
    `Date`.

    `headers` adds more (e.g. `List-Unsubscribe`, `List-Unsubscribe-Post`, `List-Id`); a
    reserved header name or any line break in a value raises `HeaderError`, so a hostile
    value cannot smuggle headers in. Serialise with `message_bytes()` (CRLF line ends).
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = _one_line("From", sender)
    message["To"] = _one_line("To", to)
    message["Subject"] = _one_line("Subject", rendered.subject)
    message["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    message["Message-ID"] = _message_id(message_id, message_id_domain)
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    # After the parts exist: making the message multipart moves Content-* headers (such as
    # Content-Language) into the first part, and they belong to the whole message.
    for name, value in (headers or {}).items():
        if name.lower() in RESERVED_HEADERS:
            raise HeaderError(f"{name} is set by the message builder")
        message[_one_line("header name", name)] = _one_line(name, value)
    return message


def _message_id(given: str | None, domain: str) -> str:
    """`given` (a caller's own `<...@domain>`, so a relay's report can be tied back to what
    was sent), or a random one on `domain`."""
    if given is not None:
        value = _one_line("Message-ID", given)
        if not (value.startswith("<") and value.endswith(">") and "@" in value):
            raise HeaderError("a Message-ID looks like <left@domain>")
        return value
    return make_msgid(domain=_one_line("Message-ID domain", domain))


def message_bytes(message: EmailMessage) -> bytes:
    """The message as SMTP wants it: CRLF line ends, never a bare LF."""
    return message.as_bytes(policy=email.policy.SMTP)


def format_sender(display_name: str, address: str) -> str:
    """`"Display Name" <address>` with the name encoded as the headers need it."""
    _name, addr = parseaddr(address)
    username, _, domain = (addr or address).rpartition("@")
    return str(Address(display_name=display_name.strip(), username=username, domain=domain))


# --- Fast path for bulk sending -------------------------------------------------------------

#: Headers holding addresses (their display names are encoded, not the addresses).
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})


def build_message_bytes(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    headers: Mapping[str, str] | None,
    message_id_domain: str,
    date: datetime | None = None,
    message_id: str | None = None,
) -> bytes:
    """The same message as `message_bytes(build_message(...))`, written directly as bytes.

    Same headers and parts (text, then HTML, UTF-8); the parts are base64-encoded and the
    boundary differs. About twenty times faster than the `email` package, which matters when
    a digest goes to many thousands of people. Checks headers like `build_message` (raises
    `HeaderError`); addresses that are not ASCII fall back to the `email` package.
    """
    values: list[tuple[str, str]] = [
        ("From", _one_line("From", sender)),
        ("To", _one_line("To", to)),
        ("Subject", _one_line("Subject", rendered.subject)),
        ("Date", format_datetime((date or datetime.now(UTC)).astimezone(UTC))),
        ("Message-ID", _message_id(message_id, message_id_domain)),
    ]
    for name, value in (headers or {}).items():
        if name.lower() in RESERVED_HEADERS:
            raise HeaderError(f"{name} is set by the message builder")
        values.append((_one_line("header name", name), _one_line(name, value)))
    lines: list[str] = []
    for name, value in values:
        encoded = _encode_header(name, value)
        if encoded is None:  # an address the fast path cannot write
            return message_bytes(
                build_message(
                    rendered,
                    sender=sender,
                    to=to,
                    headers=headers,
                    message_id_domain=message_id_domain,
                    date=date,
                    message_id=message_id,
                )
            )
        lines.append(encoded)
    boundary = "=_" + secrets.token_hex(16)  # "=" and "_" never start a base64 line
    head = "\r\n".join(lines) + (
        f'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"'
        "\r\n\r\n"
    )
    return b"".join(
        [
            head.encode("ascii"),
            _part(boundary, "plain", rendered.text),
            _part(boundary, "html", rendered.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )


def _part(boundary: str, subtype: str, content: str) -> bytes:
    # Text travels in canonical form (CRLF), ending with a line break like the email
    # package writes it, then base64 in lines of 76 characters.
    if not content.endswith("\n"):
        content += "\n"
    canonical = content.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    # One b64encode cut into lines of 76: encodebytes() calls into C once per 57 bytes.
    encoded = base64.b64encode(canonical)
    body = b"\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"
    head = (
        f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode("ascii") + body


def _encoded_words(text: str) -> str:
    """RFC 2047 encoded words (base64, UTF-8), each short enough for a 78-column line."""
    words: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 45:  # 45 bytes -> 60 base64 characters per word
            words.append(chunk)
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _encode_unstructured(value: str) -> str:
    """Only runs of non-ASCII words become encoded words, so `<list.id>` or a URL in the
    same header stays readable to programs."""
    out: list[str] = []
    run: list[str] = []
    for token in value.split(" "):
        if token.isascii():
            if run:
                out.append(_encoded_words(" ".join(run)))
                run = []
            out.append(token)
        else:
            run.append(token)
    if run:
        out.append(_encoded_words(" ".join(run)))
    return " ".join(out)


_BARE_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")


@functools.lru_cache(maxsize=256)
def _encode_header(name: str, value: str) -> str | None:
    if name.lower() in _ADDRESS_HEADERS and _BARE_ADDRESS.match(value):
        # A bare ASCII address (a digest's To): nothing to parse or encode.
        line = f"{name}: {value}"
    elif name.lower() in _ADDRESS_HEADERS:
        written = []
        for display, address in getaddresses([value]):
            if not address.isascii():
                return None
            if display and not display.isascii():
                written.append(f"{_encoded_words(display)} <{address}>")
            else:
                written.append(formataddr((display, address)))
        line = f"{name}: {', '.join(written)}"
    elif value.isascii():
        line = f"{name}: {value}"
    else:
        line = f"{name}: {_encode_unstructured(value)}"
    if max(len(part) for part in line.split("\r\n")) > 998:
        return None
    return line
