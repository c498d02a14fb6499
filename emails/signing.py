"""DKIM signing of finished messages, for a relay that does not sign with our domain.

`DkimSigner` holds the key, selector and domain (the app builds it from its settings);
`SigningSender` wraps any `Sender` and signs each message once, just before it is handed
over, so transactional mail and digests are signed in the same place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import dkim
from dkim.crypto import parse_pem_private_key

from emails.senders import Refused, Sender

#: The header fields receivers check, signed when the message has them (in this order).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)

#: Receivers ignore signatures made with shorter RSA keys (RFC 8301).
MIN_KEY_BITS = 1024

# A selector or domain is a dot-separated DNS name; anything else would break the header.
_DNS_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_-]+)*$")
_LINE_END = re.compile(rb"\r?\n")


class DkimKeyError(ValueError):
    """The DKIM settings cannot sign: a missing or unreadable key file, a key that is not an
    unencrypted RSA key in PEM, a key too short, or a bad selector or domain."""


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages with rsa-sha256 and relaxed/relaxed canonicalisation.

    Building one checks everything a send would need (raises `DkimKeyError`), so a bad key
    is found at start-up, never at the first message.
    """

    #: The selector: the key is published at `<selector>._domainkey.<domain>`.
    selector: str
    #: The signing domain (`d=`); DMARC wants it to be the From address's domain.
    domain: str
    #: The RSA private key in PEM (PKCS#1 or PKCS#8, unencrypted).
    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_dns_name("the DKIM selector", self.selector)
        check_dns_name("the DKIM domain", self.domain)
        # dkimpy finds the PEM body only between LF line ends.
        key = self.private_key.replace(b"\r\n", b"\n")
        object.__setattr__(self, "private_key", key)
        try:
            parsed = parse_pem_private_key(key)
            bits = int(parsed["modulus"]).bit_length()
        except Exception as exc:  # dkimpy's ASN.1 reader raises assorted errors on garbage
            raise DkimKeyError(
                "the DKIM key is not an unencrypted RSA private key in PEM "
                "(make one with `openssl genrsa -out dkim.pem 2048`)"
            ) from exc
        if bits < MIN_KEY_BITS:
            raise DkimKeyError(f"the DKIM key has {bits} bits; receivers want {MIN_KEY_BITS}+")
        self.sign(b"From: check@example.org\r\nSubject: key check\r\n\r\nok\r\n")

    @classmethod
    def from_key_file(cls, path: str | Path, *, selector: str, domain: str) -> DkimSigner:
        """A signer with the key read from `path`; `DkimKeyError` names the file when it is
        missing, unreadable or not a usable key."""
        check_dns_name("the DKIM selector", selector)
        check_dns_name("the DKIM domain", domain)
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise DkimKeyError(
                f"cannot read the DKIM key file {path}: {exc.strerror or exc}"
            ) from exc
        try:
            return cls(selector=selector, domain=domain, private_key=key)
        except DkimKeyError as exc:
            raise DkimKeyError(f"{path}: {exc}") from None

    def sign(self, message: bytes) -> bytes:
        """`message` (CRLF bytes, headers final) with a `DKIM-Signature` header in front,
        covering those of `SIGNED_HEADERS` it has, and the body."""
        present = _header_names(message)
        include = [name.encode("ascii") for name in SIGNED_HEADERS if name.lower() in present]
        signature = dkim.sign(
            message,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=b"rsa-sha256",
            include_headers=include,
        )
        return bytes(signature) + message


def check_dns_name(what: str, value: str) -> str:
    """`value` when it is a DNS name (what a selector and a domain must be), else
    `DkimKeyError` saying `what` is wrong."""
    if not _DNS_NAME.match(value or ""):
        raise DkimKeyError(f"{what} {value!r} is not a DNS name")
    return value


def _header_names(message: bytes) -> set[str]:
    """The lower-cased names of the header fields of `message`."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
    names = set()
    for line in _LINE_END.split(head):
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation
        name, colon, _value = line.partition(b":")
        if colon:
            names.add(name.strip().decode("ascii", "replace").lower())
    return names


class SigningSender:
    """A `Sender` that signs each message with `signer`, then lets `inner` send it."""

    def __init__(self, inner: Sender, signer: DkimSigner) -> None:
        self.inner = inner
        self.signer = signer

    def open(self) -> None:
        """Open the inner sender."""
        self.inner.open()

    def send(self, from_addr: str, to_addrs: Sequence[str], message_bytes: bytes) -> Refused:
        """Sign once, then send as the inner sender does (same failures, same result)."""
        return self.inner.send(from_addr, to_addrs, self.signer.sign(message_bytes))

    def close(self) -> None:
        """Close the inner sender."""
        self.inner.close()

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
