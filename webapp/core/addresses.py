"""Email address normalisation: one spelling per mailbox, so the list dedupes by address.

`normalise_email` is email-validator's syntax check (no DNS) followed by lower-casing. CSV
imports call it for every row, and email-validator costs ~50 µs a call, so plain ASCII
addresses that obviously pass are recognised by a strict regex first; anything the regex
does not vouch for goes through email-validator (a test checks that the fast path never
accepts what email-validator refuses).
"""

from __future__ import annotations

import hashlib
import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

#: RFC 5321 limits.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_LENGTH = 64

# Dot-atoms of common characters; domain labels of letters, digits and inner single hyphens;
# an alphabetic top-level label. Punycode ("xn--") and other "--" labels take the slow path.
_FAST = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9]|-(?!-)){0,62}(?<!-)\.)+[a-z]{2,63}"
)
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)


class InvalidEmail(ValueError):
    """An address that cannot receive mail as written; `str()` is a reader-facing reason."""


def normalise_email(raw: str) -> str:
    """The canonical, lower-cased form of `raw`; raises `InvalidEmail` when it is not valid.

    Surrounding whitespace is ignored. No DNS lookups are made (signups must answer fast and
    the same way for every address; double opt-in proves the mailbox).
    """
    candidate = (raw or "").strip().lower()
    if not candidate:
        raise InvalidEmail("empty")
    if len(candidate) > MAX_ADDRESS_LENGTH:
        raise InvalidEmail("too long")
    if _FAST.fullmatch(candidate) and _fast_path_ok(candidate):
        return candidate
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    except (ValueError, UnicodeError) as exc:  # hostile input that trips the IDNA codec
        raise InvalidEmail("not an email address") from exc
    normalised = result.normalized.lower()
    if len(normalised) > MAX_ADDRESS_LENGTH:
        raise InvalidEmail("too long")
    return normalised


def _fast_path_ok(candidate: str) -> bool:
    local, _, domain = candidate.rpartition("@")
    if len(local) > MAX_LOCAL_LENGTH or len(domain) > 253:
        return False
    labels = domain.split(".")
    # Special-use names (.test, .local, .invalid...) are refused by email-validator.
    return labels[-1] not in _SPECIAL and domain not in _SPECIAL


def email_fingerprint(email: str, secret: str) -> str:
    """A short keyed hash of an address: ties a signed link to the address it was sent to,
    and names an erased person in the audit log without keeping the address."""
    key = secret.encode()[:64]
    return hashlib.blake2b(email.encode(), key=key, digest_size=8).hexdigest()


def keyed_hash(value: str, secret: str) -> str:
    """A keyed hash of a request detail (User-Agent) for consent records."""
    key = secret.encode()[:64]
    return hashlib.blake2b(value.encode("utf-8", "replace"), key=key, digest_size=16).hexdigest()
