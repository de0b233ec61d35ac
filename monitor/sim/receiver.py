"""A webhook receiver on loopback that records every POST and answers as told.

Delivery tests need a real server to see the exact bytes and headers a channel sent
(Standard Webhooks signatures are computed over the raw body), and to answer with the
failures a real receiver produces (a 429 with Retry-After, a 410, a slow answer). The
demo uses it to show what a webhook received.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.sim.gateway import LoopbackServer, _Handler


@dataclass(frozen=True)
class Received:
    """One request as it arrived: header names are lower-cased, the body is raw bytes."""

    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    method: str = "POST"

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Canned:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    delay: float


class _ReceiverHandler(_Handler):
    server_version = "webhook-receiver"

    def do_POST(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, WebhookReceiver)
        owner._handle(self)


class WebhookReceiver(LoopbackServer):
    """Records POSTs to any path; answers 200 "ok" unless `respond_with` queued otherwise."""

    handler_class = _ReceiverHandler

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, path: str = "/hook") -> None:
        super().__init__(host, port)
        self.path = path
        self._cond = threading.Condition()
        self._received: list[Received] = []
        self._canned: deque[list[Any]] = deque()  # [_Canned, remaining or None]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def received(self) -> list[Received]:
        """Everything received so far, oldest first (a copy)."""
        with self._cond:
            return list(self._received)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def respond_with(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] = b"",
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
        *,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests (None: all, until cleared) this way.

        `delay` seconds pass before the answer, to exercise client timeouts.
        """
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        canned = _Canned(status, body, tuple((headers or {}).items()), delay)
        with self._cond:
            self._canned.append([canned, times])

    def clear_responses(self) -> None:
        with self._cond:
            self._canned.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least `n` requests have arrived; TimeoutError if they don't."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= n, timeout=timeout):
                raise TimeoutError(
                    f"received {len(self._received)} of {n} requests within {timeout} s"
                )
            return list(self._received)

    def _handle(self, handler: _ReceiverHandler) -> None:
        body = _read_body(handler)
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        received = Received(handler.path, headers, body, handler.command)
        with self._cond:
            self._received.append(received)
            canned = self._next_canned()
            self._cond.notify_all()
        if canned.delay and self._pause(canned.delay):
            handler.close_connection = True
            return
        try:
            handler.send_response(canned.status)
            for name, value in canned.headers:
                handler.send_header(name, value)
            if not any(name.lower() == "content-type" for name, _ in canned.headers):
                handler.send_header("Content-Type", "text/plain; charset=utf-8")
            handler.send_header("Content-Length", str(len(canned.body)))
            handler.end_headers()
            handler.wfile.write(canned.body)
        except OSError:  # the client gave up waiting
            handler.close_connection = True

    def _next_canned(self) -> _Canned:
        if not self._canned:
            return _Canned(200, b"ok", (), 0.0)
        entry = self._canned[0]
        if entry[1] is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                self._canned.popleft()
        return entry[0]


def _read_body(handler: _Handler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Skip trailers up to the empty line.
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
