"""DKIM signing: signatures dkimpy verifies, tampering caught, and settings checked at start-up."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import dkim
import pytest
from flask import Flask
from sqlalchemy.orm import Session

from emails import MaildirSender, RenderedEmail, Sender
from emails.message import build_message, build_message_bytes, message_bytes
from emails.signing import DkimKeyError, DkimSigner, SigningSender
from tests.emails.conftest import DkimKey, make_rsa_key
from tests.helpers.smtp import SmtpSink
from tests.outbox.conftest import queue
from webapp import create_app
from webapp.config import load_config
from webapp.core.clock import FrozenClock
from webapp.db import get_database
from webapp.outbox.gateway import build_mailer, get_mailer
from webapp.outbox.services import deliver_now

RENDERED = RenderedEmail(
    subject="Ваш выпуск: the week in review",
    html="<p>Hello, reader.</p>\n<p>Второй абзац.</p>",
    text="Hello, reader.\n\nВторой абзац.\n",
)
BULK_HEADERS = {
    "List-Unsubscribe": "<https://readers.test.example/en/unsubscribe/TOKEN>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "List-Id": "Digest <digest-en.test.example>",
}


def signer_for(key: DkimKey, selector: str = "rs2026", domain: str = "test.example") -> DkimSigner:
    return DkimSigner.from_key_file(key.path, selector=selector, domain=domain)


def a_message(headers: dict[str, str] | None = None) -> bytes:
    return build_message_bytes(
        RENDERED,
        sender="The Test Review <newsletter@test.example>",
        to="reader@example.org",
        headers=BULK_HEADERS if headers is None else headers,
        message_id_domain="test.example",
    )


def tags(signed: bytes) -> dict[str, str]:
    """The tags of the first DKIM-Signature header, whitespace removed."""
    head = signed.split(b"\r\n\r\n", 1)[0].decode()
    match = re.match(r"DKIM-Signature:(.*?)\r\n(?! )", head, re.S)
    assert match, "the signature is not the first header"
    value = re.sub(r"\s+", "", match.group(1))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def test_a_signed_message_verifies_with_the_published_key(dkim_key: DkimKey) -> None:
    signed = signer_for(dkim_key).sign(a_message())

    assert dkim.verify(signed, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))
    found = tags(signed)
    assert found["a"] == "rsa-sha256" and found["c"] == "relaxed/relaxed"
    assert found["d"] == "test.example" and found["s"] == "rs2026"
    assert found["h"].split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    ]
    assert signed.count(b"DKIM-Signature:") == 1
    assert re.search(rb"(?<!\r)\n", signed) is None, "bare LF in the signed message"


def test_headers_the_message_lacks_are_not_signed(dkim_key: DkimKey) -> None:
    # Transactional mail has no List-Unsubscribe; a signed absent header would be a lie.
    signed = signer_for(dkim_key).sign(a_message(headers={"Content-Language": "en"}))

    assert "list-unsubscribe" not in tags(signed)["h"]
    assert dkim.verify(signed, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


def test_the_email_package_s_message_verifies_too(dkim_key: DkimKey) -> None:
    # build_message_bytes falls back to the email package for addresses it cannot write.
    message = message_bytes(
        build_message(
            RENDERED,
            sender="Обзор <newsletter@test.example>",
            to="reader@example.org",
            headers=BULK_HEADERS,
            message_id_domain="test.example",
        )
    )
    signed = signer_for(dkim_key).sign(message)
    assert dkim.verify(signed, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: ", b"Subject: Re: "),
        (b"To: reader@example.org", b"To: someone@example.org"),
        (b"/unsubscribe/TOKEN", b"/unsubscribe/OTHER"),
        (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click"),
        (b"\r\n\r\n--", b"\r\n\r\nAn added line\r\n--"),  # the body
    ],
)
def test_a_message_altered_after_signing_fails(dkim_key: DkimKey, old: bytes, new: bytes) -> None:
    signed = signer_for(dkim_key).sign(a_message())
    assert old in signed
    altered = signed.replace(old, new, 1)

    assert not dkim.verify(altered, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


def test_relaxed_canonicalisation_survives_a_relay_refolding_headers(dkim_key: DkimKey) -> None:
    signed = signer_for(dkim_key).sign(a_message())
    refolded = signed.replace(b"Subject: ", b"subject:   ", 1).replace(
        b"List-Unsubscribe-Post: ", b"List-Unsubscribe-Post:\r\n\t", 1
    )

    assert dkim.verify(refolded, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


def test_another_key_or_selector_does_not_verify(dkim_key: DkimKey, tmp_path: Path) -> None:
    other = make_rsa_key(tmp_path / "other.pem", bits=1024)
    signed = DkimSigner.from_key_file(other.path, selector="rs2026", domain="test.example").sign(
        a_message()
    )

    assert not dkim.verify(signed, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))
    assert not dkim.verify(signed, dnsfunc=other.dnsfunc("another", "test.example"))
    assert dkim.verify(signed, dnsfunc=other.dnsfunc("rs2026", "test.example"))


def test_the_signing_sender_keeps_the_protocol_and_signs_what_it_stores(
    dkim_key: DkimKey, tmp_path: Path
) -> None:
    sender = SigningSender(MaildirSender(tmp_path / "box"), signer_for(dkim_key))
    assert isinstance(sender, Sender)
    with sender:
        assert sender.send("newsletter@test.example", ["reader@example.org"], a_message()) == {}

    (stored,) = [path.read_bytes() for path in (tmp_path / "box" / "new").iterdir()]
    # The envelope lines the mailbox writes in front are not signed; the rest verifies.
    assert stored.startswith(b"Return-Path: <newsletter@test.example>\r\n")
    assert stored.count(b"DKIM-Signature:") == 1
    assert dkim.verify(stored, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


def test_a_crlf_key_file_is_read(dkim_key: DkimKey, tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.pem"
    crlf.write_bytes(dkim_key.path.read_bytes().replace(b"\n", b"\r\n"))
    signed = DkimSigner.from_key_file(crlf, selector="rs2026", domain="test.example").sign(
        a_message()
    )
    assert dkim.verify(signed, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))


def test_the_private_key_is_not_in_the_repr(dkim_key: DkimKey) -> None:
    assert "PRIVATE" not in repr(signer_for(dkim_key))


# --- Bad keys and settings: a clear error when the signer is built --------------------------


def _encrypted_key(key: DkimKey, path: Path) -> Path:
    subprocess.run(
        ["openssl", "pkey", "-in", str(key.path), "-out", str(path), "-aes256"]
        + ["-passout", "pass:secret"],
        check=True,
        capture_output=True,
    )
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda key, tmp: tmp / "missing.pem", r"cannot read the DKIM key file .*missing\.pem"),
        (lambda key, tmp: tmp, r"cannot read the DKIM key file"),  # a folder
        (
            lambda key, tmp: _write(tmp / "junk.pem", b"not a key\n"),
            r"junk\.pem: the DKIM key is not an unencrypted RSA private key in PEM",
        ),
        (
            lambda key, tmp: _write(
                tmp / "cut.pem", b"-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"
            ),
            r"not an unencrypted RSA private key",
        ),
        (
            lambda key, tmp: _encrypted_key(key, tmp / "locked.pem"),
            r"not an unencrypted RSA private key",
        ),
        (lambda key, tmp: make_rsa_key(tmp / "short.pem", 512).path, r"512 bits"),
    ],
    ids=["missing", "folder", "junk", "truncated", "encrypted", "short"],
)
def test_an_unusable_key_file_is_a_clear_error(
    dkim_key: DkimKey, tmp_path: Path, make: Any, message: str
) -> None:
    with pytest.raises(DkimKeyError, match=message):
        DkimSigner.from_key_file(make(dkim_key, tmp_path), selector="s1", domain="test.example")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("selector", "domain"),
    [("", "test.example"), ("s1; x=y", "test.example"), ("s1", "test.example\r\nBcc: x")],
)
def test_a_selector_or_domain_that_is_not_a_dns_name_is_refused(
    dkim_key: DkimKey, selector: str, domain: str
) -> None:
    with pytest.raises(DkimKeyError, match="is not a DNS name"):
        DkimSigner.from_key_file(dkim_key.path, selector=selector, domain=domain)


# --- Settings and the Mailer ----------------------------------------------------------------


def test_the_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "DKIM_PRIVATE_KEY_PATH",
        "DKIM_SELECTOR",
        "DKIM_DOMAIN",
        "LIST_UNSUBSCRIBE_MAILTO",
    ):
        monkeypatch.delenv(name, raising=False)
    config = load_config(str(tmp_path))
    assert config["DKIM_PRIVATE_KEY_PATH"] is None and config["DKIM_SELECTOR"] is None
    assert config["DKIM_DOMAIN"] is None and config["LIST_UNSUBSCRIBE_MAILTO"] is None

    monkeypatch.setenv("DKIM_PRIVATE_KEY_PATH", "/etc/readership/dkim.pem")
    monkeypatch.setenv("DKIM_SELECTOR", " rs2026 ")
    monkeypatch.setenv("DKIM_DOMAIN", "mail.test.example")
    monkeypatch.setenv("LIST_UNSUBSCRIBE_MAILTO", "unsubscribe@test.example")
    config = load_config(str(tmp_path))
    assert config["DKIM_PRIVATE_KEY_PATH"] == "/etc/readership/dkim.pem"
    assert config["DKIM_SELECTOR"] == "rs2026"
    assert config["DKIM_DOMAIN"] == "mail.test.example"
    assert config["LIST_UNSUBSCRIBE_MAILTO"] == "unsubscribe@test.example"


def _config(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    return {
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "MAIL_FROM": "The Test Review <newsletter@test.example>",
        **settings,
    }


def test_the_domain_defaults_to_mail_from_s(dkim_key: DkimKey, tmp_path: Path) -> None:
    translations = tmp_path / "translations"
    mailer = build_mailer(
        _config(tmp_path, DKIM_PRIVATE_KEY_PATH=str(dkim_key.path), DKIM_SELECTOR="rs2026"),
        translations,
    )
    assert mailer.dkim is not None and mailer.dkim.domain == "test.example"
    own = build_mailer(
        _config(
            tmp_path,
            DKIM_PRIVATE_KEY_PATH=str(dkim_key.path),
            DKIM_SELECTOR="rs2026",
            DKIM_DOMAIN="mail.test.example",
        ),
        translations,
    )
    assert own.dkim is not None and own.dkim.domain == "mail.test.example"
    assert build_mailer(_config(tmp_path), translations).dkim is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"DKIM_SELECTOR": "rs2026"}, "DKIM_PRIVATE_KEY_PATH is not"),
        ({"DKIM_DOMAIN": "test.example"}, "DKIM_PRIVATE_KEY_PATH is not"),
        ({"DKIM_PRIVATE_KEY_PATH": "KEY"}, "DKIM_SELECTOR is not"),
        (
            {"DKIM_PRIVATE_KEY_PATH": "/nowhere/dkim.pem", "DKIM_SELECTOR": "rs2026"},
            r"DKIM_PRIVATE_KEY_PATH: cannot read the DKIM key file /nowhere/dkim\.pem",
        ),
        (
            {"DKIM_PRIVATE_KEY_PATH": "KEY", "DKIM_SELECTOR": "rs 2026"},
            r"^DKIM_SELECTOR 'rs 2026' is not a DNS name",
        ),
        (
            {"DKIM_PRIVATE_KEY_PATH": "KEY", "DKIM_SELECTOR": "rs2026", "DKIM_DOMAIN": "a..b"},
            r"^DKIM_DOMAIN 'a\.\.b' is not a DNS name",
        ),
    ],
)
def test_half_or_broken_settings_stop_the_app_at_start_up(
    app_config: dict[str, Any], dkim_key: DkimKey, settings: dict[str, str], message: str
) -> None:
    settings = {k: str(dkim_key.path) if v == "KEY" else v for k, v in settings.items()}
    with pytest.raises(DkimKeyError, match=message):
        create_app({**app_config, **settings})


@pytest.fixture
def signing_app(
    app_config: dict[str, Any], dkim_key: DkimKey, request: pytest.FixtureRequest
) -> Flask:
    """The test app with DKIM on (the domain left to its default, MAIL_FROM's)."""
    app_config.update(DKIM_PRIVATE_KEY_PATH=str(dkim_key.path), DKIM_SELECTOR="rs2026")
    app: Flask = request.getfixturevalue("app")
    return app


def test_transactional_mail_is_signed_on_its_way_out(
    signing_app: Flask,
    db_session: Session,
    dkim_key: DkimKey,
    smtp_sink: SmtpSink,
    clock: FrozenClock,
) -> None:
    message = queue(db_session, signing_app, clock.now(), to="reader@example.org")
    mailer = get_mailer(signing_app)
    counts = deliver_now(get_database(signing_app), mailer, [message.id], clock.now())

    assert counts.sent == 1
    (received,) = smtp_sink.wait_for(1)
    # Signed at sending: the outbox keeps the unsigned bytes, the wire has one signature.
    assert b"DKIM-Signature" not in message.raw
    assert received.raw.count(b"DKIM-Signature:") == 1
    assert dkim.verify(received.raw, dnsfunc=dkim_key.dnsfunc("rs2026", "test.example"))
    assert tags(received.raw)["d"] == "test.example"


def test_without_a_key_nothing_is_signed(
    app: Flask, db_session: Session, smtp_sink: SmtpSink, clock: FrozenClock
) -> None:
    assert get_mailer(app).dkim is None
    message = queue(db_session, app, clock.now())
    assert deliver_now(get_database(app), get_mailer(app), [message.id], clock.now()).sent == 1

    (received,) = smtp_sink.wait_for(1)
    assert b"DKIM-Signature" not in received.raw
