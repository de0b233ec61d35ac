"""The daemon's optional HTTP face, `[monitor] listen = "127.0.0.1:9464"`.

- `GET /healthz`: 200 while the scheduler runs and every source's last cycle is on
  time, 503 otherwise; the JSON body says which source is late and since when.
- `GET /metrics`: the Prometheus text format of a `monitor.runtime.metrics.Metrics` registry.
- `GET /`, `/matrix`, `/changes`, `/changes.atom`: the read-only status pages and feed
  (`monitor.web`), when the listener is given them.
- anything else: 404 (405 for methods other than GET and HEAD).

The standard library's ThreadingHTTPServer, on a daemon thread, is enough for a probe,
a scraper and a person with a browser. With `[monitor] listen_username` and
`listen_password` set, everything but /healthz needs HTTP basic auth (probes stay
open; /healthz says nothing a status code would not). Without them the address
should stay on loopback: `start()` warns when it does not.

The health rule (`CycleWatch`): a source is overdue when no cycle completed within two
scheduled runs of the last completed one (or of the daemon's start, the grace period),
plus the jitter, plus the time one cycle may take (the timeout for each round of
`concurrency` tokens). With `interval` that is `last + 2 * interval + jitter + timeout
x rounds`; with `cron` it is the second fire time after `last`, plus the same slack.
One missed or late run is tolerated; two are not.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import ipaddress
import json
import logging
import math
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from monitor import DISTRIBUTION, __version__
from monitor.core.clock import rfc3339, utcnow

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from monitor.config import Config, MonitorSettings, Secret, SourceConfig
    from monitor.runtime.metrics import Metrics
    from monitor.web.app import StatusPages

log = logging.getLogger("monitor.listener")


# -- health -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthAnswer:
    """What `/healthz` answers: `ok` picks 200 or 503, `body` is sent as JSON."""

    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


class CycleWatch:
    """The last completed cycle of each source (in memory), and whether one is overdue."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, datetime] = {}
        self._failed: dict[str, tuple[datetime, str]] = {}
        self.started = clock()
        self._cron: CronTrigger | None = None
        if config.monitor.cron:
            from monitor.config.durations import cron_trigger  # loads APScheduler

            self._cron = cron_trigger(config.monitor.cron)  # no jitter: a stable answer

    def begin(self) -> None:
        """The daemon starts scheduling now: the grace period runs from here."""
        with self._lock:
            self.started = self._clock()
            self._last.clear()

    def completed(self, source: str, at: datetime | None = None) -> None:
        """A cycle of `source` finished (whatever the checks found)."""
        moment = at or self._clock()
        with self._lock:
            self._last[source] = moment

    def failed(self, source: str, reason: str, at: datetime | None = None) -> None:
        """A cycle of `source` raised before recording anything (the database was down,
        say): /healthz says so until a cycle completes again."""
        moment = at or self._clock()
        with self._lock:
            self._failed[source] = (moment, reason)

    def last_failure(self, source: str) -> tuple[datetime, str] | None:
        """The failure of the source's latest cycle, if its latest cycle failed."""
        with self._lock:
            failure = self._failed.get(source)
            last = self._last.get(source)
        if failure is None or (last is not None and last >= failure[0]):
            return None
        return failure

    def last_cycle(self, source: str) -> datetime | None:
        with self._lock:
            return self._last.get(source)

    def due_by(self, source: SourceConfig) -> datetime | None:
        """When the source turns overdue without another completed cycle (None: never)."""
        reference = self.last_cycle(source.name) or self.started
        slack = timedelta(seconds=self._slack(source))
        settings = self.config.monitor
        if self._cron is not None:
            first = self._cron.get_next_fire_time(None, reference + _TICK)
            second = first and self._cron.get_next_fire_time(None, first + _TICK)
            return None if second is None else second + slack
        assert settings.interval is not None
        return reference + timedelta(seconds=2 * settings.interval) + slack

    def _slack(self, source: SourceConfig) -> float:
        settings = self.config.monitor
        timeout = source.timeout or settings.timeout
        tokens = max(1, len(self.config.tokens_of(source.name)))
        rounds = math.ceil(tokens / max(1, settings.concurrency))
        return settings.jitter + timeout * rounds

    def _expected(self) -> str:
        settings = self.config.monitor
        if settings.cron:
            return f"expected on the cron schedule {settings.cron}"
        return f"expected every {settings.interval:g}s"

    def report(self, scheduler_running: bool = True) -> HealthAnswer:
        """The `/healthz` answer now."""
        now = self._clock()
        reasons = [] if scheduler_running else ["the scheduler is not running"]
        sources: dict[str, dict[str, Any]] = {}
        for source in self.config.sources:
            last = self.last_cycle(source.name)
            due = self.due_by(source)
            overdue = due is not None and now > due
            sources[source.name] = {
                "last_cycle": rfc3339(last) if last else None,
                "due_by": rfc3339(due) if due else None,
                "overdue": overdue,
            }
            if overdue:
                since = rfc3339(last) if last else f"the daemon started at {rfc3339(self.started)}"
                reasons.append(f"source {source.name}: no cycle since {since} ({self._expected()})")
            failure = self.last_failure(source.name)
            if failure is not None:
                sources[source.name]["failed_cycle"] = {
                    "at": rfc3339(failure[0]),
                    "error": failure[1],
                }
                reasons.append(f"source {source.name}: its last check cycle failed ({failure[1]})")
        body: dict[str, Any] = {"status": "unhealthy" if reasons else "ok"}
        if reasons:
            body["reasons"] = reasons
        body["sources"] = sources
        return HealthAnswer(not reasons, body)


_TICK = timedelta(microseconds=1)


# -- the server ---------------------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    """ "127.0.0.1:9464" or "[::1]:9464" -> (host, port); validated by the config loader."""
    host, _, port = address.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` ("localhost" counts; names do not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP basic auth (RFC 7617) with one user; the password stays a `Secret`."""

    username: str
    password: Secret

    REALM = "model-monitor"

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> BasicAuth | None:
        if settings.listen_username is None or settings.listen_password is None:
            return None
        return cls(settings.listen_username, settings.listen_password)

    def allows(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries this user and password.

        Both halves are compared in constant time, and both always, so the answer
        takes as long for a wrong user name as for a wrong password.
        """
        scheme, _, encoded = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, colon, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, self.username.encode("utf-8"))
        password_ok = hmac.compare_digest(password, self.password.reveal().encode("utf-8"))
        return bool(colon) and user_ok and password_ok

    @property
    def challenge(self) -> str:
        return f'Basic realm="{self.REALM}", charset="UTF-8"'


class Listener:
    """Serves /healthz, /metrics and the status pages on `address` from a daemon thread
    until `stop()`."""

    def __init__(
        self,
        address: str,
        *,
        health: Callable[[], HealthAnswer],
        metrics: Metrics | None = None,
        pages: StatusPages | None = None,
        auth: BasicAuth | None = None,
    ) -> None:
        self.host, self.port = parse_address(address)
        self.health = health
        self.metrics = metrics
        self.pages = pages
        self.auth = auth
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind (raises OSError when the address is taken or not local) and serve."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self.port), _Handler, self, family)
        self.port = self._server.server_address[1]  # the real one when asked for port 0
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="listener",
            daemon=True,
        )
        self._thread.start()
        log.info("listening on %s (/healthz, /metrics)", self.url)
        if self.pages is not None:
            log.info(
                "status pages at %s/ (/matrix, /changes, /changes.atom)%s",
                self.url,
                ", basic auth required" if self.auth else "",
            )
        if self.auth is None and not is_loopback(self.host):
            log.warning(
                "listening on %s without authentication: anyone who can reach it can read "
                "the status pages and metrics; set [monitor] listen_username and "
                "listen_password_env, or listen on 127.0.0.1",
                self.url,
            )
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        listener: Listener,
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        self.listener = listener
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer's version resolves the host's FQDN, which may wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("listener: error while answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # a client that stalls loses its thread after this many seconds
    server: _Server

    def version_string(self) -> str:
        return f"{DISTRIBUTION}/{__version__}"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _not_allowed(self) -> None:
        self._send(
            405, b"method not allowed: use GET or HEAD\n", _TEXT, extra={"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _answer(self, *, head: bool) -> None:
        listener = self.server.listener
        parts = urlsplit(self.path)
        path = parts.path
        auth = listener.auth
        if path != "/healthz" and auth and not auth.allows(self.headers.get("Authorization")):
            challenge = {"WWW-Authenticate": auth.challenge}
            self._send(401, b"authentication required\n", _TEXT, head=head, extra=challenge)
            return
        if path == "/healthz":
            try:
                health = listener.health()
            except Exception:
                log.exception("listener: the health check itself failed")
                health = HealthAnswer(
                    False, {"status": "unhealthy", "reasons": ["health check failed"]}
                )
            body = json.dumps(health.body, separators=(",", ":")).encode() + b"\n"
            self._send(200 if health.ok else 503, body, "application/json", head=head)
        elif path == "/metrics" and listener.metrics is not None:
            from prometheus_client.exposition import choose_encoder

            # The classic text format unless the scraper asks for OpenMetrics.
            encode, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encode(listener.metrics.registry)
            except Exception:
                log.exception("listener: collecting metrics failed")
                self._send(500, b"collecting metrics failed\n", _TEXT, head=head)
                return
            self._send(200, body, content_type, head=head)
        elif listener.pages is not None and listener.pages.handles(path):
            page = listener.pages.respond(path, parts.query)
            self._send(
                page.status,
                page.body,
                page.content_type,
                head=head,
                extra=dict(page.headers),
                compress=True,
            )
        else:
            paths = "/, /matrix, /changes, /healthz or /metrics" if listener.pages else ""
            message = f"not found: try {paths or '/healthz or /metrics'}\n"
            self._send(404, message.encode(), _TEXT, head=head)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
        compress: bool = False,
    ) -> None:
        if compress:
            # A 1,000 x 20 matrix is mostly the same few cells: gzip shrinks it ~10x.
            if len(body) >= _GZIP_FROM and _accepts_gzip(self.headers.get("Accept-Encoding")):
                body = gzip.compress(body, compresslevel=6, mtime=0)
                extra = {**(extra or {}), "Content-Encoding": "gzip"}
            extra = {**(extra or {}), "Vary": "Accept-Encoding"}
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


_TEXT = "text/plain; charset=utf-8"
_GZIP_FROM = 1024  # bytes; smaller bodies are not worth a compressor


def _accepts_gzip(header: str | None) -> bool:
    """Whether Accept-Encoding allows gzip (`gzip;q=0` refuses it)."""
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if params else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return True
    return False
