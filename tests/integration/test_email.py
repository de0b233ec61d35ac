"""The email channel against a real SMTP server (aiosmtpd on loopback): what arrives,
in which headers, over which TLS, and how every refusal is classified. What needs no
server (subjects, rendering, config) is in tests/unit/test_email.py; an unreachable or
silent server, as for every channel, in tests/contract/test_channels.py."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.config import Secret
from monitor.delivery import samples
from monitor.delivery.email import subject, thread_id
from tests.support.smtp_sink import Collector, bodies, deliver, email_channel

USER = "alerts"
PASSWORD = "pw-Tr0ub4dor-and-3"  # must never show up in an error
HOSTILE = "a\r\nBcc: x@evil.example"
SCRIPT = "<script>alert(1)</script>"


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


# -- delivery --------------------------------------------------------------------------


def test_one_multipart_message_reaches_every_recipient(smtp_server) -> None:
    server, port = smtp_server()
    result = deliver(email_channel(port), samples.models_changed().to_payload())
    assert result.ok and result.status == 250
    (got,) = server.received
    assert got.mail_from == "alerts@example.com"
    assert got.rcpt_tos == ["ml-team@example.com", "ops@example.com"]
    mail = got.mail
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == (
        "[model-monitor] aiberm: 2 added, 1 removed, 1 endpoint types changed, 1 field changed"
    )
    assert mail["From"] == "model-monitor <alerts@example.com>"
    assert mail["To"] == "ml-team@example.com, Ops Team <ops@example.com>"
    assert mail["Date"]
    assert mail["Message-ID"] == "<dlv_0001@model-monitor>"
    assert mail["X-Model-Monitor-Event"] == "models.changed"
    assert mail["Auto-Submitted"] == "auto-generated"
    text, html = bodies(mail)
    assert "+ gpt-5 [openai, openai-response]  (team-a, team-b)" in text
    assert "- gpt-3.5-turbo  (team-a)" in text
    assert "source: aiberm (https://aiberm.com/v1)" in text
    assert "<code" in html and "gpt-5-mini-0001" in html and "team-a, team-b" in html


def test_a_retry_reuses_the_message_id_and_one_source_threads_together(smtp_server) -> None:
    server, port = smtp_server()
    ch = email_channel(port)
    changed = samples.models_changed().to_payload()
    assert deliver(ch, changed, "dlv_same").ok
    assert deliver(ch, changed, "dlv_same").ok  # a retry of the same delivery
    assert deliver(ch, samples.token_failing().to_payload(), "dlv_other").ok
    first, retry, other = (r.mail for r in server.received)
    assert first["Message-ID"] == retry["Message-ID"] == "<dlv_same@model-monitor>"
    assert other["Message-ID"] == "<dlv_other@model-monitor>"
    root = first["In-Reply-To"]
    assert root.startswith("<thread.aiberm.") and root.endswith("@model-monitor>")
    assert root == first["References"] == other["In-Reply-To"] == other["References"]
    elsewhere = {**changed, "source": {"name": "aiberm", "base_url": "https://other.example/v1"}}
    assert thread_id(elsewhere) != root  # same name, another gateway: another thread


def test_hostile_model_ids_stay_in_the_body(smtp_server) -> None:
    server, port = smtp_server()
    payload = samples.models_changed(model_id=HOSTILE).to_payload()
    payload["changes"].append({**payload["changes"][-1], "model": SCRIPT})
    payload["source"]["name"] = "gw\r\nBcc: y@evil.example"
    payload["summary"] = f"1 added on {HOSTILE}\u202e\x00"
    assert deliver(email_channel(port), payload).ok
    (got,) = server.received
    assert got.rcpt_tos == ["ml-team@example.com", "ops@example.com"]
    assert "Bcc" not in got.mail and len(got.mail.get_all("To")) == 1
    raw_headers = got.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "\nBcc" not in raw_headers and "evil.example" not in got.mail["To"]
    assert [line.split(":")[0] for line in raw_headers.splitlines() if line[0] != " "] == [
        "Subject",
        "From",
        "To",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "X-Model-Monitor-Event",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "MIME-Version",
        "Content-Type",
    ]
    assert "\n" not in got.mail["Subject"] and "\u202e" not in got.mail["Subject"]
    text, html = bodies(got.mail)
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SCRIPT in text  # plain text needs no escaping


def test_a_digest_is_one_email_listing_each_event(smtp_server) -> None:
    server, port = smtp_server()
    events = [
        samples.models_changed().to_payload(),
        samples.token_failing().to_payload(),
        samples.token_recovered().to_payload(),
    ]
    digest = {
        "version": "1",
        "type": "digest",
        "id": "dig_0001",
        "occurred_at": "2026-11-26T11:00:00Z",
        "summary": "3 events on aiberm",
        "events": events,
    }
    assert deliver(email_channel(port), digest).ok
    (got,) = server.received
    assert got.mail["Subject"] == "[model-monitor] aiberm: 3 events"
    assert got.mail["X-Model-Monitor-Event"] == "digest"
    assert got.mail["In-Reply-To"] == thread_id(events[0])  # one source: its thread
    text, html = bodies(got.mail)
    for event in events:
        assert event["summary"] in text
        assert event["summary"] in html
    assert "digest: dig_0001 (3 events)" in text
    mixed = {**digest, "events": [*events, samples.sample_test().to_payload()]}
    assert thread_id(mixed) is None and subject(mixed) == "[model-monitor] 3 events on aiberm"


# -- TLS and AUTH ----------------------------------------------------------------------


def test_starttls_verifies_the_server_against_ca_bundle(smtp_server, server_tls, ca_bundle):
    server, port = smtp_server(tls_context=server_tls, require_starttls=True)
    result = deliver(email_channel(port, security="starttls", ca_bundle=ca_bundle), sample())
    assert result.ok, result.error
    assert len(server.received) == 1


def test_starttls_to_an_untrusted_certificate_fails_for_good(smtp_server, server_tls) -> None:
    server, port = smtp_server(tls_context=server_tls, require_starttls=True)
    result = deliver(email_channel(port, security="starttls"), sample())
    assert not result.ok and result.permanent
    assert result.error.startswith("certificate verify failed for 127.0.0.1 (")
    assert result.error.endswith("; set ca_bundle or fix the server certificate")
    assert server.received == []


def test_starttls_missing_on_the_server_is_a_setting_to_fix(smtp_server, ca_bundle) -> None:
    _, port = smtp_server()
    result = deliver(email_channel(port, security="starttls", ca_bundle=ca_bundle), sample())
    assert result.permanent and "does not offer STARTTLS" in result.error


def test_implicit_tls(smtp_server, server_tls, ca_bundle) -> None:
    server, port = smtp_server(ssl_context=server_tls)
    result = deliver(email_channel(port, security="ssl", ca_bundle=ca_bundle), sample())
    assert result.ok, result.error
    assert len(server.received) == 1
    untrusted = deliver(email_channel(port, security="ssl"), sample())
    assert untrusted.permanent and "certificate verify failed" in untrusted.error


def test_ssl_against_a_plain_port_says_which_setting_is_wrong(smtp_server, ca_bundle) -> None:
    _, port = smtp_server()
    result = deliver(email_channel(port, security="ssl", ca_bundle=ca_bundle), sample())
    assert result.permanent and 'security = "ssl"' in result.error


def test_auth_after_starttls(smtp_server, server_tls, ca_bundle) -> None:
    server, port = smtp_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    tls = {"security": "starttls", "ca_bundle": ca_bundle, "username": USER}
    ok = deliver(email_channel(port, **tls, password=Secret(PASSWORD)), sample())
    assert ok.ok, ok.error
    wrong = deliver(email_channel(port, **tls, password=Secret("not-" + PASSWORD)), sample())
    assert not wrong.ok and wrong.permanent and wrong.status == 535
    assert "login" in wrong.error
    assert len(server.received) == 1
    assert PASSWORD not in wrong.error and "not-" not in wrong.error


def test_auth_offered_only_over_tls(smtp_server) -> None:
    _, port = smtp_server(authenticator=authenticator, auth_require_tls=True)
    result = deliver(email_channel(port, username=USER, password=Secret(PASSWORD)), sample())
    assert result.permanent and "does not offer SMTP AUTH" in result.error


# -- refusals and outages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ("421 4.3.2 shutting down", False),
        ("451 4.3.0 try later", False),
        ("452 4.3.1 insufficient storage", False),
        ("550 5.7.1 rejected as spam", True),
        ("554 5.6.0 transaction failed", True),
    ],
)
def test_data_replies(smtp_server, reply: str, permanent: bool) -> None:
    _, port = smtp_server(Collector(data_reply=reply))
    result = deliver(email_channel(port), sample())
    assert not result.ok and result.permanent is permanent
    assert result.status == int(reply[:3])
    assert reply in result.error


def test_refused_recipients(smtp_server) -> None:
    gone = "550 5.1.1 mailbox unavailable"
    _, port = smtp_server(Collector(rcpt_replies={"ml-team@example.com": gone}))
    one = deliver(email_channel(port, to=("ml-team@example.com",)), sample())
    assert one.permanent and one.status == 550 and "ml-team@example.com: 550" in one.error
    some = deliver(email_channel(port), sample())  # ops@ accepts: delivered to it, but not to all
    assert not some.ok and some.permanent and some.error.startswith("some recipients refused")
    busy = {"ml-team@example.com": "452 4.2.2 mailbox full"}
    _, port = smtp_server(Collector(rcpt_replies=busy))
    assert not deliver(email_channel(port), sample()).permanent  # temporary: worth a retry


def test_the_password_never_reaches_an_error(smtp_server, server_tls, ca_bundle) -> None:
    """Even a server that echoes it back (a broken proxy) does not get it into the outbox."""
    echo = Collector(data_reply=f"554 5.0.0 echo {PASSWORD}")
    _, port = smtp_server(echo, tls_context=server_tls, authenticator=authenticator)
    options = {"security": "starttls", "ca_bundle": ca_bundle, "username": USER}
    ch = email_channel(port, **options, password=Secret(PASSWORD))
    result = deliver(ch, sample())
    assert result.permanent and result.status == 554
    assert PASSWORD not in result.error and "echo ***" in result.error
    assert PASSWORD not in repr(ch.config)


def sample() -> dict[str, Any]:
    return samples.token_recovered().to_payload()
