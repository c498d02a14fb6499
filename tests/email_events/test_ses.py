"""`POST /email-events/ses`: Amazon SES notifications through SNS, on the examples of AWS's
documentation (kept in tests/fixtures/real/email_events/, see SOURCES.md). Each is wrapped
in an SNS message signed (versions 1 and 2) with an RSA key and a self-signed certificate
the test makes and serves from 127.0.0.1 over HTTP: only the test setting
EMAIL_EVENTS_SNS_TEST_HOSTS lets that host through; real SNS hosts are HTTPS only."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.email_events.support import event_rows, subscriber_state
from tests.subscribers.factories import get_subscriber, make_subscriber
from webapp.email_events.models import EmailEvent
from webapp.email_events.sns import SIGNED_FIELDS, canonical_text, sns_url_allowed

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "email_events"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:readership-ses"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class _SnsHost:
    """A stand-in for sns.<region>.amazonaws.com: serves the certificate and records
    subscription confirmations."""

    def __init__(self) -> None:
        self.visits: list[str] = []
        self.files = {"/cert.pem": _certificate(KEY), "/other.pem": _certificate(OTHER_KEY)}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                host.visits.append(self.path)
                body = host.files.get(self.path, b"<ConfirmSubscriptionResponse/>")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def sns_host() -> Iterator[_SnsHost]:
    host = _SnsHost()
    yield host
    host.server.shutdown()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_config,
        "EMAIL_EVENTS_SES_TOPIC_ARNS": f"{TOPIC}, arn:aws:sns:us-east-1:123456789012:other",
        "EMAIL_EVENTS_SNS_TEST_HOSTS": ("127.0.0.1",),
    }


def _sns(
    host: _SnsHost,
    ses_event: dict[str, Any] | None = None,
    *,
    kind: str = "Notification",
    version: str = "1",
    key: rsa.RSAPrivateKey = KEY,
    cert: str = "/cert.pem",
    message_id: str = "19ba9823-d7f2-53c1-860e-cb10e0d13dfc",
    topic: str = TOPIC,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": json.dumps(ses_event) + "\n" if ses_event is not None else "You have chosen...",
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": version,
        "SigningCertURL": host.base + cert,
    }
    if kind == "Notification":
        message["Subject"] = "Amazon SES Email Event Notification"
        message["UnsubscribeURL"] = host.base + "/?Action=Unsubscribe"
    else:
        message["Token"] = "2336412f37fb687f5d51e6e2425c464de12884"
        message["SubscribeURL"] = host.base + "/?Action=ConfirmSubscription&Token=2336"
    # Version 1 is SHA1withRSA by AWS's definition; SNS still sends it unless told otherwise.
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    signed = canonical_text(message, SIGNED_FIELDS[kind])
    message["Signature"] = base64.b64encode(
        key.sign(signed, padding.PKCS1v15(), algorithm)
    ).decode()
    return message


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REAL / name).read_text())
    return loaded


def _post(client: FlaskClient, message: Any) -> Any:
    # SNS posts its JSON as text/plain.
    return client.post(
        "/email-events/ses",
        data=json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "X-Amz-Sns-Message-Type": str(message.get("Type")) if isinstance(message, dict) else "",
        },
    )


def _readers(session: Session, *addresses: str) -> None:
    for address in addresses:
        make_subscriber(session, email=address)
    session.commit()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_documented_bounce_suppresses_with_either_signature_version(
    client: FlaskClient, db_session: Session, sns_host: _SnsHost, version: str
) -> None:
    _readers(db_session, "jane@example.com", "mary@example.com")
    response = _post(client, _sns(sns_host, _fixture("ses_bounce.json"), version=version))
    assert response.status_code == 200, response.text
    assert response.json == {"recorded": 1, "repeated": 0, "ignored": 0}
    assert subscriber_state(db_session, "jane@example.com") == ("bounced", True, "hard_bounce")
    assert subscriber_state(db_session, "mary@example.com") == ("confirmed", False, None)
    row = db_session.scalars(select(EmailEvent)).one()
    # Our own Message-ID (SES keeps it in commonHeaders), not SES's id.
    assert row.message_id == "custom-message-ID"
    assert row.detail == "smtp; 550 5.1.1 <<address>>... User unknown"  # the address scrubbed
    # SNS delivers at least once: the same message again changes nothing.
    assert _post(client, _sns(sns_host, _fixture("ses_bounce.json"))).json["repeated"] == 1


def test_one_bounce_for_several_recipients_is_one_event_each(
    client: FlaskClient, db_session: Session, sns_host: _SnsHost
) -> None:
    _readers(db_session, "jane@example.com", "mary@example.com", "richard@example.com")
    response = _post(client, _sns(sns_host, _fixture("ses_bounce_multiple.json")))
    assert response.json == {"recorded": 2, "repeated": 0, "ignored": 0}
    assert subscriber_state(db_session, "richard@example.com")[1] is True
    assert subscriber_state(db_session, "mary@example.com")[1] is False


@pytest.mark.parametrize(
    ("fixture", "address", "state", "recorded"),
    [
        ("ses_complaint.json", "richard@example.com", ("unsubscribed", True, "complaint"), 1),
        ("ses_delivery.json", "jane@example.com", ("confirmed", False, None), 1),
        ("ses_open.json", "recipient@example.com", ("confirmed", False, None), 0),
    ],
)
def test_complaints_deliveries_and_opens(
    client: FlaskClient,
    db_session: Session,
    sns_host: _SnsHost,
    fixture: str,
    address: str,
    state: tuple[str, bool, str | None],
    recorded: int,
) -> None:
    _readers(db_session, address)
    response = _post(client, _sns(sns_host, _fixture(fixture)))
    assert response.json == {"recorded": recorded, "repeated": 0, "ignored": 1 - recorded}
    assert subscriber_state(db_session, address) == state


def test_a_transient_bounce_is_a_soft_one(
    client: FlaskClient, db_session: Session, sns_host: _SnsHost
) -> None:
    _readers(db_session, "jane@example.com")
    event = _fixture("ses_bounce.json")
    event["bounce"]["bounceType"] = "Transient"
    _post(client, _sns(sns_host, event))
    db_session.expire_all()
    subscriber = get_subscriber(db_session, "jane@example.com")
    assert subscriber is not None and subscriber.soft_bounce_count == 1
    assert subscriber.suppressed is False


def test_the_subscription_confirms_itself_by_visiting_the_subscribe_url(
    client: FlaskClient, sns_host: _SnsHost
) -> None:
    sns_host.visits.clear()
    response = _post(client, _sns(sns_host, kind="SubscriptionConfirmation"))
    assert response.status_code == 200 and response.json == {"confirmed": True}
    assert "/?Action=ConfirmSubscription&Token=2336" in sns_host.visits


def _tampered(host: _SnsHost) -> dict[str, Any]:
    message = _sns(host, _fixture("ses_bounce.json"))
    message["Message"] = message["Message"].replace("Permanent", "Transient")
    return message


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda h: _tampered(h), 401),
        (lambda h: _sns(h, _fixture("ses_bounce.json"), key=OTHER_KEY), 401),
        (lambda h: _sns(h, _fixture("ses_bounce.json"), cert="/other.pem"), 401),
        (lambda h: {**_sns(h, _fixture("ses_bounce.json")), "SignatureVersion": "3"}, 401),
        (lambda h: {**_sns(h, _fixture("ses_bounce.json")), "Signature": "%%%"}, 401),
        (
            lambda h: {
                k: v for k, v in _sns(h, _fixture("ses_bounce.json")).items() if k != "Signature"
            },
            401,
        ),
        (
            lambda h: {
                **_sns(h, _fixture("ses_bounce.json")),
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            },
            401,
        ),
        (
            lambda h: _sns(h, _fixture("ses_bounce.json"), topic="arn:aws:sns:eu-west-1:9:theirs"),
            403,
        ),
    ],
)
def test_anything_but_a_genuine_message_of_our_topic_is_refused_with_nothing_written(
    client: FlaskClient, db_session: Session, sns_host: _SnsHost, make: Any, status: int
) -> None:
    _readers(db_session, "jane@example.com")
    response = _post(client, make(sns_host))
    assert response.status_code == status, response.text
    assert event_rows(db_session) == 0
    assert subscriber_state(db_session, "jane@example.com") == ("confirmed", False, None)


def test_the_certificate_host_rule() -> None:
    assert sns_url_allowed("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem")
    assert sns_url_allowed("https://sns.cn-north-1.amazonaws.com.cn/x.pem")
    for url in [
        "http://sns.eu-west-1.amazonaws.com/x.pem",  # not HTTPS
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://s3.amazonaws.com/x.pem",
        "file:///etc/passwd",
        "http://127.0.0.1:8000/x.pem",  # only with the test setting
    ]:
        assert not sns_url_allowed(url), url
    assert sns_url_allowed("http://127.0.0.1:8000/x.pem", test_hosts=("127.0.0.1",))


def test_without_the_test_setting_a_local_certificate_is_refused(
    app_config: dict[str, Any], sns_host: _SnsHost
) -> None:
    from webapp import create_app
    from webapp.db import get_database

    app = create_app({**app_config, "EMAIL_EVENTS_SNS_TEST_HOSTS": ()})
    try:
        response = _post(app.test_client(), _sns(sns_host, _fixture("ses_bounce.json")))
        assert response.status_code == 401
        assert "SNS host" in response.json["error"]
    finally:
        get_database(app).engine.dispose()
