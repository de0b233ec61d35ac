"""fetch_models against the gateway simulator over real loopback sockets.

Every ErrorKind is produced by a real server (or a real dead port, DNS name or TLS
mismatch), and a canary token checks that no failure path can leak a token. The request
each flavor sends, headers and all: tests/contract/test_flavors.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.config.model import MonitorSettings
from monitor.core.records import (
    ErrorKind,
    FetchError,
    FetchOk,
    FetchResult,
    ModelRecord,
    canonical_json,
)
from monitor.core.retry_after import retry_after
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sources.base import Page, Request
from monitor.sources.fetch import MESSAGE_LIMIT, sanitize
from monitor.sources.openai_compat import NewApiFlavor
from monitor.sources.registry import FLAVORS
from tests.support import fetching
from tests.support.ports import free_port

TOKEN = "sk-fetch-test-4d9a1c7e2b5f8a3d"
CANARY = "sk-canary-fetch-5b8e1d2c9a7f4e3b6d0c1a2f"
MODELS = [
    make_model("gpt-4o", ("openai", "openai-response")),
    make_model("claude-sonnet-4", ("anthropic", "openai"), owned_by="claude"),
    make_model("text-embedding-3-small", ("embeddings",)),
    make_model("legacy", None, owned_by="custom"),
]
EXPECTED = {
    "gpt-4o": ModelRecord.build("gpt-4o", ["openai", "openai-response"], {"owned_by": "openai"}),
    "claude-sonnet-4": ModelRecord.build(
        "claude-sonnet-4", ["anthropic", "openai"], {"owned_by": "claude"}
    ),
    "text-embedding-3-small": ModelRecord.build(
        "text-embedding-3-small", ["embeddings"], {"owned_by": "openai"}
    ),
    "legacy": ModelRecord.build("legacy", None, {"owned_by": "custom"}),
}
SETTINGS = MonitorSettings(timeout=5.0, max_response_bytes=1_000_000)


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=11) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(TOKEN)
        gateway.add_token(CANARY)
        yield gateway


def fetch(
    base_url: str, *, token: str = TOKEN, flavor: str = "new-api", **kwargs: Any
) -> FetchResult:
    """One check; other keywords are MonitorSettings fields (timeout, max_response_bytes)
    or `source_timeout`."""
    return fetching.fetch(base_url, flavor=flavor, token=token, **kwargs)


def fetch_error(base_url: str, **kwargs: Any) -> FetchError:
    return fetching.failed(fetch(base_url, **kwargs))


# -- success --------------------------------------------------------------------------------


def test_new_api_list(sim: GatewaySimulator) -> None:
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert dict(result.models) == EXPECTED
    assert result.status == 200
    assert result.flavor == "new-api"
    assert result.bytes_read > 0
    assert result.duration > 0


@pytest.mark.parametrize(
    ("flavor", "expected"),
    [
        (
            "one-api",
            {
                m["id"]: ModelRecord.build(m["id"], None, {"owned_by": m["owned_by"]})
                for m in MODELS
            },
        ),
        ("openai", {m["id"]: ModelRecord(m["id"]) for m in MODELS}),
    ],
)
def test_other_flavors(sim: GatewaySimulator, flavor: str, expected: dict[str, Any]) -> None:
    sim.flavor = flavor
    result = fetch(sim.base_url, flavor=flavor)
    assert isinstance(result, FetchOk)
    assert dict(result.models) == expected


def test_shuffled_order_gives_identical_records(sim: GatewaySimulator) -> None:
    sim.set_group("default", [make_model(f"model-{i:03d}", ("openai",)) for i in range(200)])
    results = [fetch(sim.base_url) for _ in range(3)]
    assert all(isinstance(r, FetchOk) for r in results)
    assert len({canonical_json(r.models) for r in results if isinstance(r, FetchOk)}) == 1


def test_gzip_bodies_are_decoded() -> None:
    with GatewaySimulator(compress=True) as sim:
        sim.set_group("default", [make_model(f"model-{i}") for i in range(500)])
        sim.add_token(TOKEN)
        result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert len(result.models) == 500
    assert result.bytes_read > 30_000  # counted decoded


def test_a_fifty_thousand_model_list(sim: GatewaySimulator) -> None:
    sim.set_group("default", [make_model(f"model-{i:05d}", ("openai",)) for i in range(50_000)])
    result = fetch(sim.base_url, max_response_bytes=64 * 1024 * 1024, timeout=30)
    assert isinstance(result, FetchOk)
    assert len(result.models) == 50_000


def test_empty_list_is_a_success(sim: GatewaySimulator) -> None:
    sim.set_group("default", [])
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert result.models == {}


def test_connections_are_reused(sim: GatewaySimulator) -> None:
    for _ in range(3):
        assert isinstance(fetch(sim.base_url), FetchOk)
    assert sim.requests_count(TOKEN) == 3


def test_threads_fetch_concurrently(sim: GatewaySimulator) -> None:
    results: list[FetchResult] = []

    def worker() -> None:
        results.extend(fetch(sim.base_url) for _ in range(10))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 60
    assert all(isinstance(r, FetchOk) and dict(r.models) == EXPECTED for r in results)


# -- HTTP status classification -------------------------------------------------------------


def test_expired_token_is_auth(sim: GatewaySimulator) -> None:
    sim.expire_token(TOKEN)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert error.message.startswith("HTTP 401: Invalid token (request id: ")


def test_forbidden(sim: GatewaySimulator) -> None:
    sim.inject(Fault.http(403, message="IP not allowed", code="access_denied"))
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.FORBIDDEN, 403)
    assert "IP not allowed" in error.message


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.rate_limited(), None),
        (Fault.rate_limited(30), 30.0),
        (Fault.rate_limited(2, retry_after_ms=1500), 1.5),
        (Fault.rate_limited("Thu, 01 Jan 2015 00:00:00 GMT"), 0.0),
    ],
)
def test_rate_limited(sim: GatewaySimulator, fault: Fault, expected: float | None) -> None:
    sim.inject(fault)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, expected)
    assert error.message == "HTTP 429 Too Many Requests"


def test_retry_after_dates_and_garbage() -> None:
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after": "Thu, 26 Nov 2026 10:01:30 GMT"}, now) == 90.0
    assert retry_after({"retry-after": " 12 "}, now) == 12.0
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({"retry-after": "-5"}, now) is None
    assert retry_after({"retry-after-ms": "nan", "retry-after": "3"}, now) == 3.0
    assert retry_after({}, now) is None


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.panic(), "HTTP 500: Panic detected"),
        (Fault.html(502), "HTTP 502 with an HTML page (502 Bad Gateway)"),
        (Fault.http(503), "HTTP 503: Service Unavailable (request id: "),
        (
            Fault(status=504, body=b"upstream request timeout", content_type="text/plain"),
            "HTTP 504: upstream request timeout",
        ),
        (Fault(status=500, body=b""), "HTTP 500 Internal Server Error"),
    ],
)
def test_server_errors(sim: GatewaySimulator, fault: Fault, message: str) -> None:
    sim.inject(fault)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.SERVER, fault.status)
    assert error.message.startswith(message)


def test_wrong_base_url_is_client_error(sim: GatewaySimulator) -> None:
    error = fetch_error(sim.base_url.removesuffix("/v1"))
    assert (error.kind, error.status) == (ErrorKind.CLIENT_ERROR, 404)
    assert "Invalid URL (GET /models)" in error.message


def test_redirect_is_not_followed(sim: GatewaySimulator) -> None:
    sim.inject(Fault(status=301, headers={"Location": "https://elsewhere.example/v1/models"}))
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.CLIENT_ERROR, 301)
    assert "redirect to https://elsewhere.example/v1/models" in error.message
    assert sim.requests_count() == 1


def test_a_huge_error_body_is_only_quoted(sim: GatewaySimulator) -> None:
    sim.inject(Fault(status=502, body=b"x" * 500_000, content_type="text/plain"))
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.SERVER, 502)
    assert len(error.message) <= MESSAGE_LIMIT


# -- transport failures ---------------------------------------------------------------------


def test_connection_refused() -> None:
    port = free_port()
    error = fetch_error(f"http://127.0.0.1:{port}/v1")
    assert error.kind is ErrorKind.NETWORK
    assert error.status is None
    assert error.message == f"connection refused by 127.0.0.1:{port}"


def test_dns_failure() -> None:
    error = fetch_error("http://gateway.invalid/v1")
    assert error.kind is ErrorKind.NETWORK
    assert error.message == "DNS lookup failed for gateway.invalid"


def test_tls_error(sim: GatewaySimulator) -> None:
    error = fetch_error(sim.base_url.replace("http://", "https://"))
    assert error.kind is ErrorKind.NETWORK
    assert error.message.startswith("TLS error talking to 127.0.0.1")


def test_disconnect(sim: GatewaySimulator) -> None:
    sim.inject(Fault.disconnect())
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.NETWORK
    assert "closed the connection" in error.message


def test_truncated_body(sim: GatewaySimulator) -> None:
    sim.inject(Fault.truncated(after=40))
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.NETWORK, 200)
    assert error.message == "the connection broke after 40 bytes of the response"


def test_token_that_cannot_be_a_header(sim: GatewaySimulator) -> None:
    for token in ("sk-line\nbreak", "sk-\u00fcn\u2019"):
        error = fetch_error(sim.base_url, token=token)
        assert error.kind is ErrorKind.CLIENT_ERROR
        assert "cannot be sent in an HTTP header" in error.message
    assert sim.requests_count() == 0


# -- deadline and size cap ------------------------------------------------------------------


def test_slow_headers_time_out(sim: GatewaySimulator) -> None:
    sim.inject(Fault.slow(1.0))
    error = fetch_error(sim.base_url, timeout=0.3)
    assert error.kind is ErrorKind.TIMEOUT
    assert error.message == "no answer from 127.0.0.1 within 0.3 s"
    assert error.duration < 0.9


def test_dripping_body_is_cut_at_the_deadline(sim: GatewaySimulator) -> None:
    # Each byte arrives well within any per-read timeout; only a deadline stops this.
    sim.inject(Fault.drip(0.05))
    error = fetch_error(sim.base_url, timeout=0.5)
    assert (error.kind, error.status) == (ErrorKind.TIMEOUT, 200)
    assert error.message.startswith("no complete answer within 0.5 s (")
    assert 0.5 <= error.duration < 0.9


def test_source_timeout_overrides_settings(sim: GatewaySimulator) -> None:
    sim.inject(Fault.slow(1.0))
    error = fetch_error(sim.base_url, source_timeout=0.2, timeout=30)
    assert error.kind is ErrorKind.TIMEOUT
    assert "0.2 s" in error.message


def test_declared_size_over_the_cap(sim: GatewaySimulator) -> None:
    sim.inject(Fault.oversize(200_000))
    error = fetch_error(sim.base_url, max_response_bytes=100_000)
    assert (error.kind, error.status) == (ErrorKind.TOO_LARGE, 200)
    assert "declares" in error.message
    assert "100,000" in error.message


def test_streamed_size_over_the_cap(sim: GatewaySimulator) -> None:
    sim.inject(Fault.oversize(200_000, chunked=True))
    error = fetch_error(sim.base_url, max_response_bytes=100_000)
    assert (error.kind, error.status) == (ErrorKind.TOO_LARGE, 200)
    assert error.message == "the response is over the limit of 100,000 bytes"


def test_gzip_is_capped_after_decoding() -> None:
    with GatewaySimulator(compress=True) as sim:
        sim.set_group("default", [make_model(f"model-{i}") for i in range(2000)])
        sim.add_token(TOKEN)
        error = fetch_error(sim.base_url, max_response_bytes=100_000)
    assert error.kind is ErrorKind.TOO_LARGE


# -- invalid responses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.invalid_utf8(), "the response is not valid UTF-8"),
        (Fault.success_false("数据库错误"), 'the gateway answered "success": false: 数据库错误'),
        (Fault.error_body("no available channel"), "the response is an error: no available"),
        (Fault.data(None), "data is null, not a list"),
        (Fault.data({}), "data is an object, not a list"),
        (Fault(status=200, body={"object": "list", "success": True}), "no data list"),
        (Fault.data([{"object": "model"}]), "data[0] has no id"),
        (Fault.data([{"id": "a"}, {"id": "b"}, {"id": "a"}]), "model id 'a' appears twice"),
        (Fault.html(200), "HTTP 200 with an HTML page (200 OK) instead of JSON"),
        (Fault(status=200, body=b"OK", content_type="text/plain"), "the response is not JSON"),
        (Fault(status=200, body=b""), "HTTP 200 with an empty body"),
        (Fault(status=200, body=b"[" * 100_000), "nested too deeply"),
        (Fault.data([{"id": "m", "supported_endpoint_types": None}]), "supported_endpoint_types"),
    ],
)
def test_invalid_responses(sim: GatewaySimulator, fault: Fault, message: str) -> None:
    sim.inject(fault)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.INVALID_RESPONSE, 200)
    assert message in error.message


def test_a_utf8_bom_is_accepted(sim: GatewaySimulator) -> None:
    sim.inject(Fault(status=200, body=b'\xef\xbb\xbf{"data":[{"id":"a"}],"success":true}'))
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert list(result.models) == ["a"]


def test_success_after_failure(sim: GatewaySimulator) -> None:
    sim.inject(Fault.panic())
    assert isinstance(fetch(sim.base_url), FetchError)
    assert isinstance(fetch(sim.base_url), FetchOk)


# -- pagination -----------------------------------------------------------------------------


class _PagedFlavor(NewApiFlavor):
    """Walks `pages` pages of the simulator's list: models on page 1 only."""

    name = "paged"
    pages = 3
    max_pages = 5
    next_url: str | None = None

    def parse(self, body: object, request: Request) -> Page:
        page = super().parse(body, request)
        number = int(dict(request.params).get("page", "1"))
        models = page.models if number == 1 else []
        if number >= self.pages:
            return Page(models)
        url = self.next_url or request.url
        return Page(models, Request(url, request.headers, (("page", str(number + 1)),)))


@pytest.fixture
def paged(monkeypatch: pytest.MonkeyPatch) -> type[_PagedFlavor]:
    monkeypatch.setitem(FLAVORS, "paged", _PagedFlavor)
    return _PagedFlavor


def test_pages_are_walked(sim: GatewaySimulator, paged: type[_PagedFlavor]) -> None:
    result = fetch(sim.base_url, flavor="paged")
    assert isinstance(result, FetchOk)
    assert dict(result.models) == EXPECTED
    assert sim.requests_count(TOKEN) == 3


def test_a_failing_page_fails_the_check(
    sim: GatewaySimulator, paged: type[_PagedFlavor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paged, "next_url", sim.base_url + "/missing")
    error = fetch_error(sim.base_url, flavor="paged")
    assert (error.kind, error.status) == (ErrorKind.CLIENT_ERROR, 404)


def test_endless_pagination_is_stopped(
    sim: GatewaySimulator, paged: type[_PagedFlavor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paged, "pages", 10**6)
    error = fetch_error(sim.base_url, flavor="paged")
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "the list did not end after 5 pages"
    assert sim.requests_count() == 5


def test_pagination_loop_is_detected(
    sim: GatewaySimulator, paged: type[_PagedFlavor], monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(self: _PagedFlavor, body: object, request: Request) -> Page:
        return Page([], Request(request.url, request.headers, (("page", "1"),)))

    monkeypatch.setattr(paged, "parse", parse)
    error = fetch_error(sim.base_url, flavor="paged")
    assert error.message == "pagination loops back to a page already read"


def test_duplicates_across_pages(sim: GatewaySimulator, paged: type[_PagedFlavor]) -> None:
    paged_parse = NewApiFlavor.parse  # the unpatched parse, for the first page

    def parse(self: _PagedFlavor, body: object, request: Request) -> Page:
        page = paged_parse(self, body, request)
        if request.params:
            return Page(page.models)
        return Page(page.models, Request(request.url, request.headers, (("page", "2"),)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paged, "parse", parse)
        error = fetch_error(sim.base_url, flavor="paged")
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert "appears on two pages" in error.message


# -- secrets and messages -------------------------------------------------------------------


def test_sanitize() -> None:
    assert sanitize("  a\n\tb\r\n c  ") == "a b c"
    assert sanitize("bidi \u202eevil\u202c and \x00nul\x1b[31m") == "bidi evil and nul[31m"
    assert sanitize("x" * 1000).endswith("…")
    assert len(sanitize("x" * 1000)) == MESSAGE_LIMIT
    assert sanitize("key sk-abc123 used", ["sk-abc123"]) == "key *** used"
    # A control character inside an echoed token must not smuggle it past.
    assert sanitize("key sk-abc\x00123", ["sk-abc123"]) == "key ***"
    assert sanitize(" " * 5000 + "sk-abc123", ["sk-abc123"]) == "***"
    assert sanitize("key", [""]) == "key"


def test_canary_token_never_leaks(sim: GatewaySimulator, caplog: pytest.LogCaptureFixture) -> None:
    """Every failure kind, with servers that echo the token back: no message or log has it."""
    bare = CANARY.removeprefix("sk-")
    echo = f"invalid key {CANARY} (also {bare})"
    faults = [
        Fault.http(401, message=echo),
        Fault.http(403, message=echo),
        Fault(status=429, body=echo, content_type="text/plain"),
        Fault.http(500, body={"error": echo}),
        Fault.html(502),
        Fault(status=404, body=echo.encode() + b"\x00\x1b", content_type="text/plain"),
        Fault(status=302, headers={"Location": f"https://x.example/?key={CANARY}"}),
        Fault.success_false(echo),
        Fault.error_body(echo),
        Fault.data([{"id": CANARY}, {"id": CANARY}]),
        Fault.data([{"id": "m", "supported_endpoint_types": [CANARY, 1]}]),
        Fault(status=200, body=f"not json {CANARY}", content_type="text/plain"),
        Fault.invalid_utf8(),
        Fault.truncated(),
        Fault.disconnect(),
        Fault.oversize(200_000),
        Fault.oversize(200_000, chunked=True),
        Fault.drip(0.1),
    ]
    caplog.set_level(logging.DEBUG)
    errors: list[FetchError] = []
    for fault in faults:
        sim.inject(fault)
        errors.append(
            fetch_error(sim.base_url, token=CANARY, max_response_bytes=100_000, timeout=0.3)
        )
    sim.expire_token(CANARY)
    errors.append(fetch_error(sim.base_url, token=CANARY))
    errors.append(fetch_error(f"http://127.0.0.1:{free_port()}/v1", token=CANARY))
    errors.append(fetch_error("http://gateway.invalid/v1", token=CANARY))
    errors.append(fetch_error(sim.base_url.replace("http:", "https:"), token=CANARY))
    errors.append(fetch_error(sim.base_url, token=CANARY + "\n"))

    assert {e.kind for e in errors} == set(ErrorKind)
    for error in errors:
        for text in (error.message, repr(error), str(error.to_json())):
            assert CANARY not in text
            assert bare not in text
    assert "***" in errors[0].message
    assert caplog.records
    for record in caplog.records:
        assert bare not in record.getMessage()

    # Even a base_url that (wrongly) carries the token is not logged by us.
    caplog.clear()
    sim.renew_token(CANARY)
    fetch(f"http://127.0.0.1:{sim.port}/api/{CANARY}/v1", token=CANARY)
    ours = [r for r in caplog.records if r.name.startswith("monitor")]
    assert ours
    assert all(bare not in r.getMessage() for r in ours)


def test_more_answers_at_once_than_the_pool_keeps_are_all_read(sim: GatewaySimulator) -> None:
    # Two sources on one gateway, or a pass beside a check, return more connections than
    # the pool keeps: the extra ones are closed as they come back, which must not cut the
    # read of the answer they carried.
    results: list[FetchResult] = []

    def worker() -> None:
        for _ in range(5):
            results.append(fetch(sim.base_url, concurrency=1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 40
    assert all(isinstance(r, FetchOk) for r in results), [
        r for r in results if isinstance(r, FetchError)
    ][:3]
