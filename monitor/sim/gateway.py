"""A gateway on loopback that speaks the models API of every flavor, with fault injection.

The demo, the tests and the benchmarks all need a server that behaves like the real
gateways and providers: a random `data` order on every request where the real one has
it, stable pages where the real one paginates, tokens that see a group's models or
their own allow-list, 401s for expired tokens, and the failure shapes seen in the wild
(bare 429s, HTML pages from a CDN, `"success": false` with HTTP 200, dripping or
truncated bodies). It is a real HTTP/1.1 server with keep-alive, so clients exercise
their real socket code.

What goes on the wire is a `monitor.sim.wire` format (new-api, one-api, openai,
anthropic, gemini, openrouter, litellm, ollama), chosen by `flavor`; this module is the
format-independent part: tokens, groups, faults, the request log and the socket.

Everything is thread-safe: the server answers each connection on its own thread while
the test thread changes tokens and queues faults.

Besides the models lists, new-api's account routes are served with their real shapes:
the usage route (behind a limiter of 20 requests per 20 minutes, as the real gateway's
"critical" one), the OpenAI-style billing routes and the pricing page. A simulated
token holds an account (`set_usage`) that these routes report.

And the calls a probe makes to learn whether a listed model is callable (`POST
/v1/chat/completions`, `/v1/embeddings`, `/v1/messages`) are answered as new-api
answers them, with per-model verdicts a test sets (`set_verdict`) and a log of every
call (`calls`, `call_counts`); `monitor.sim.calls` holds that part.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import random
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, Self

from monitor.sim.calls import (
    CALL_PATHS,
    CallAccount,
    CallDesk,
    CallRecord,
    call_token,
    read_body,
)
from monitor.sim.wire import WIRE_FORMATS
from monitor.sim.wire.base import (
    CREATED,
    EMPTY,
    JSON,
    Caller,
    JsonNumber,
    ModelSet,
    WireFormat,
    WireRequest,
    WireResponse,
    fingerprint,
    gateway_error,
    make_model,
    request_id,
)
from monitor.sim.wire.base import encode as _encode
from monitor.sim.wire.base import phrase as _phrase
from monitor.sim.wire.new_api import NewApiWire
from monitor.sim.wire.one_api import QUOTA_PER_UNIT

__all__ = [
    "CREATED",
    "SIM_FLAVORS",
    "CallRecord",
    "Fault",
    "GatewaySimulator",
    "LoopbackServer",
    "RequestLog",
    "fingerprint",
    "make_model",
]

SIM_FLAVORS = tuple(WIRE_FORMATS)


# -- faults -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server, queued with `GatewaySimulator.inject`.

    With neither `status` nor `body` set, the server computes its normal answer (a
    models list, or a 401) and the transport fields below change how it is sent.
    With either set, that answer is replaced: `status` defaults to 200 and `body` to
    empty. A dict or list body is sent as compact JSON.

    - `delay`: seconds to wait before answering.
    - `drip_interval`: send the body one byte per this many seconds.
    - `truncate`: send only the first N bytes of the body, then close, while the
      headers still declare the full length (0: headers only).
    - `close`: drop the connection without any response.
    - `chunked`: send with `Transfer-Encoding: chunked` instead of a Content-Length.

    `message`/`code` with `status` and no `body` (what `Fault.http` builds): the body
    is the active wire format's error for that status, rendered per request, so one
    fault reads right in every format.

    Use the classmethods: they build the shapes real gateways produce.
    """

    status: int | None = None
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] | Mapping[str, str] = ()
    delay: float = 0.0
    drip_interval: float = 0.0
    truncate: int | None = None
    close: bool = False
    chunked: bool = False
    message: str | None = None
    code: str = ""

    def __post_init__(self) -> None:
        # Callers may pass a dict body or dict headers; the stored values are bytes
        # and tuples, so a Fault stays immutable and cheap to send many times.
        if self.body is not None and not isinstance(self.body, bytes):
            object.__setattr__(self, "body", _encode(self.body))
        items = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in items))

    @property
    def replaces_response(self) -> bool:
        return self.status is not None or self.body is not None

    @property
    def renders_error(self) -> bool:
        """Whether the body is the wire format's error for `status`."""
        return self.status is not None and self.body is None and self.message is not None

    @property
    def body_bytes(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else b""

    @property
    def header_items(self) -> tuple[tuple[str, str], ...]:
        return self.headers if isinstance(self.headers, tuple) else ()

    @classmethod
    def http(
        cls,
        status: int,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        *,
        message: str | None = None,
        code: str = "",
    ) -> Fault:
        """An HTTP error in the active format's error shape (or with the given body).

        new-api's shape is `{"error":{"message":"... (request id: X)","type":
        "new_api_error","code":code}}`; Anthropic's, Gemini's and the others' are
        their own. `message` defaults to the format's wording for `status`.
        """
        if body is not None:
            return cls(status=status, body=body)
        return cls(status=status, message=message or "", code=code)

    @classmethod
    def overloaded(cls) -> Fault:
        """Anthropic's 529 `overloaded_error` (other formats: their 529 error body)."""
        return cls.http(529)

    @classmethod
    def panic(cls) -> Fault:
        """A 500 from new-api's panic recovery middleware."""
        message = (
            "Panic detected, error: runtime error: invalid memory address or nil pointer "
            "dereference. Please submit a issue here: https://github.com/Calcium-Ion/new-api"
        )
        return cls(status=500, body={"error": {"message": message, "type": "new_api_panic"}})

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """A CDN or reverse proxy answering with its own HTML page."""
        phrase = _phrase(status)
        page = (
            "<!DOCTYPE html>\n<html>\n<head><title>"
            f"{status} {phrase}</title></head>\n<body>\n<center><h1>{status} {phrase}</h1>"
            "</center>\n<hr><center>cloudflare</center>\n</body>\n</html>\n"
        )
        return cls(status=status, body=page, content_type="text/html; charset=UTF-8")

    @classmethod
    def rate_limited(
        cls, retry_after: float | str | None = None, *, retry_after_ms: float | None = None
    ) -> Fault:
        """new-api's rate limiter: a bare 429 with no body.

        `retry_after` is seconds or an HTTP date string for the Retry-After header;
        `retry_after_ms` sets the `retry-after-ms` header some providers send.
        """
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            value = retry_after
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            headers.append(("Retry-After", str(value)))
        if retry_after_ms is not None:
            headers.append(("retry-after-ms", str(retry_after_ms)))
        return cls(status=429, body=b"", content_type=None, headers=tuple(headers))

    @classmethod
    def success_false(cls, message: str = "获取用户分组失败") -> Fault:
        """HTTP 200 with `{"success": false}`: how new-api reports a failing handler."""
        return cls(status=200, body={"success": False, "message": message})

    @classmethod
    def error_body(
        cls, message: str = "upstream error", *, type: str = "new_api_error", status: int = 200
    ) -> Fault:
        """An `{"error": {...}}` body, by default with HTTP 200."""
        return cls(
            status=status, body=gateway_error(f"{message} (request id: {request_id()})", type)
        )

    @classmethod
    def truncated(cls, after: int = 64) -> Fault:
        """The normal answer cut after `after` bytes, its full Content-Length still declared."""
        return cls(truncate=after)

    @classmethod
    def invalid_utf8(cls) -> Fault:
        """HTTP 200, a models list whose bytes are not valid UTF-8."""
        body = (
            b'{"data":[{"id":"gpt-4o-\xff\xfe","object":"model","created":1626777600,'
            b'"owned_by":"openai","supported_endpoint_types":["openai"]}],'
            b'"object":"list","success":true}'
        )
        return cls(status=200, body=body)

    @classmethod
    def data(cls, value: Any) -> Fault:
        """HTTP 200, new-api's envelope with `data` replaced (None, {}, a bad list...)."""
        return cls(status=200, body={"data": value, "object": "list", "success": True})

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """The normal answer after `seconds`."""
        return cls(delay=seconds)

    @classmethod
    def drip(cls, seconds_per_byte: float) -> Fault:
        """The normal answer, one body byte per `seconds_per_byte`."""
        return cls(drip_interval=seconds_per_byte)

    @classmethod
    def disconnect(cls) -> Fault:
        """The connection dropped without a response."""
        return cls(close=True)

    @classmethod
    def oversize(cls, n_bytes: int, *, chunked: bool = False) -> Fault:
        """HTTP 200, a valid new-api models list of at least `n_bytes` bytes.

        With `chunked`, no Content-Length is declared, so a client can only notice
        the size while reading.
        """
        parts: list[bytes] = []
        size = 0
        for i in itertools.count():
            part = _encode(make_model(f"oversize-{i:08d}"))
            parts.append(part)
            size += len(part) + 1
            if size >= n_bytes:
                break
        body = b'{"data":[' + b",".join(parts) + b'],"object":"list","success":true}'
        return cls(status=200, body=body, chunked=chunked)


# -- the server plumbing ------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal here (timeouts are tested on
        # purpose); anything else is a bug in the simulator and is printed.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real gateways
    server_version = "sim"
    timeout = 30  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        # As Go's net/http does; without it, a small body written after the headers
        # waits for a delayed ACK (40 ms) on Linux.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo print what matters themselves."""


class LoopbackServer:
    """A ThreadingHTTPServer on a daemon thread: what both simulators share.

    Port 0 picks a free port at the first `start()`; later starts reuse it so a test
    can take the server down and bring it back at the same URL. Open connections are
    tracked so `stop()` can cut idle keep-alive connections instead of leaving
    handler threads waiting on them.
    """

    handler_class: ClassVar[type[_Handler]] = _Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Set while stopping, so sleeping handlers (delay, drip) give up at once.
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._port), self.handler_class)
        server.owner = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() returns within 10 ms
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the server is stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)

    def _track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)


# -- the gateway --------------------------------------------------------------------------


class RequestLog(NamedTuple):
    """One request, logged when it arrived. `token` is a fingerprint, never the value.

    `status` is None while the request is in flight (a slow fault, latency) and stays
    None when the connection was dropped without a response.
    """

    path: str
    token: str | None
    status: int | None


@dataclass(slots=True)
class _Arrival:
    path: str
    token: str | None
    status: int | None = None
    method: str = "GET"


@dataclass
class _IssuedKey:
    """A key the simulator issued, as new-api's token table holds it (quota units).

    `total_available` is what is left of `total_granted` after `total_used`; it may go
    below zero, as new-api's remaining quota can after a large request.
    """

    models: ModelSet | None = None  # its own allow-list, which wins over the group
    group: str = "default"
    expires_at: int = -1  # new-api's "never"
    total_granted: int = QUOTA_PER_UNIT
    total_used: int = 0
    unlimited: bool = False

    @property
    def total_available(self) -> int:
        return self.total_granted - self.total_used

    @property
    def expired(self) -> bool:
        return self.expires_at != -1 and self.expires_at <= time.time()

    @property
    def exhausted(self) -> bool:
        return not self.unlimited and self.total_available <= 0


@dataclass
class _Limiter:
    """new-api's in-memory sliding window: a request passes when fewer than `count`
    passed in the last `window` seconds; a refused one is not remembered."""

    count: int | None
    window: float
    passed: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        if self.count is None:
            return True
        if len(self.passed) >= self.count:
            if now - self.passed[0] < self.window:
                return False
            self.passed.popleft()
        self.passed.append(now)
        return True


@dataclass
class _QueuedFault:
    fault: Fault
    token: str | None
    remaining: int | None  # None: until clear_faults()
    skip: int = 0  # matching requests still to let through


@dataclass
class _State:
    tokens: dict[str, _IssuedKey] = field(default_factory=dict)
    groups: dict[str, ModelSet] = field(default_factory=dict)
    faults: list[_QueuedFault] = field(default_factory=list)
    log: list[_Arrival] = field(default_factory=list)
    limiter: _Limiter = field(default_factory=lambda: _Limiter(20, 1200.0))
    limited_arrivals: list[float] = field(default_factory=list)  # usage_clock times
    limited_answered: list[float] = field(default_factory=list)  # those answered 200


class _GatewayHandler(_Handler):
    server_version = "new-api"

    def do_GET(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, GatewaySimulator)
        owner._handle(self)

    def do_POST(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, GatewaySimulator)
        owner._handle_call(self)


class GatewaySimulator(LoopbackServer):
    """A models endpoint on loopback in any format of `monitor.sim.wire.WIRE_FORMATS`.

    `flavor` picks the format and may be changed while running; `base_url` follows it
    (`/v1`, Gemini's `/v1beta`, OpenRouter's `/api/v1`). `wire` is the active format
    object, for its options (LiteLLM's `connected_db`). `latency` seconds are added to
    every answer. Where a format shuffles (new-api, one-api, openai), the order comes
    from `random.Random(seed)`, so a run is repeatable for a given sequence of requests.

    A token sees its own allow-list (`set_models`) if it has one, else the models of
    its group (`set_group`; tokens without a group are in "default"). Formats without
    auth (OpenRouter, Ollama) show an unknown or missing token the "default" group.

    `usage_clock` (a constructor keyword and a settable attribute, `time.monotonic` by
    default) is the time source of the usage route's limiter, `usage_requests`,
    `max_usage_in_window` and the calls' `CallRecord.at`: a test passes a function
    returning seconds it advances itself, so a 20-minute window passes instantly. Any
    steadily increasing number of seconds will do. Token expiry stays on wall-clock time
    (`time.time`), as `expires_at` is Unix time.
    """

    handler_class = _GatewayHandler

    def __init__(
        self,
        *,
        flavor: str = "new-api",
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        compress: bool = False,
        usage_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`compress` gzips answers for clients that accept it, as CDNs do."""
        super().__init__(host, port)
        self.usage_clock = usage_clock
        # One object per format, so options set on one survive a flavor switch.
        self._wires: dict[str, WireFormat[Any]] = {
            name: wire() for name, wire in WIRE_FORMATS.items()
        }
        self.flavor = flavor
        self.latency = latency
        self.compress = compress
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._state = _State()
        self._desk = CallDesk(seed)

    @property
    def flavor(self) -> str:
        return self._flavor

    @flavor.setter
    def flavor(self, value: str) -> None:
        if value not in self._wires:
            raise ValueError(f"flavor must be one of {', '.join(SIM_FLAVORS)}, not {value!r}")
        self._flavor = value

    @property
    def wire(self) -> WireFormat[Any]:
        """The active wire format (changes with `flavor`)."""
        return self._wires[self._flavor]

    @property
    def base_url(self) -> str:
        """The URL a client of the active format would configure."""
        return f"http://{self.host}:{self.port}{self.wire.base_path}"

    # -- tokens and models

    def add_token(
        self,
        value: str,
        models: Iterable[Mapping[str, Any] | str] | None = None,
        group: str | None = None,
    ) -> None:
        """Create (or replace) a token. Models may be dicts from `make_model` or bare ids."""
        token = _IssuedKey(
            models=None if models is None else ModelSet(models), group=group or "default"
        )
        with self._lock:
            self._state.tokens[value] = token

    def set_group(self, name: str, models: Iterable[Mapping[str, Any] | str]) -> None:
        """Set the models every token of group `name` sees (unless it has its own list)."""
        model_set = ModelSet(models)
        with self._lock:
            self._state.groups[name] = model_set

    def set_models(self, value: str, models: Iterable[Mapping[str, Any] | str] | None) -> None:
        """Give a token its own allow-list (None: back to its group's models)."""
        model_set = None if models is None else ModelSet(models)
        with self._lock:
            self._token(value).models = model_set

    def expire_token(self, value: str) -> None:
        """From now on the token is refused (new-api: 401 "Invalid token")."""
        with self._lock:
            self._token(value).expires_at = int(time.time()) - 1

    def renew_token(self, value: str) -> None:
        """Undo expire_token and exhaust_token: the token works again.

        It never expires, and at least 500,000 units (1 USD) are available: quota is
        granted on top of what was used, as an operator topping a token up does.
        """
        with self._lock:
            state = self._token(value)
            state.expires_at = -1
            if state.total_available < QUOTA_PER_UNIT:
                state.total_granted = state.total_used + QUOTA_PER_UNIT

    def exhaust_token(self, value: str) -> None:
        """From now on the token has no quota left (new-api: the same 401).

        All it was granted counts as used, and an unlimited token becomes limited.
        """
        with self._lock:
            state = self._token(value)
            state.total_used = state.total_granted
            state.unlimited = False

    def set_usage(
        self,
        value: str,
        *,
        granted: int | None = None,
        used: int | None = None,
        unlimited: bool | None = None,
        expires_at: int | None = None,
    ) -> None:
        """Change a token's account in quota units (500,000 = 1 USD); None keeps a field.

        `expires_at` is Unix seconds, or 0 for never (as the usage route reports it).
        Available is `granted - used`; an unlimited token is never exhausted. Safe
        while the server runs: the next request sees the new account.
        """
        for name, number in (("granted", granted), ("used", used), ("expires_at", expires_at)):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
                raise TypeError(f"{name} must be an int, not {number!r}")
        with self._lock:
            state = self._token(value)
            if granted is not None:
                state.total_granted = granted
            if used is not None:
                state.total_used = used
            if unlimited is not None:
                state.unlimited = unlimited
            if expires_at is not None:
                state.expires_at = -1 if expires_at <= 0 else expires_at

    def visible_models(self, value: str) -> list[dict[str, Any]]:
        """The canonical models the token sees now (`make_model` dicts)."""
        with self._lock:
            return [dict(m) for m in self._models_of(self._token(value)).models]

    # -- account routes

    def set_usage_limit(self, count: int | None, window: float = 1200.0) -> None:
        """Limit the usage route to `count` requests per `window` seconds (None: off).

        new-api's "critical" limiter, per client address (one on loopback): a request
        is refused with a bare 429 when `count` requests passed it in the last `window`
        seconds; refused requests do not count towards later ones. The default is
        the real gateway's, 20 per 1200 s. Starts with an empty memory.
        """
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for no limit)")
        if window <= 0:
            raise ValueError("window must be positive")
        with self._lock:
            self._state.limiter = _Limiter(count, float(window))

    def usage_requests(self) -> list[float]:
        """When (`usage_clock` time) each usage-route request that was answered 200 arrived."""
        with self._lock:
            return list(self._state.limited_answered)

    def max_usage_in_window(self, window: float = 1200.0) -> int:
        """The most usage-route requests, refused ones included, that arrived within
        any `window` seconds (a half-open span, as the limiter counts): what a polite
        client keeps at or below the limit."""
        with self._lock:
            times = sorted(self._state.limited_arrivals)
        best = start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def set_pricing(
        self,
        models: Iterable[Mapping[str, Any]],
        group_ratio: Mapping[str, float | int | str | JsonNumber] | None = None,
        *,
        usable_group: Mapping[str, str] | None = None,
    ) -> None:
        """Replace new-api's `/api/pricing` list: one dict per model, as new-api sends it.

        Missing keys get new-api's usual values (`quota_type` 0, `model_price` 0,
        `completion_ratio` 1, `enable_groups` ["default"], `supported_endpoint_types`
        ["openai"], empty `owner_by`, `description`, `tags`, `vendor_id` 0; a missing
        `model_ratio` is the 37.5 "no price set"). A number given as a string, such
        as "0.0375", is sent as exactly that JSON number. `group_ratio` defaults to 1
        for every group the entries enable; `usable_group` to a description of each.
        """
        self._new_api.set_pricing(models, group_ratio, usable_group=usable_group)

    def hide_pricing(self, status: int | None) -> None:
        """Hide new-api's pricing page: 403 "pricing is disabled", 401 login needed;
        None shows it again."""
        self._new_api.hide_pricing(status)

    @property
    def _new_api(self) -> NewApiWire:
        wire = self._wires[NewApiWire.name]
        assert isinstance(wire, NewApiWire)
        return wire

    def _token(self, value: str) -> _IssuedKey:
        try:
            return self._state.tokens[value]
        except KeyError:
            raise KeyError(f"no token with fingerprint {fingerprint(value)}") from None

    def _models_of(self, token: _IssuedKey | None) -> ModelSet:
        if token is not None and token.models is not None:
            return token.models
        group = "default" if token is None else token.group
        return self._state.groups.get(group, EMPTY)

    # -- faults

    def inject(
        self, fault: Fault, token: str | None = None, times: int | None = 1, *, skip: int = 0
    ) -> None:
        """Apply `fault` to `times` models requests of `token` (None: any token).

        The fault waits until `skip` matching requests have passed it, so a test can
        break the middle page of a walk (`skip=1`: the second page). Matching requests
        count towards `skip` whether or not another fault hit them. `times=None` keeps
        the fault until `clear_faults()`. Faults apply to the active format's models
        routes only; among faults that are due, the first queued wins. The token is
        the one the format reads (Bearer, `x-api-key`, `x-goog-api-key`...).
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if skip < 0:
            raise ValueError("skip must not be negative")
        with self._lock:
            self._state.faults.append(_QueuedFault(fault, token, times, skip))

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def _take_fault(self, token: str | None) -> Fault | None:
        chosen: Fault | None = None
        with self._lock:
            faults = self._state.faults
            for queued in list(faults):
                if queued.token is not None and queued.token != token:
                    continue
                if queued.skip > 0:
                    queued.skip -= 1
                    continue
                if chosen is not None:
                    continue  # due as well, but queued later: waits for the next request
                chosen = queued.fault
                if queued.remaining is not None:
                    queued.remaining -= 1
                    if queued.remaining == 0:
                        faults.remove(queued)
        return chosen

    # -- observability

    @property
    def requests(self) -> list[RequestLog]:
        """Every request so far, oldest first, as logged on arrival (a copy)."""
        with self._lock:
            return [RequestLog(e.path, e.token, e.status) for e in self._state.log]

    def requests_count(self, token_value: str | None = None) -> int:
        """Requests received, for one token or (None) in total."""
        with self._lock:
            if token_value is None:
                return len(self._state.log)
            fp = fingerprint(token_value)
            return sum(1 for entry in self._state.log if entry.token == fp)

    def polls(self, token_value: str | None = None) -> int:
        """Requests for a models list (any format's models routes), for one token or (None)
        in total: the count a poll adds one to, whatever else the monitor asks for."""
        paths = frozenset().union(*(wire.models_paths for wire in WIRE_FORMATS.values()))
        fp = None if token_value is None else fingerprint(token_value)
        with self._lock:
            return sum(
                1
                for entry in self._state.log
                if entry.method == "GET"
                and entry.path in paths
                and (fp is None or entry.token == fp)
            )

    def reset_requests(self) -> None:
        """Forget the request log, the calls, `usage_requests` and the usage-route arrivals
        behind `max_usage_in_window`; the limiter keeps its memory, as the gateway would."""
        with self._lock:
            self._state.log.clear()
            self._state.limited_arrivals.clear()
            self._state.limited_answered.clear()
        self._desk.reset()

    # -- calls (probes)

    def set_verdict(self, model: str, verdict: str | None, *, token: str | None = None) -> None:
        """How calls to `model` are answered, for every token or only for the token whose
        value is `token` (which wins over the verdict for every token); None clears it.

        "ok" (200), "no_channel" (503 `model_not_found`, naming the token's group),
        "unpriced" (400 `model_price_error`), "forbidden" (403 no access to the model),
        "quota" (403 `pre_consume_token_quota_failed`), "rate_limited" (a bare 429, see
        `set_retry_after`), "upstream_error" (502 `bad_response_status_code`), "slow"
        (200 after `set_slow_seconds`). A verdict decides whatever the token sees; an
        unknown one raises ValueError. Checks that come first in new-api still apply: a
        refused token gets 401, a bad body 400 (see `monitor.sim.calls`).
        """
        self._desk.set_verdict(model, verdict, token)

    def clear_verdicts(self) -> None:
        """Forget every verdict: calls answer by what each token sees again."""
        self._desk.clear_verdicts()

    def set_slow_seconds(self, seconds: float) -> None:
        """How long a "slow" verdict waits before answering (default 5)."""
        self._desk.set_slow_seconds(seconds)

    def set_retry_after(self, seconds: float | None) -> None:
        """The Retry-After a "rate_limited" verdict sends (None, the default: none, as
        new-api's limiter; a proxy in front may add one)."""
        self._desk.set_retry_after(seconds)

    def calls(self, token: str | None = None) -> list[CallRecord]:
        """The calls so far, oldest first, of the token with value `token` or (None) all."""
        return self._desk.records(token)

    def call_counts(self) -> Counter[tuple[str | None, str | None]]:
        """How many calls each (token value, model) made; `polls()` never counts them."""
        return self._desk.counts()

    # -- serving (on handler threads)

    def _handle(self, handler: _GatewayHandler) -> None:
        wire = self.wire  # one format for the whole request, even if flavor changes
        request = WireRequest.parse(handler.command, handler.path, handler.headers.items())
        token = wire.token(request)
        arrival = _Arrival(request.path, None if token is None else fingerprint(token))
        limited = request.path in wire.limited_paths
        now = self.usage_clock() if limited else 0.0
        admitted = True
        with self._lock:
            self._state.log.append(arrival)
            if limited:
                self._state.limited_arrivals.append(now)
                admitted = self._state.limiter.admit(now)
        fault = self._take_fault(token) if request.path in wire.models_paths else None
        if self._pause(self.latency):
            handler.close_connection = True
            return
        if fault is not None and fault.delay and self._pause(fault.delay):
            handler.close_connection = True
            return
        if fault is not None and fault.close:
            handler.close_connection = True
            return
        if fault is not None and fault.renders_error:
            status = fault.status or 500
            response = wire.error(status, fault.message or wire.default_message(status), fault.code)
            response = response._replace(headers=response.headers + fault.header_items)
        elif fault is not None and fault.replaces_response:
            response = WireResponse(
                fault.status or 200, fault.body_bytes, fault.content_type, fault.header_items
            )
        elif limited and not admitted:
            response = wire.too_many_requests()
        else:
            response = self._answer(wire, request, token)
            if fault is not None and fault.header_items:
                response = response._replace(headers=response.headers + fault.header_items)
        with self._lock:
            arrival.status = response.status
            if limited and response.status == 200:
                self._state.limited_answered.append(now)
        self._write(handler, response, fault)

    def _handle_call(self, handler: _GatewayHandler) -> None:
        """A POST: a probe's call on `CALL_PATHS`, the active format's 404 elsewhere.

        Logged in the request log like any request; faults do not apply, `latency` does.
        """
        request = WireRequest.parse(handler.command, handler.path, handler.headers.items())
        token = call_token(request)
        arrival = _Arrival(
            request.path, None if token is None else fingerprint(token), method=request.method
        )
        with self._lock:
            self._state.log.append(arrival)
        body = read_body(request, handler.rfile)
        delay = 0.0
        if isinstance(body, WireResponse):
            response = body
            handler.close_connection = True  # its unread body would read as the next request
        elif request.path not in CALL_PATHS:
            response = self.wire.not_found(request)
        else:
            answer = self._desk.answer(request, body, self._account(token), self.usage_clock())
            response, delay = answer.response, answer.delay
        if self._pause(self.latency + delay):
            handler.close_connection = True
            return
        with self._lock:
            arrival.status = response.status
        self._write(handler, response, None)

    def _account(self, token: str | None) -> CallAccount:
        with self._lock:
            state = self._state.tokens.get(token) if token is not None else None
            return CallAccount(
                token=token,
                usable=state is not None and not state.expired and not state.exhausted,
                group="default" if state is None else state.group,
                models=self._models_of(state),
                limited=state is not None and state.models is not None,
                available=0 if state is None else state.total_available,
            )

    def _answer(
        self, wire: WireFormat[Any], request: WireRequest, token: str | None
    ) -> WireResponse:
        with self._lock:
            state = self._state.tokens.get(token) if token is not None else None
            caller = Caller(
                token=token,
                known=state is not None,
                expired=state is not None and state.expired,
                exhausted=state is not None and state.exhausted,
                models=self._models_of(state),
                expires_at=-1 if state is None else state.expires_at,
                total_available=0 if state is None else state.total_available,
                total_granted=0 if state is None else state.total_granted,
                total_used=0 if state is None else state.total_used,
                unlimited=state is not None and state.unlimited,
                default_models=self._state.groups.get("default", EMPTY),
            )
            seed = self._rng.getrandbits(64)
        return wire.respond(request, caller, random.Random(seed))

    def _write(self, handler: _Handler, response: WireResponse, fault: Fault | None) -> None:
        body = response.body
        accepts_gzip = "gzip" in handler.headers.get("Accept-Encoding", "")
        headers = list(response.headers)
        if self.compress and body and accepts_gzip:
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        chunked = fault is not None and fault.chunked
        if chunked:
            payload = (
                b"".join(
                    b"%x\r\n%s\r\n" % (len(body[i : i + 16384]), body[i : i + 16384])
                    for i in range(0, len(body), 16384)
                )
                + b"0\r\n\r\n"
            )
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            payload = body
            headers.append(("Content-Length", str(len(body))))
        if fault is not None and fault.truncate is not None:
            payload = payload[: max(0, min(fault.truncate, len(payload) - 1))]
            handler.close_connection = True
        try:
            handler.send_response(response.status)
            if response.content_type:
                handler.send_header("Content-Type", response.content_type)
            for name, value in headers:
                handler.send_header(name, value)
            handler.end_headers()
            interval = fault.drip_interval if fault is not None else 0.0
            if interval > 0:
                for i in range(len(payload)):
                    handler.wfile.write(payload[i : i + 1])
                    if self._pause(interval):
                        handler.close_connection = True
                        return
            else:
                handler.wfile.write(payload)
        except OSError:  # the client gave up (a timeout under test)
            handler.close_connection = True
