"""The email channel: one multipart (text + HTML) message per event or digest, over SMTP.

Model ids, source names and error messages come from remote servers, so nothing from a
payload reaches a header before `header_text` has stripped control characters and
shortened it: a model id `a\\r\\nBcc: x@y` must not add a header or a recipient. The text
part is rendered from `printable_data(payload)`: there the CR and LF of that id show as the
visible escapes `\\r` and `\\n` on one line, and an ESC as `\\x1b`. The HTML part is
rendered with autoescaping forced on, whatever the template's file name.

smtplib verifies no certificate unless handed an SSL context, so every TLS connection
gets `ssl.create_default_context(cafile=ca_bundle)`. The Message-ID is derived from the
delivery id, so a retried delivery carries the same id and receivers can deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import socket
import ssl
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

from jinja2 import TemplateError

from monitor.config.model import ChannelConfig, Option, Secret
from monitor.core.clock import utcnow
from monitor.core.printable import printable_data
from monitor.delivery.base import Channel, Message, SendResult
from monitor.delivery.templates import Templates
from monitor.transport.connections import watch_new
from monitor.transport.deadline import within

SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SUBJECT_LIMIT = 200
ID_DOMAIN = "model-monitor"
TEXT_TEMPLATE = "email.txt.j2"
HTML_TEMPLATE = "email.html.j2"

# OpenSSL reasons that mean "this port does not speak TLS the way `security` says":
# a setting to fix, not a hiccup to retry for a day.
_TLS_MISMATCH = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "RECORD_LAYER_FAILURE",
    }
)


class EmailChannel(Channel):
    OPTIONS: ClassVar = {
        "smtp_host": Option("str", required=True, help="the SMTP server, e.g. smtp.example.com"),
        "smtp_port": Option("int", help="default: 587 for starttls, 465 for ssl, 25 for none"),
        "security": Option("str", default="starttls", help="starttls | ssl | none"),
        "username": Option("str", help="SMTP AUTH user; needs password"),
        "password": Option("secret", help="SMTP AUTH password"),
        "from": Option("str", required=True, help='sender, e.g. "model-monitor <a@example.com>"'),
        "to": Option("list[str]", required=True, help='recipients, e.g. ["ml@example.com"]'),
        "timeout": Option("duration", default=30.0, help="for the whole SMTP conversation"),
        "ca_bundle": Option("str", help="PEM file of CA certificates to trust (private CAs)"),
        "subject_prefix": Option("str", default="[model-monitor]", help="starts every subject"),
    }

    def __init__(self, config: ChannelConfig, templates: Templates | None = None) -> None:
        super().__init__(config, templates)
        options = config.options
        self._host: str = options["smtp_host"]
        self._security: str = options.get("security") or "starttls"
        self._port: int = options.get("smtp_port") or SECURITY_PORTS.get(self._security, 587)
        self._username: str | None = options.get("username")
        password: Secret | None = options.get("password")
        self._password = password.reveal() if password else None
        self._from: str = options["from"]
        self._to: tuple[str, ...] = tuple(options["to"])
        # Envelope addresses: bare addr-specs, never read back from the message headers.
        self._envelope_from = _addr_spec(self._from)
        self._envelope_to = [_addr_spec(to) for to in self._to]
        self._timeout = float(options.get("timeout") or 30.0)
        self._ca_bundle: str | None = options.get("ca_bundle")
        prefix = options.get("subject_prefix")
        self._prefix = header_text("[model-monitor]" if prefix is None else prefix)
        self._tls: ssl.SSLContext | None = None

    # -- configuration -------------------------------------------------------------------

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        host = options.get("smtp_host")
        if host is not None and (
            not host.strip() or "://" in host or any(c.isspace() for c in host)
        ):
            problems.append(("smtp_host", "give a host name only, e.g. smtp.example.com"))
        security = options.get("security")
        if security is not None and security not in SECURITY_PORTS:
            problems.append(("security", 'must be "starttls", "ssl" or "none"'))
        port = options.get("smtp_port")
        if port is not None and not 0 < port < 65536:
            problems.append(("smtp_port", "must be between 1 and 65535"))
        if options.get("username") and options.get("password") is None:
            problems.append(("password", "missing; username is set, so add password_env = ..."))
        if options.get("password") is not None and not options.get("username"):
            problems.append(("username", "missing; password is set, so add username = ..."))
        sender = options.get("from")
        if sender is not None and parse_address(sender) is None:
            problems.append(("from", 'is not one address; write "Name <user@example.com>"'))
        problems += _check_recipients(options.get("to"))
        timeout = options.get("timeout")
        if timeout is not None and timeout <= 0:
            problems.append(("timeout", "must be longer than 0s"))
        ca_bundle = options.get("ca_bundle")
        if ca_bundle is not None:
            reason = _ca_bundle_problem(ca_bundle)
            if reason:
                problems.append(("ca_bundle", reason))
        return problems

    # -- composing -----------------------------------------------------------------------

    def render(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """The text and HTML bodies of one event or digest."""
        text = self.templates.render(TEXT_TEMPLATE, printable_data(payload))
        html = self.templates.render(HTML_TEMPLATE, payload)  # autoescaped: a .html.j2 name
        return text.strip("\n") + "\n", html.strip() + "\n"

    def compose(self, message: Message, now: datetime | None = None) -> EmailMessage:
        """The complete message for one delivery; the same delivery always gets one Message-ID."""
        payload = message.payload
        text, html = self.render(payload)
        mail = EmailMessage()
        mail["Subject"] = subject(payload, self._prefix)
        mail["From"] = self._from
        mail["To"] = ", ".join(self._to)
        mail["Date"] = format_datetime(now or utcnow())
        mail["Message-ID"] = message_id(message.delivery_id)
        thread = thread_id(payload)
        if thread:
            mail["In-Reply-To"] = thread
            mail["References"] = thread
        mail["X-Model-Monitor-Event"] = header_text(str(payload.get("type", "")), 64)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
        mail["X-Auto-Response-Suppress"] = "All"  # the same for Exchange
        mail.set_content(text)
        mail.add_alternative(html, subtype="html")
        return mail

    # -- sending -------------------------------------------------------------------------

    def send(self, message: Message) -> SendResult:
        try:
            mail = self.compose(message)
        except TemplateError as exc:
            return SendResult(ok=False, error=f"template error: {exc}", permanent=True)
        except (ValueError, TypeError, KeyError) as exc:
            return SendResult(ok=False, error=f"cannot build the message: {exc}", permanent=True)
        result = self._deliver(mail)
        return result if result.ok else _scrubbed(result, self._secrets())

    def _deliver(self, mail: EmailMessage) -> SendResult:
        """One conversation per message, bounded as a whole by `timeout`: a server that
        drips its replies is cut off, and the delivery retried."""
        with within(self._timeout) as deadline:
            result = self._converse(mail)
        if not result.ok and deadline.expired:
            where = f"{self._host}:{self._port}"
            return SendResult(ok=False, error=f"timed out after {self._timeout:g}s ({where})")
        return result

    def _converse(self, mail: EmailMessage) -> SendResult:
        """Connect, secure, log in and send."""
        if self._security != "none":
            try:
                self._tls_context()
            except (OSError, ssl.SSLError) as exc:
                what = f"ca_bundle {self._ca_bundle}" if self._ca_bundle else "system CAs"
                error = f"cannot load {what}: {exc}"
                return SendResult(ok=False, error=error, permanent=True)
        try:
            smtp = self._connect()
        except Exception as exc:  # every failure is classified, never raised
            return self._failure(exc, "connect")
        stage = "send"
        try:
            if self._username:
                stage = "login"
                smtp.login(self._username, self._password or "")
                stage = "send"
            refused = smtp.send_message(
                mail, from_addr=self._envelope_from, to_addrs=self._envelope_to
            )
        except Exception as exc:
            return self._failure(exc, stage)
        finally:
            _quit(smtp)
        if refused:
            return _refused(refused, partial=True)
        return SendResult.success(250)

    def _connect(self) -> smtplib.SMTP:
        if self._security == "ssl":
            return _WatchedSMTPSSL(
                self._host, self._port, timeout=self._timeout, context=self._tls_context()
            )
        smtp = _WatchedSMTP(self._host, self._port, timeout=self._timeout)
        if self._security == "starttls":
            try:
                smtp.starttls(context=self._tls_context())
            except BaseException:
                _quit(smtp)
                raise
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        """Verifying context, built once: system CAs, or only those of ca_bundle."""
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=self._ca_bundle)
        return self._tls

    def _failure(self, exc: BaseException, stage: str) -> SendResult:
        """What an exception means for the delivery: retry later, or give up at once."""
        where = f"{self._host}:{self._port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or "untrusted certificate"
            return SendResult(
                ok=False,
                error=f"certificate verify failed for {self._host} ({reason}); "
                "set ca_bundle or fix the server certificate",
                permanent=True,
            )
        if isinstance(exc, ssl.SSLError):
            if exc.reason in _TLS_MISMATCH:
                return SendResult(
                    ok=False,
                    error=f"TLS handshake with {where} failed ({exc.reason}); check that "
                    f'security = "{self._security}" matches smtp_port {self._port}',
                    permanent=True,
                )
            return SendResult(ok=False, error=f"TLS error with {where}: {exc.reason or exc}")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return _refused(exc.recipients, partial=False)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return SendResult(ok=False, error=self._unsupported(stage), permanent=True)
        if isinstance(exc, smtplib.SMTPResponseException):
            return _reply(exc.smtp_code, exc.smtp_error, stage)
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, TimeoutError
        ):
            exc = exc.__context__  # smtplib reports a read timeout as a disconnect
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return SendResult(ok=False, error=f"{where} closed the connection during {stage}")
        if isinstance(exc, smtplib.SMTPException):
            return SendResult(ok=False, error=f"{stage}: {_clean(str(exc))}", permanent=True)
        if isinstance(exc, TimeoutError):
            return SendResult(ok=False, error=f"timed out after {self._timeout:g}s ({where})")
        if isinstance(exc, ConnectionRefusedError):
            return SendResult(ok=False, error=f"connection refused by {where}")
        if isinstance(exc, OSError):
            return SendResult(ok=False, error=f"cannot reach {where}: {exc.strerror or exc}")
        return SendResult(ok=False, error=f"{stage}: {type(exc).__name__}", permanent=True)

    def _unsupported(self, stage: str) -> str:
        if self._security == "starttls" and stage == "connect":
            return f'{self._host} does not offer STARTTLS; set security = "ssl" or "none"'
        if stage == "login":
            hint = "; some servers offer it only over TLS" if self._security == "none" else ""
            return f"{self._host} does not offer SMTP AUTH{hint}"
        return f"{self._host} does not support what {stage} needs"

    def _secrets(self) -> list[str]:
        """The password in every form an error could carry it (raw, or AUTH-encoded)."""
        if not self._password:
            return []
        user = self._username or ""
        plain = f"\0{user}\0{self._password}".encode()
        return [
            self._password,
            base64.b64encode(self._password.encode()).decode(),
            base64.b64encode(plain).decode(),
        ]


# -- headers ---------------------------------------------------------------------------


def header_text(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """A remote string made safe for a header: one line, no control characters, short.

    Control, format (bidi overrides) and line/paragraph separator characters go; runs of
    whitespace become one space; past `limit` the text ends with an ellipsis.
    """
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in str(value)
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs")
    )
    text = " ".join(kept.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def subject(payload: Mapping[str, Any], prefix: str = "[model-monitor]") -> str:
    """What happened, in a line: "[model-monitor] aiberm: 2 added, 1 removed"."""
    kind = payload.get("type")
    if kind == "test":
        line = str(payload.get("summary", "test message"))
    elif kind == "digest":
        events = [e for e in payload.get("events", ()) if isinstance(e, Mapping)]
        sources = {_source_name(e) for e in events}
        summary = str(payload.get("summary") or f"{len(events)} events")
        line = _about(sources.pop(), summary) if len(sources) == 1 else summary
    else:
        line = _about(_source_name(payload), _event_summary(payload))
    return header_text(f"{prefix} {line}" if prefix else line)


def _about(source: str, summary: str) -> str:
    return f"{source}: {summary.replace(f' on {source}', '', 1)}"


def _event_summary(payload: Mapping[str, Any]) -> str:
    """The summary, without a failing token's error message (it is in the body)."""
    summary = str(payload.get("summary", ""))
    error = payload.get("error")
    message = error.get("message") if isinstance(error, Mapping) else None
    if message and summary.endswith(f": {message}"):
        summary = summary[: -len(message) - 2]
    return summary or str(payload.get("type", "event"))


def _source_name(payload: Mapping[str, Any]) -> str:
    source = payload.get("source")
    return str(source.get("name", "")) if isinstance(source, Mapping) else ""


def message_id(delivery_id: str) -> str:
    """`<{delivery_id}@model-monitor>`: the same on every retry of one delivery."""
    return f"<{_id_part(delivery_id)}@{ID_DOMAIN}>"


def thread_id(payload: Mapping[str, Any]) -> str | None:
    """The made-up root every alert of one source replies to, so clients thread them.

    Keyed by name and base URL (hashed: URLs may carry paths nobody wants in headers).
    A digest spanning several sources threads with none of them.
    """
    if payload.get("type") == "digest":
        events = [e for e in payload.get("events", ()) if isinstance(e, Mapping)]
        roots = {thread_id(e) for e in events}
        return roots.pop() if len(roots) == 1 else None
    source = payload.get("source")
    if not isinstance(source, Mapping):
        return None
    url_hash = hashlib.sha256(str(source.get("base_url", "")).encode()).hexdigest()[:16]
    return f"<thread.{_id_part(str(source.get('name', '')))}.{url_hash}@{ID_DOMAIN}>"


def _id_part(value: str) -> str:
    """Only dot-atom characters that need no quoting: ids stay valid whatever comes in."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")[:64]
    return cleaned or "x"


# -- addresses -------------------------------------------------------------------------


def parse_address(value: str) -> Address | None:
    """One complete address ("Name <user@host>" or "user@host"), or None."""
    if not isinstance(value, str) or any(unicodedata.category(c) == "Cc" for c in value):
        return None
    try:
        header = default_policy.header_factory("to", value)
        addresses = header.addresses
    except Exception:  # the parser raises odd errors on odd input
        return None
    if header.defects or len(addresses) != 1:
        return None
    address = addresses[0]
    return address if address.username and address.domain else None


def _addr_spec(value: str) -> str:
    address = parse_address(value)
    return address.addr_spec if address else value


def _check_recipients(recipients: Sequence[str] | None) -> list[tuple[str, str]]:
    if recipients is None:
        return []
    if not recipients:
        return [("to", 'is empty; add at least one address, e.g. to = ["ml@example.com"]')]
    return [
        ("to", f"{value!r} is not one address; write user@example.com")
        for value in recipients
        if parse_address(value) is None
    ]


def _ca_bundle_problem(path: str) -> str | None:
    # Absolute only: channel options are not resolved against the config file's folder,
    # and a daemon's working directory is rarely where the config lives.
    if not Path(path).is_absolute():
        return f"{path} is relative; give an absolute path"
    if not Path(path).is_file():
        return f"{path} does not exist; fix the path"
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        return f"{path}: not a PEM file of CA certificates ({exc})"
    return None


# -- outcomes --------------------------------------------------------------------------


def _reply(code: int, text: bytes | str, stage: str) -> SendResult:
    """An SMTP reply: 4xx will likely pass later, 5xx will not."""
    error = f"{stage}: SMTP {code} {_clean(text)}".rstrip()
    return SendResult(ok=False, status=code, error=error, permanent=500 <= code < 600)


def _refused(recipients: Mapping[str, tuple[int, bytes]], *, partial: bool) -> SendResult:
    """Refused recipients. Retried only if some refusal was temporary: receivers that did
    accept may get the message twice, with the same Message-ID to deduplicate on."""
    codes = [code for code, _ in recipients.values()]
    details = "; ".join(
        f"{header_text(address, 100)}: {code} {_clean(text)}"
        for address, (code, text) in sorted(recipients.items())
    )
    what = "some recipients refused" if partial else "all recipients refused"
    return SendResult(
        ok=False,
        status=max(codes, default=None),
        error=f"{what}: {details}",
        permanent=not any(400 <= code < 500 for code in codes),
    )


def _clean(text: bytes | str, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return header_text(text, limit)


def _scrubbed(result: SendResult, secrets: Sequence[str]) -> SendResult:
    """Last line of defence: no form of the password survives into an error."""
    error = result.error
    for secret in secrets:
        if secret:
            error = error.replace(secret, "***")
    return result if error == result.error else replace(result, error=error)


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye if the server still listens; the outcome is already decided."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class _WatchedSMTP(smtplib.SMTP):
    """smtplib's client with its socket under the conversation's deadline."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # typeshed leaves out smtplib.SMTP._get_socket (private), which exists since 2.6.
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        watch_new(sock)  # STARTTLS wraps it later; the watch still holds
        return sock


class _WatchedSMTPSSL(smtplib.SMTP_SSL):
    """The implicit-TLS client, watched from before the handshake."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        watch_new(sock)
        # SMTP.connect sets _host before it calls _get_socket; typeshed does not declare it.
        return self.context.wrap_socket(sock, server_hostname=self._host)  # type: ignore[attr-defined]
