"""A probe against servers that misbehave at the byte level (plain sockets, sharing no code
with the client): whatever they do, the probe ends within its deadline with a result, and a
failure says "transient", never a verdict on the model by itself."""

from __future__ import annotations

import gzip
import time

import pytest

from monitor.config import Secret, SourceConfig, TokenConfig
from monitor.events.probes import Outcome
from monitor.sources.probes import send_probe
from tests.support.misbehaving import OK_HEAD, answer, drip, headers_then, misbehaving, stall

TOKEN = TokenConfig("t", "faulty", Secret("sk-probe-fault-0123456789abcdef"))
TIMEOUT = 1.0


def _reset(conn) -> None:  # type: ignore[no-untyped-def]
    conn.close()


BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024))
ROUTES = {
    "/stall/": stall(10),
    "/drip/": headers_then(OK_HEAD, drip(b'{"choices": []}' * 50, 0.05)),
    "/reset/": _reset,
    "/html/": answer(502, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}),
    "/bomb-ok/": answer(200, BOMB, {"Content-Encoding": "gzip"}),
    "/bomb-error/": answer(503, BOMB, {"Content-Encoding": "gzip"}),
    "/truncated/": lambda conn: conn.sendall(
        b"HTTP/1.1 503 X\r\nContent-Length: 500\r\n\r\n" + b'{"error": {"code": "model_'
    ),
}


@pytest.mark.parametrize(
    ("path", "outcome"),
    [
        ("stall", Outcome.TRANSIENT),
        ("drip", Outcome.TRANSIENT),
        ("reset", Outcome.TRANSIENT),
        ("html", Outcome.TRANSIENT),
        ("bomb-ok", Outcome.OK),
        ("bomb-error", Outcome.TRANSIENT),
        ("truncated", Outcome.TRANSIENT),
    ],
)
def test_a_misbehaving_server_costs_one_probe_its_deadline_at_most(
    path: str, outcome: Outcome
) -> None:
    with misbehaving(ROUTES) as server:
        source = SourceConfig("faulty", f"{server.url}/{path}/v1")
        started = time.monotonic()
        result = send_probe(source, TOKEN, "gpt-4o", "chat", "bearer", TIMEOUT)
        elapsed = time.monotonic() - started
        assert server.hits == [f"/{path}/v1/chat/completions"]  # one call, never retried
    assert result.outcome is outcome, result
    assert elapsed < TIMEOUT + 1.5
    assert result.duration <= elapsed
    if outcome is not Outcome.OK:
        assert result.error is not None and "sk-probe-fault" not in result.error.message
