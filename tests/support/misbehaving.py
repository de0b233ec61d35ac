"""A plain-socket server that misbehaves at the byte level, for deadline and size tests.

Written on the standard library's sockets, not on the project's simulator, so it shares
no code (and no assumptions) with the client it tests. Each connection reads one
request head and then plays the behaviour chosen for the request's path prefix.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Behaviour = Callable[[socket.socket], None]


def drip(data: bytes, every: float) -> Behaviour:
    """Send `data` one byte at a time, `every` seconds apart."""

    def play(conn: socket.socket) -> None:
        for byte in data:
            conn.sendall(bytes([byte]))
            time.sleep(every)

    return play


def headers_then(head: bytes, rest: Behaviour) -> Behaviour:
    def play(conn: socket.socket) -> None:
        conn.sendall(head)
        rest(conn)

    return play


def stall(seconds: float = 60.0) -> Behaviour:
    def play(conn: socket.socket) -> None:
        time.sleep(seconds)

    return play


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Behaviour:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()

    def play(conn: socket.socket) -> None:
        conn.sendall(head + body)

    return play


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"


class MisbehavingServer:
    """Routes by path prefix; unknown paths get a 404."""

    def __init__(self, routes: dict[str, Behaviour]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            conn.settimeout(5)
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
            except OSError:
                return
            path = head.split(b" ", 2)[1].decode("latin-1") if b" " in head else "/"
            self.hits.append(path)
            behaviour = next(
                (b for prefix, b in self.routes.items() if path.startswith(prefix)),
                answer(404, b"not here"),
            )
            with suppress(OSError):  # the client hung up: what the deadline is for
                behaviour(conn)


@contextmanager
def misbehaving(routes: dict[str, Behaviour]) -> Iterator[MisbehavingServer]:
    server = MisbehavingServer(routes).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def greeting_first(behaviour: Behaviour) -> Iterator[int]:
    """A port whose server speaks first (SMTP): `behaviour` plays as soon as a client
    connects. Yields the port."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stopped = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            behaviour(conn)

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stopped.set()
        thread.join(timeout=2)
        sock.close()


class _BodyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BodyServer

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = self.server.bodies.get(token, self.server.body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class BodyServer(http.server.ThreadingHTTPServer):
    """A well-behaved server that answers every GET with 200 and the bytes it is given:
    `bodies[token]` for a Bearer token listed there, `body` for any other."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BodyHandler)
        self.body = b""
        self.bodies: dict[str, bytes] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


@contextmanager
def serving_bodies() -> Iterator[BodyServer]:
    server = BodyServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
