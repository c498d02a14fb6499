"""Amazon SNS messages, checked as AWS documents it: the signing certificate comes only from
an SNS host over HTTPS, and the signature (version 1: SHA1withRSA, version 2:
SHA256withRSA) covers the message's fields in AWS's canonical order. Amazon SES posts its
bounces and complaints through an SNS topic."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.request
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: SNS signs only from hosts like sns.eu-west-1.amazonaws.com (and .com.cn in China).
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
#: The fields signed, in order, for each message type (AWS: "Verifying the signatures of
#: Amazon SNS messages"); `Subject` only when the message has one.
SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}
#: A certificate is a few kilobytes; never read more than this from anywhere.
MAX_CERT_BYTES = 64 * 1024

Fetch = Callable[[str], bytes]


class SnsError(ValueError):
    """The message is not a genuine SNS message for us; the text says why."""


def sns_url_allowed(url: str, test_hosts: Collection[str] = ()) -> bool:
    """An https URL on an SNS host. `test_hosts` (a test setting, never read from the
    environment) also lets http://host:port/ through, for a server the tests run."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and SNS_HOST.match(host) and not parts.username:
        return True
    return parts.scheme in ("http", "https") and host in test_hosts


def fetch_url(url: str) -> bytes:
    """GET `url` (already checked by `sns_url_allowed`), at most `MAX_CERT_BYTES`."""
    # The caller checked the scheme and host (`sns_url_allowed`): no file: or other scheme.
    request = urllib.request.Request(url, headers={"User-Agent": "Readership email events"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: bytes = response.read(MAX_CERT_BYTES + 1)
    if len(body) > MAX_CERT_BYTES:
        raise SnsError("the signing certificate is too large")
    return body


def verify_sns_message(
    message: Mapping[str, Any],
    *,
    fetch: Fetch,
    certificates: MutableMapping[str, bytes],
    test_hosts: Collection[str] = (),
) -> None:
    """Raise `SnsError` unless `message` carries a valid SNS signature. Certificates are
    fetched once per URL and kept in `certificates`."""
    kind = message.get("Type")
    fields = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise SnsError("not an SNS message type we know")
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsError("unknown SignatureVersion")
    cert_url = message.get("SigningCertURL")
    if not isinstance(cert_url, str) or not sns_url_allowed(cert_url, test_hosts):
        raise SnsError("the signing certificate is not on an SNS host")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsError("the signature is not base64") from exc
    if cert_url not in certificates:
        try:
            certificates[cert_url] = fetch(cert_url)
        except (OSError, SnsError) as exc:
            raise SnsError(f"the signing certificate could not be fetched: {exc}") from exc
    try:
        key = x509.load_pem_x509_certificate(certificates[cert_url]).public_key()
    except ValueError as exc:
        raise SnsError("the signing certificate is not a PEM certificate") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsError("the signing certificate has no RSA key")
    try:
        key.verify(signature, canonical_text(message, fields), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsError("wrong signature") from exc


def canonical_text(message: Mapping[str, Any], fields: tuple[str, ...]) -> bytes:
    """What SNS signs: each present field's name and value on their own lines."""
    lines = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsError(f"{name} is missing")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()
