"""A gateway on loopback that speaks new-api's `GET /v1/models`, with fault injection.

The demo, the tests and the benchmarks all need a server that behaves like the real
gateways in REFERENCE.md: a random `data` order on every request, tokens that see a
group's models or their own allow-list, 401s for expired tokens, and the failure
shapes seen in the wild (bare 429s, HTML pages from a CDN, `"success": false` with
HTTP 200, dripping or truncated bodies). It is a real HTTP/1.1 server with keep-alive,
so clients exercise their real socket code.

Everything is thread-safe: the server answers each connection on its own thread while
the test thread changes tokens and queues faults.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, Self
from urllib.parse import urlsplit

SIM_FLAVORS = ("new-api", "one-api", "openai")

# new-api and one-api report this constant for every model (REFERENCE.md).
CREATED = 1626777600

_MODELS_PATHS = frozenset({"/v1/models", "/v1/models/"})
_USAGE_PATHS = frozenset({"/api/usage/token", "/api/usage/token/"})
_JSON = "application/json; charset=utf-8"
_request_ids = itertools.count(1)


def make_model(
    id: str,
    endpoint_types: Iterable[str] | None = ("openai",),
    owned_by: str = "openai",
) -> dict[str, Any]:
    """A model in new-api's wire format; the server adapts it to the flavor it plays.

    `endpoint_types=None` leaves out `supported_endpoint_types`, as deployments from
    before mid-2025 do.
    """
    model: dict[str, Any] = {"id": id, "object": "model", "created": CREATED, "owned_by": owned_by}
    if endpoint_types is not None:
        model["supported_endpoint_types"] = list(endpoint_types)
    return model


def fingerprint(token: str) -> str:
    """How the request log names a token: never by its value."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def _request_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{next(_request_ids):08d}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 529 and other non-standard codes
        return ""


def _error_body(message: str, type: str = "new_api_error", code: str = "") -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code}}


def _encode(body: bytes | str | Mapping[str, Any] | list[Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


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

    Use the classmethods: they build the shapes real gateways produce.
    """

    status: int | None = None
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    content_type: str | None = _JSON
    headers: tuple[tuple[str, str], ...] | Mapping[str, str] = ()
    delay: float = 0.0
    drip_interval: float = 0.0
    truncate: int | None = None
    close: bool = False
    chunked: bool = False

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
        """An HTTP error with new-api's error body (or the given body)."""
        if body is None:
            text = message or _phrase(status) or "error"
            body = _error_body(f"{text} (request id: {_request_id()})", code=code)
        return cls(status=status, body=body)

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
        return cls(status=429, body=b"", content_type=None, headers=headers)

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
            status=status, body=_error_body(f"{message} (request id: {_request_id()})", type)
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
        """HTTP 200, a valid models list of at least `n_bytes` bytes.

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
    """One request the simulator answered. `token` is a fingerprint, never the value."""

    path: str
    token: str | None
    status: int | None  # None: the connection was dropped without a response


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: str | None = _JSON
    headers: tuple[tuple[str, str], ...] = ()


class _ModelSet:
    """An immutable list of models plus its pre-encoded JSON, per flavor.

    Encoding each model once and only shuffling and joining bytes per request is what
    keeps a 1,000-model answer cheap enough for benchmarks.
    """

    def __init__(self, models: Iterable[Mapping[str, Any] | str]) -> None:
        items: list[dict[str, Any]] = []
        for model in models:
            item = make_model(model) if isinstance(model, str) else dict(model)
            if not isinstance(item.get("id"), str):
                raise ValueError(f"a model needs a string id: {item!r}")
            items.append(item)
        self.models: tuple[dict[str, Any], ...] = tuple(items)
        # Filled lazily; two threads may both compute an entry, with equal results.
        self._fragments: dict[str, tuple[Any, ...]] = {}

    def fragments(self, flavor: str) -> tuple[Any, ...]:
        cached = self._fragments.get(flavor)
        if cached is None:
            cached = tuple(_fragment(model, flavor) for model in self.models)
            self._fragments[flavor] = cached
        return cached


def _fragment(model: Mapping[str, Any], flavor: str) -> bytes | tuple[bytes, bytes]:
    """A model's JSON for one flavor; for one-api a (head, tail) around a permission id."""
    if flavor == "new-api":
        return _encode(dict(model))
    base = {
        "id": model["id"],
        "object": "model",
        "created": model.get("created", CREATED),
        "owned_by": model.get("owned_by", "openai"),
    }
    if flavor == "openai":
        return _encode(base)
    head = _encode(base)[:-1] + b',"permission":[{"id":"modelperm-'
    tail = (
        b'","object":"model_permission","created":1626777600,"allow_create_engine":true,'
        b'"allow_sampling":true,"allow_logprobs":true,"allow_search_indices":false,'
        b'"allow_view":true,"allow_fine_tuning":false,"organization":"*","group":null,'
        b'"is_blocking":false}],"root":' + _encode(json.dumps(model["id"])) + b',"parent":null}'
    )
    return head, tail


_EMPTY = _ModelSet(())


@dataclass
class _Token:
    models: _ModelSet | None = None  # its own allow-list, which wins over the group
    group: str = "default"
    expires_at: int = -1  # new-api's "never"
    total_available: int = 500_000

    @property
    def expired(self) -> bool:
        return self.expires_at != -1 and self.expires_at <= time.time()

    @property
    def refused(self) -> bool:
        """new-api refuses expired and exhausted tokens alike: 401 "Invalid token"."""
        return self.expired or self.total_available <= 0


@dataclass
class _QueuedFault:
    fault: Fault
    token: str | None
    remaining: int | None  # None: until clear_faults()


@dataclass
class _State:
    tokens: dict[str, _Token] = field(default_factory=dict)
    groups: dict[str, _ModelSet] = field(default_factory=dict)
    faults: list[_QueuedFault] = field(default_factory=list)
    log: list[RequestLog] = field(default_factory=list)


class _GatewayHandler(_Handler):
    server_version = "new-api"

    def do_GET(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, GatewaySimulator)
        owner._handle(self)


class GatewaySimulator(LoopbackServer):
    """A new-api (or one-api, or plain OpenAI) models endpoint on loopback.

    `flavor` may be changed while running. `latency` seconds are added to every
    answer. The random order of `data` comes from `random.Random(seed)`, so a run is
    repeatable for a given sequence of requests.

    A token sees its own allow-list (`set_models`) if it has one, else the models of
    its group (`set_group`; tokens without a group are in "default").
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
    ) -> None:
        """`compress` gzips answers for clients that accept it, as CDNs do."""
        super().__init__(host, port)
        if flavor not in SIM_FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(SIM_FLAVORS)}, not {flavor!r}")
        self.flavor = flavor
        self.latency = latency
        self.compress = compress
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._state = _State()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- tokens and models

    def add_token(
        self,
        value: str,
        models: Iterable[Mapping[str, Any] | str] | None = None,
        group: str | None = None,
    ) -> None:
        """Create (or replace) a token. Models may be dicts from `make_model` or bare ids."""
        token = _Token(
            models=None if models is None else _ModelSet(models), group=group or "default"
        )
        with self._lock:
            self._state.tokens[value] = token

    def set_group(self, name: str, models: Iterable[Mapping[str, Any] | str]) -> None:
        """Set the models every token of group `name` sees (unless it has its own list)."""
        model_set = _ModelSet(models)
        with self._lock:
            self._state.groups[name] = model_set

    def set_models(self, value: str, models: Iterable[Mapping[str, Any] | str] | None) -> None:
        """Give a token its own allow-list (None: back to its group's models)."""
        model_set = None if models is None else _ModelSet(models)
        with self._lock:
            self._token(value).models = model_set

    def expire_token(self, value: str) -> None:
        """From now on the token gets new-api's 401 "Invalid token"."""
        with self._lock:
            self._token(value).expires_at = int(time.time()) - 1

    def renew_token(self, value: str) -> None:
        """Undo expire_token and exhaust_token: the token works again."""
        with self._lock:
            state = self._token(value)
            state.expires_at = -1
            state.total_available = max(state.total_available, 500_000)

    def exhaust_token(self, value: str) -> None:
        """From now on the token has no quota left (and gets the same 401)."""
        with self._lock:
            self._token(value).total_available = 0

    def visible_models(self, value: str) -> list[dict[str, Any]]:
        """The models the token sees now, in new-api format (what a test expects)."""
        with self._lock:
            return [dict(m) for m in self._models_of(self._token(value)).models]

    def _token(self, value: str) -> _Token:
        try:
            return self._state.tokens[value]
        except KeyError:
            raise KeyError(f"no token with fingerprint {fingerprint(value)}") from None

    def _models_of(self, token: _Token) -> _ModelSet:
        if token.models is not None:
            return token.models
        return self._state.groups.get(token.group, _EMPTY)

    # -- faults

    def inject(self, fault: Fault, token: str | None = None, times: int | None = 1) -> None:
        """Apply `fault` to the next `times` models requests of `token` (None: any token).

        `times=None` keeps the fault until `clear_faults()`. Faults apply to
        `/v1/models` only, in the order they were queued.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        with self._lock:
            self._state.faults.append(_QueuedFault(fault, token, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    def _take_fault(self, token: str | None) -> Fault | None:
        with self._lock:
            faults = self._state.faults
            for i, queued in enumerate(faults):
                if queued.token is None or queued.token == token:
                    if queued.remaining is not None:
                        queued.remaining -= 1
                        if queued.remaining == 0:
                            del faults[i]
                    return queued.fault
        return None

    # -- observability

    @property
    def requests(self) -> list[RequestLog]:
        """Every request answered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._state.log)

    def requests_count(self, token_value: str | None = None) -> int:
        """Requests answered, for one token or (None) in total."""
        with self._lock:
            if token_value is None:
                return len(self._state.log)
            fp = fingerprint(token_value)
            return sum(1 for entry in self._state.log if entry.token == fp)

    def reset_requests(self) -> None:
        with self._lock:
            self._state.log.clear()

    # -- serving (on handler threads)

    def _handle(self, handler: _GatewayHandler) -> None:
        if self._pause(self.latency):
            handler.close_connection = True
            return
        path = urlsplit(handler.path).path
        token = _bearer(handler.headers.get("Authorization"))
        fault = self._take_fault(token) if path in _MODELS_PATHS else None
        if fault is not None and fault.delay and self._pause(fault.delay):
            handler.close_connection = True
            return
        if fault is not None and fault.close:
            self._record(path, token, None)
            handler.close_connection = True
            return
        if fault is not None and fault.replaces_response:
            response = _Response(
                fault.status or 200, fault.body_bytes, fault.content_type, fault.header_items
            )
        else:
            response = self._answer(handler, path, token)
            if fault is not None and fault.header_items:
                response = response._replace(headers=response.headers + fault.header_items)
        self._record(path, token, response.status)
        self._write(handler, response, fault)

    def _answer(self, handler: _GatewayHandler, path: str, token: str | None) -> _Response:
        with self._lock:
            state = self._state.tokens.get(token) if token is not None else None
            model_set = self._models_of(state) if state is not None else _EMPTY
            seed = self._rng.getrandbits(64)
        if path in _USAGE_PATHS:
            return self._usage(token, state)
        if path not in _MODELS_PATHS:
            message = f"Invalid URL ({handler.command} {path})"
            return _Response(404, _encode(_error_body(message, "invalid_request_error")))
        if state is None or state.refused:
            return self._unauthorized()
        return _Response(200, self._list_body(model_set, random.Random(seed)))

    def _list_body(self, model_set: _ModelSet, rng: random.Random) -> bytes:
        flavor = self.flavor
        fragments = list(model_set.fragments(flavor))
        rng.shuffle(fragments)
        if flavor == "one-api":
            items = b",".join(
                head + b"%032x" % rng.getrandbits(128) + tail for head, tail in fragments
            )
        else:
            items = b",".join(fragments)
        if flavor == "new-api":
            return b'{"data":[' + items + b'],"object":"list","success":true}'
        return b'{"object":"list","data":[' + items + b"]}"

    def _unauthorized(self) -> _Response:
        error_type = {"one-api": "one_api_error", "openai": "invalid_request_error"}.get(
            self.flavor, "new_api_error"
        )
        message = f"Invalid token (request id: {_request_id()})"
        return _Response(401, _encode(_error_body(message, error_type)))

    def _usage(self, token: str | None, state: _Token | None) -> _Response:
        # new-api answers this even for expired or exhausted tokens.
        if token is None or state is None:
            return self._unauthorized()
        data = {
            "object": "token_usage",
            "name": f"sim-{fingerprint(token)}",
            "total_granted": state.total_available,
            "total_used": 0,
            "total_available": state.total_available,
            "unlimited_quota": False,
            "model_limits": {},
            "model_limits_enabled": False,
            "expires_at": state.expires_at,
        }
        return _Response(200, _encode({"code": True, "data": data, "message": "ok"}))

    def _record(self, path: str, token: str | None, status: int | None) -> None:
        entry = RequestLog(path, None if token is None else fingerprint(token), status)
        with self._lock:
            self._state.log.append(entry)

    def _write(self, handler: _Handler, response: _Response, fault: Fault | None) -> None:
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


def _bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; nothing else authenticates."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
