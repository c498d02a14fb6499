"""Both senders keep the `Sender` protocol; SMTP against real aiosmtpd servers (plain,
STARTTLS, implicit TLS, AUTH, refusals, dropped connections)."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from emails import (
    MaildirSender,
    PermanentFailure,
    RenderedEmail,
    Sender,
    SmtpSender,
    TemporaryFailure,
    build_message,
    message_bytes,
)
from emails.mailbox import LocalMailbox
from tests.helpers.smtp import SmtpSink, free_port


def make_message(to: str = "reader@example.org", subject: str = "Hello") -> bytes:
    rendered = RenderedEmail(subject=subject, html="<p>Hi</p>", text="Hi\n")
    message = build_message(
        rendered,
        sender="Review <news@review.example>",
        to=to,
        headers=None,
        message_id_domain="review.example",
    )
    return message_bytes(message)


@dataclass
class RecordingHandler:
    """Keeps messages with the connection (peer) and TLS state they came over."""

    messages: list[tuple[Any, bool, bytes]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.messages.append((session.peer, session.ssl is not None, envelope.original_content))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = data.password == "p@ss:w/rd é".encode()
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(handler: Any, port: int | None = None, **kwargs: Any) -> Iterator[Controller]:
    """An aiosmtpd server on 127.0.0.1 for one test."""
    with warnings.catch_warnings():
        # aiosmtpd warns about AUTH without TLS, which the AUTH test sets up on purpose.
        warnings.simplefilter("ignore", UserWarning)
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


# --- The protocol ------------------------------------------------------------------------


@pytest.fixture(params=["smtp", "maildir"])
def any_sender(
    request: pytest.FixtureRequest, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[tuple[Sender, Any]]:
    """Each real sender, with a function returning the messages it delivered."""
    smtp_sink.clear()
    if request.param == "smtp":
        yield (
            SmtpSender.from_url(smtp_sink.url, timeout=5),
            lambda: [m.raw for m in smtp_sink.messages],
        )
    else:
        box = LocalMailbox(tmp_path / "mailbox")
        yield (
            MaildirSender(tmp_path / "mailbox"),
            lambda: [box.get(key).raw for key in box.keys_newest_first()],
        )


def test_both_senders_keep_the_protocol(any_sender: tuple[Sender, Any]) -> None:
    sender, delivered = any_sender
    assert isinstance(sender, Sender)
    with sender as opened:
        assert opened is sender
        for index in range(3):
            refused = sender.send(
                "news@review.example", ["reader@example.org"], make_message(subject=f"n{index}")
            )
            assert refused == {}
    sender.close()  # closing twice is fine
    subjects = sorted(
        str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
        for raw in delivered()
    )
    assert subjects == ["n0", "n1", "n2"]


def test_maildir_keeps_crlf_and_records_the_envelope(tmp_path: Path) -> None:
    with MaildirSender(tmp_path / "box") as sender:
        sender.send("news@review.example", ["reader@example.org"], make_message())
    (key,) = LocalMailbox(tmp_path / "box").keys_newest_first()
    raw = LocalMailbox(tmp_path / "box").get(key).raw
    assert raw.startswith(
        b"Return-Path: <news@review.example>\r\nDelivered-To: reader@example.org\r\n"
    )
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_maildir_refuses_line_breaks_in_addresses(tmp_path: Path) -> None:
    with MaildirSender(tmp_path / "box") as sender, pytest.raises(PermanentFailure):
        sender.send("news@review.example", ["a@example.org\r\nX: y"], make_message())


# --- SMTP URLs ---------------------------------------------------------------------------


def test_from_url_reads_every_part() -> None:
    sender = SmtpSender.from_url(
        "smtp://us%40er:p%40ss%3Aw%2Frd@mail.example:2525?starttls=required"
    )
    assert (sender.host, sender.port) == ("mail.example", 2525)
    assert (sender.username, sender.password) == ("us@er", "p@ss:w/rd")
    assert sender.starttls == "required" and not sender.implicit_tls
    secure = SmtpSender.from_url("smtps://relay.example", timeout=7)
    assert (secure.port, secure.implicit_tls, secure.timeout) == (465, True, 7)
    assert SmtpSender.from_url("smtp://relay.example").port == 25
    assert SmtpSender.from_url("smtp://relay.example?starttls=never").starttls == "never"


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtp://user:secret@host:notaport",
        "mail.example:25",
        "smtp://host?starttls=sometimes",
    ],
)
def test_from_url_refuses_bad_urls_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SmtpSender.from_url(url)
    assert "secret" not in str(info.value)


# --- SMTP behaviour ----------------------------------------------------------------------


def test_one_connection_for_many_messages() -> None:
    handler = RecordingHandler()
    with smtp_server(handler) as server:
        with SmtpSender("127.0.0.1", server.port, timeout=5) as sender:
            for _ in range(5):
                sender.send("news@review.example", ["reader@example.org"], make_message())
        with SmtpSender("127.0.0.1", server.port, timeout=5) as sender:
            sender.send("news@review.example", ["reader@example.org"], make_message())
    peers = [peer for peer, _tls, _raw in handler.messages]
    assert len(peers) == 6
    assert len(set(peers[:5])) == 1
    assert peers[5] != peers[0]


def test_reconnects_once_after_the_server_dropped_the_connection() -> None:
    handler = RecordingHandler()
    port = free_port()
    sender = SmtpSender("127.0.0.1", port, timeout=5)
    try:
        with smtp_server(handler, port=port):
            sender.send("news@review.example", ["reader@example.org"], make_message())
        # The server went away (and came back): the old connection is dead.
        with smtp_server(handler, port=port):
            sender.send("news@review.example", ["reader@example.org"], make_message())
        with pytest.raises(TemporaryFailure) as info:  # now it is gone for good
            sender.send("news@review.example", ["reader@example.org"], make_message())
    finally:
        sender.close()
    assert info.value.code is None
    assert len(handler.messages) == 2


def test_closed_port_is_a_temporary_failure() -> None:
    sender = SmtpSender.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TemporaryFailure) as info:
        sender.send("news@review.example", ["reader@example.org"], make_message())
    assert info.value.code is None and "cannot connect" in info.value.text


def test_reply_codes_map_to_failures(smtp_sink: SmtpSink) -> None:
    smtp_sink.clear()
    smtp_sink.handler.reply_for["gone@example.org"] = "550 5.1.1 no such user"
    smtp_sink.handler.reply_for["full@example.org"] = "452 4.2.2 mailbox full"
    with SmtpSender.from_url(smtp_sink.url, timeout=5) as sender:
        with pytest.raises(PermanentFailure) as permanent:
            sender.send("news@review.example", ["gone@example.org"], make_message())
        assert (permanent.value.code, permanent.value.text) == (550, "5.1.1 no such user")
        with pytest.raises(TemporaryFailure) as temporary:
            sender.send("news@review.example", ["full@example.org"], make_message())
        assert temporary.value.code == 452
        # The connection is still good for the next message.
        refused = sender.send(
            "news@review.example", ["ok@example.org", "gone@example.org"], make_message()
        )
        assert refused == {"gone@example.org": (550, "5.1.1 no such user")}
        smtp_sink.handler.data_reply = "421 4.3.2 try later"
        with pytest.raises(TemporaryFailure) as closing:
            sender.send("news@review.example", ["ok@example.org"], make_message())
        assert closing.value.code == 421
        smtp_sink.handler.data_reply = "554 5.7.1 spam"
        with pytest.raises(PermanentFailure):
            sender.send("news@review.example", ["ok@example.org"], make_message())
        smtp_sink.handler.data_reply = None
        sender.send("news@review.example", ["ok@example.org"], make_message())
    assert len(smtp_sink.to("ok@example.org")) == 2


def test_login_with_percent_decoded_credentials() -> None:
    handler = RecordingHandler()
    with smtp_server(handler, authenticator=handler.authenticate, auth_require_tls=False) as server:
        url = f"smtp://us%40er:p%40ss%3Aw%2Frd%20%C3%A9@127.0.0.1:{server.port}"
        with SmtpSender.from_url(url, timeout=5) as sender:
            sender.send("news@review.example", ["reader@example.org"], make_message())
        wrong = SmtpSender.from_url(f"smtp://us%40er:nope@127.0.0.1:{server.port}", timeout=5)
        with pytest.raises(TemporaryFailure) as info:
            wrong.open()
        assert info.value.code == 535
    assert handler.logins[0] == (b"us@er", "p@ss:w/rd é".encode())
    assert len(handler.messages) == 1


def test_starttls_when_offered(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    handler = RecordingHandler()
    with smtp_server(handler, tls_context=server_tls, require_starttls=True) as server:
        url = f"smtp://127.0.0.1:{server.port}"
        with SmtpSender.from_url(url, timeout=5, ssl_context=client_tls) as sender:
            sender.send("news@review.example", ["reader@example.org"], make_message())
    assert [tls for _peer, tls, _raw in handler.messages] == [True]


def test_starttls_required_but_not_offered(smtp_sink: SmtpSink) -> None:
    sender = SmtpSender.from_url(f"{smtp_sink.url}?starttls=required", timeout=5)
    with pytest.raises(TemporaryFailure, match="STARTTLS"):
        sender.open()


def test_untrusted_certificate_is_refused(server_tls: ssl.SSLContext) -> None:
    with smtp_server(RecordingHandler(), tls_context=server_tls) as server:
        sender = SmtpSender.from_url(f"smtp://127.0.0.1:{server.port}", timeout=5)
        with pytest.raises(TemporaryFailure):
            sender.open()


def test_implicit_tls(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    handler = RecordingHandler()
    with smtp_server(handler, ssl_context=server_tls) as server:
        url = f"smtps://127.0.0.1:{server.port}"
        with SmtpSender.from_url(url, timeout=5, ssl_context=client_tls) as sender:
            sender.send("news@review.example", ["reader@example.org"], make_message())
    assert len(handler.messages) == 1
