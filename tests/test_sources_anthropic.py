"""The anthropic flavor: normalization on a real-shaped fixture, then walks over loopback."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import (
    ChangeType,
    ErrorKind,
    EventType,
    FetchError,
    FetchOk,
    FetchResult,
    ModelRecord,
)
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.base import InvalidResponse, Page, Request
from monitor.sources.fetch import fetch_models
from monitor.sources.pages import PAGES
from monitor.sources.registry import FLAVORS
from monitor.store.database import open_database
from monitor.store.schema import Snapshot

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "anthropic-models.json").read_text()
)
KEY = "sk-ant-api03-unit-test-key-0000"
REQUEST = AnthropicFlavor().first_request("https://api.anthropic.com/v1", Secret(KEY))

ALL_CAPABILITIES = [
    "batch",
    "citations",
    "code_execution",
    "context_management",
    "context_management.clear_thinking_20251015",
    "context_management.clear_tool_uses_20250919",
    "context_management.compact_20260112",
    "effort",
    "effort.high",
    "effort.low",
    "effort.max",
    "effort.medium",
    "image_input",
    "pdf_input",
    "structured_outputs",
    "thinking",
    "thinking.types.adaptive",
    "thinking.types.enabled",
]


def parse(body: object, request: Request = REQUEST) -> dict[str, ModelRecord]:
    page = AnthropicFlavor().parse(body, request)
    return {record.id: record for record in page.models}


def page_of(*models: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"data": list(models), "has_more": False, **envelope}


def test_registered() -> None:
    assert FLAVORS["anthropic"] is AnthropicFlavor
    assert AnthropicFlavor.name == "anthropic"


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["https://api.anthropic.com/v1", "https://api.anthropic.com/v1/"]
)
def test_first_request(base_url: str) -> None:
    request = AnthropicFlavor().first_request(base_url, Secret(KEY))
    assert request.url == "https://api.anthropic.com/v1/models"
    assert request.params == (("limit", "1000"),)
    # x-api-key and the version, and no Authorization header.
    assert request.wire_headers() == {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    assert KEY not in repr(request)
    assert KEY not in str(request.headers)


# -- normalization --------------------------------------------------------------------------


def test_fixture_normalization() -> None:
    models = parse(FIXTURE)
    assert sorted(models) == [
        "claude-3-haiku-20240307",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-6",
        "claude-sonnet-4-5-20250929",
    ]
    assert models["claude-opus-4-6"] == ModelRecord.build(
        "claude-opus-4-6",
        None,
        {
            "display_name": "Claude Opus 4.6",
            "context_window": 200000,
            "max_output_tokens": 128000,
            "capabilities": ALL_CAPABILITIES,
        },
    )
    assert models["claude-3-haiku-20240307"].field_map() == {
        "display_name": "Claude Haiku 3",
        "context_window": 200000,
        "max_output_tokens": 4096,
        "capabilities": ("batch", "image_input"),
    }
    for record in models.values():
        assert record.endpoint_types is None
        # Release dates, the object type and the model line are not diffed.
        assert set(record.field_map()) == {
            "display_name",
            "context_window",
            "max_output_tokens",
            "capabilities",
        }


def test_last_page_has_no_next() -> None:
    assert AnthropicFlavor().parse(FIXTURE, REQUEST).next is None


def test_capabilities_follow_supported_flags_only() -> None:
    sonnet = parse(FIXTURE)["claude-sonnet-4-5-20250929"].field_map()["capabilities"]
    assert "context_management.clear_tool_uses_20250919" in sonnet
    assert "context_management.compact_20260112" not in sonnet
    assert "effort" not in sonnet and "effort.high" not in sonnet
    assert "thinking.types.enabled" in sonnet and "thinking.types.adaptive" not in sonnet
    assert list(sonnet) == sorted(sonnet)


def test_a_gained_capability_is_a_field_change() -> None:
    before = parse(FIXTURE)["claude-sonnet-4-5-20250929"]
    body = json.loads(json.dumps(FIXTURE))
    body["data"][1]["capabilities"]["effort"]["supported"] = True
    after = parse(body)["claude-sonnet-4-5-20250929"]
    assert before != after
    assert set(after.field_map()["capabilities"]) - set(before.field_map()["capabilities"]) == {
        "effort"
    }


def test_created_at_and_line_changes_are_not_differences() -> None:
    body = json.loads(json.dumps(FIXTURE))
    for model in body["data"]:
        model["created_at"] = "1970-01-01T00:00:00Z"
        model["line"] = None
    assert parse(body) == parse(FIXTURE)


def test_minimal_model_info() -> None:
    # The ModelInfo of before capabilities and token limits existed.
    body = page_of(
        {
            "type": "model",
            "id": "claude-3-5-sonnet-20241022",
            "display_name": "Claude Sonnet 3.5 (New)",
            "created_at": "2024-10-22T00:00:00Z",
        }
    )
    record = parse(body)["claude-3-5-sonnet-20241022"]
    assert record.field_map() == {"display_name": "Claude Sonnet 3.5 (New)"}


def test_null_values_are_left_out() -> None:
    body = page_of({"id": "m", "display_name": "M", "max_input_tokens": None, "capabilities": None})
    assert parse(body)["m"].field_map() == {"display_name": "M"}


@pytest.mark.parametrize(
    ("deprecated", "retires"),
    [("deprecated_at", "retires_at"), ("deprecation_date", "retirement_date")],
)
def test_deprecation_and_retirement_dates_as_given(deprecated: str, retires: str) -> None:
    body = page_of(
        {
            "id": "claude-3-opus-20240229",
            "display_name": "Claude Opus 3",
            "lifecycle": "deprecated",
            deprecated: "2025-06-30",
            retires: "2026-01-05T00:00:00Z",
        }
    )
    assert parse(body)["claude-3-opus-20240229"].field_map() == {
        "display_name": "Claude Opus 3",
        "deprecation_date": "2025-06-30",
        "retirement_date": "2026-01-05T00:00:00Z",
    }


def test_active_models_have_null_dates() -> None:
    body = page_of({"id": "m", "lifecycle": "active", "deprecated_at": None, "retires_at": None})
    assert parse(body)["m"].fields == ()


def test_capabilities_as_a_list_of_names() -> None:
    body = page_of({"id": "m", "capabilities": ["vision", "batch", "vision"]})
    assert parse(body)["m"].field_map() == {"capabilities": ("batch", "vision")}


def test_capabilities_details_that_are_not_flags_are_skipped() -> None:
    body = page_of(
        {
            "id": "m",
            "capabilities": {
                "batch": {"supported": True, "max_requests": 100000},
                "image_input": {"supported": False, "formats": ["png"]},
                "future_note": "text",
                "tools": {"web_search": {"supported": True}},
            },
        }
    )
    assert parse(body)["m"].field_map() == {"capabilities": ("batch", "tools.web_search")}


def test_no_supported_capability_is_an_empty_list() -> None:
    body = page_of({"id": "m", "capabilities": {"batch": {"supported": False}}})
    assert parse(body)["m"].field_map() == {"capabilities": ()}


# -- pagination -----------------------------------------------------------------------------


def test_has_more_asks_for_the_page_after_last_id() -> None:
    body = page_of({"id": "a"}, {"id": "b"}, has_more=True, first_id="a", last_id="b")
    page = AnthropicFlavor().parse(body, REQUEST)
    assert page.next is not None
    assert page.next.url == REQUEST.url
    assert page.next.params == (("limit", "1000"), ("after_id", "b"))
    assert page.next.wire_headers() == REQUEST.wire_headers()


def test_page_size_is_a_class_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 2)
    request = AnthropicFlavor().first_request("https://x.example/v1", Secret(KEY))
    assert request.params == (("limit", "2"),)
    page = AnthropicFlavor().parse(page_of({"id": "a"}, has_more=True, last_id="a"), request)
    assert page.next is not None and page.next.params == (("limit", "2"), ("after_id", "a"))


def test_without_has_more_a_short_page_is_the_last() -> None:
    assert AnthropicFlavor().parse({"data": [{"id": "a"}]}, REQUEST).next is None


def test_without_has_more_a_full_page_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 2)
    with pytest.raises(InvalidResponse, match="full page of 2 models without has_more"):
        AnthropicFlavor().parse({"data": [{"id": "a"}, {"id": "b"}]}, REQUEST)


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({"has_more": True}, "has_more is true but the page has no last_id"),
        ({"has_more": True, "last_id": None}, "no last_id"),
        ({"has_more": True, "last_id": ""}, "no last_id"),
        ({"has_more": True, "last_id": 7}, "no last_id"),
        ({"has_more": "false"}, "has_more is a string, not a boolean"),
        ({"has_more": 1}, "has_more is a number, not a boolean"),
    ],
)
def test_broken_pagination_is_invalid(envelope: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        AnthropicFlavor().parse({"data": [{"id": "a"}], **envelope}, REQUEST)


# -- what is not a models list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "an array, not a JSON object"),
        (None, "null, not a JSON object"),
        (
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
            "is an error: api_error: Internal server error",
        ),
        ({"has_more": False}, "no data list"),
        ({"data": None, "has_more": False}, "data is null, not a list"),
        ({"data": {"id": "a"}}, "data is an object, not a list"),
        ({"data": ["claude-opus-4-6"]}, r"data\[0\] is a string, not a model object"),
        ({"data": [{"type": "model"}]}, r"data\[0\] has no id"),
        ({"data": [{"id": ""}]}, r"data\[0\] has an empty id"),
        ({"data": [{"id": 3}]}, r"data\[0\] has an id that is a number"),
        ({"data": [{"id": "a"}, {"id": "a"}]}, "model id 'a' appears twice"),
        (
            {"data": [{"id": "m", "max_input_tokens": "200000"}]},
            "model 'm': max_input_tokens is a string, not an integer",
        ),
        (
            {"data": [{"id": "m", "max_tokens": 8192.5}]},
            "model 'm': max_tokens is a number, not an integer",
        ),
        (
            {"data": [{"id": "m", "max_tokens": True}]},
            "model 'm': max_tokens is a boolean, not an integer",
        ),
        (
            {"data": [{"id": "m", "display_name": ["x"]}]},
            "model 'm': display_name is an array, not a string",
        ),
        (
            {"data": [{"id": "m", "retirement_date": 20260105}]},
            "model 'm': retirement_date is a number, not a string",
        ),
        (
            {"data": [{"id": "m", "deprecated_at": True}]},
            "model 'm': deprecated_at is a boolean, not a string",
        ),
        (
            {"data": [{"id": "m", "capabilities": "vision"}]},
            "model 'm': capabilities is a string, not an object",
        ),
        (
            {"data": [{"id": "m", "capabilities": ["vision", 3]}]},
            "model 'm': capabilities is a list, but not of capability names",
        ),
        (
            {"data": [{"id": "m", "capabilities": {"batch": {"supported": "yes"}}}]},
            "model 'm': capabilities.batch.supported is a string, not a boolean",
        ),
        (
            {
                "data": [
                    {"id": "m", "capabilities": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}
                ]
            },
            "capabilities nest too deeply",
        ),
    ],
)
def test_invalid_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        AnthropicFlavor().parse(body, REQUEST)


# -- error bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
            },
            "authentication_error: invalid x-api-key",
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error: Overloaded",
        ),
        ({"type": "error", "error": {"type": "not_found_error"}}, "not_found_error"),
        ({"error": {"message": "Invalid token (request id: 1)"}}, "Invalid token (request id: 1)"),
        ({"error": "plain"}, "plain"),
        ("text", None),
    ],
)
def test_error_message(body: object, message: str | None) -> None:
    assert AnthropicFlavor().error_message(body) == message


def test_error_kind_is_by_status() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert AnthropicFlavor().error_kind(529, body) is None


# -- robustness -----------------------------------------------------------------------------

KEYS = ["id", "data", "has_more", "last_id", "type", "error", "capabilities", "supported", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(body=json_values)
def test_any_json_either_parses_or_is_invalid(body: object) -> None:
    flavor = AnthropicFlavor()
    try:
        page = flavor.parse(body, REQUEST)
    except InvalidResponse:
        pass
    else:
        assert isinstance(page, Page)
        assert all(isinstance(r.id, str) and r.id for r in page.models)
    flavor.error_message(body)  # never raises
    flavor.error_kind(400, body)


# -- on the wire ----------------------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    """Records what arrives and answers with the fixture."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps(FIXTURE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[str]:
    _Capture.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_request_on_the_wire(capture: str) -> None:
    source = SourceConfig(name="claude", base_url=capture, flavor="anthropic")
    token = TokenConfig("team", "claude", Secret(KEY))
    result = fetch_models(source, token, MonitorSettings(timeout=5.0))
    assert isinstance(result, FetchOk)
    assert result.flavor == "anthropic"
    assert dict(result.models) == parse(FIXTURE)
    ((path, headers),) = _Capture.seen
    assert path == "/v1/models?limit=1000"
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert "x-goog-api-key" not in headers


# -- against the simulator ------------------------------------------------------------------

SIM_KEY = "sk-ant-api03-sim-test-key-7d2c9e4b1a"
CANARY = "sk-ant-api03-canary-3f9a6c1e8b2d5f7a0c4e"
PAGE_SIZE = 3
# Eight models, three to a page: three pages, newest first.
SIM_MODELS = [
    make_model(
        f"claude-sim-{i}",
        None,
        created=1_760_000_000 + i * 86_400,
        display_name=f"Claude Sim {i}",
        context_window=200_000,
        max_output_tokens=64_000 if i % 2 else 32_000,
        capabilities=["batch", "image_input"] + (["thinking"] if i >= 4 else []),
    )
    for i in range(8)
]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", PAGE_SIZE)


@pytest.fixture
def sim(small_pages: None) -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="anthropic", seed=3) as gateway:
        gateway.set_group("default", SIM_MODELS)
        gateway.add_token(SIM_KEY)
        gateway.add_token(CANARY)
        yield gateway


def fetch(base_url: str, token: str = SIM_KEY, **settings: Any) -> FetchResult:
    source = SourceConfig(name="claude", base_url=base_url, flavor="anthropic")
    merged: dict[str, Any] = {"timeout": 5.0, "max_response_bytes": 1_000_000, **settings}
    return fetch_models(
        source, TokenConfig("team", "claude", Secret(token)), MonitorSettings(**merged)
    )


def fetch_error(base_url: str, **kwargs: Any) -> FetchError:
    result = fetch(base_url, **kwargs)
    assert isinstance(result, FetchError), result
    return result


def test_walks_every_page(sim: GatewaySimulator) -> None:
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert sorted(result.models) == sorted(m["id"] for m in SIM_MODELS)
    assert sim.requests_count(SIM_KEY) == 3  # 3 + 3 + 2
    record = result.models["claude-sim-5"].field_map()
    assert record["display_name"] == "Claude Sim 5"
    assert record["context_window"] == 200_000
    assert record["max_output_tokens"] == 64_000
    assert {"batch", "image_input", "thinking"} <= set(record["capabilities"])
    assert "thinking" not in result.models["claude-sim-1"].field_map()["capabilities"]
    assert all(r.endpoint_types is None for r in result.models.values())


def test_the_default_page_size_reads_a_long_list_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 1000)
    with GatewaySimulator(flavor="anthropic") as gateway:
        gateway.set_group("default", [make_model(f"m-{i:04d}", None) for i in range(1200)])
        gateway.add_token(SIM_KEY)
        # About 1 KB per model, capability matrix included.
        result = fetch(gateway.base_url, max_response_bytes=8_000_000)
        assert isinstance(result, FetchOk), result
        assert gateway.requests_count(SIM_KEY) == 2
    assert len(result.models) == 1200


def test_deprecation_dates_from_the_simulator(sim: GatewaySimulator) -> None:
    old = make_model(
        "claude-3-opus-20240229",
        None,
        created=1_709_164_800,
        deprecation_date="2025-06-30",
        retirement_date="2026-01-05",
    )
    sim.set_group("default", [*SIM_MODELS, old])
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    fields = result.models["claude-3-opus-20240229"].field_map()
    assert fields["deprecation_date"].startswith("2025-06-30")
    assert fields["retirement_date"].startswith("2026-01-05")
    assert "deprecation_date" not in result.models["claude-sim-0"].field_map()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.http(500), ErrorKind.SERVER),
        (Fault.overloaded(), ErrorKind.SERVER),
        (Fault.http(429), ErrorKind.RATE_LIMITED),
        (Fault.disconnect(), ErrorKind.NETWORK),
        (Fault.truncated(after=30), ErrorKind.NETWORK),
        (Fault.html(200), ErrorKind.INVALID_RESPONSE),
        (Fault(status=200, body={"data": None, "has_more": False}), ErrorKind.INVALID_RESPONSE),
    ],
    ids=["500", "529", "429", "disconnect", "truncated", "html-200", "data-null"],
)
def test_a_failing_middle_page_fails_the_whole_check(
    sim: GatewaySimulator, fault: Fault, kind: ErrorKind
) -> None:
    sim.inject(fault, skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is kind
    assert sim.requests_count(SIM_KEY) == 2  # the third page is never asked for
    # The next check reads the whole list again.
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert len(result.models) == 8


def test_overloaded_message(sim: GatewaySimulator) -> None:
    sim.inject(Fault.overloaded(), skip=1)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.SERVER, 529)
    assert error.message == "HTTP 529: overloaded_error: Overloaded"


def test_has_more_without_last_id_fails_the_check(sim: GatewaySimulator) -> None:
    page = {"data": [{"id": "x"}], "has_more": True, "first_id": "x", "last_id": None}
    sim.inject(Fault(status=200, body=page), skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "has_more is true but the page has no last_id to continue from"


def test_a_cursor_pointing_back_is_a_loop(sim: GatewaySimulator) -> None:
    first = fetch(sim.base_url)
    assert isinstance(first, FetchOk)
    # Page 2 claims to end where page 1 ended: the walk would ask for page 2 again.
    newest = sorted(SIM_MODELS, key=lambda m: -m["created"])
    back = {"data": [{"id": "x"}], "has_more": True, "last_id": newest[PAGE_SIZE - 1]["id"]}
    sim.inject(Fault(status=200, body=back), skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "pagination loops back to a page already read"


def test_a_model_on_two_pages_fails_the_check(sim: GatewaySimulator) -> None:
    newest = sorted(SIM_MODELS, key=lambda m: -m["created"])
    again = {"data": [{"id": newest[0]["id"]}], "has_more": False}
    sim.inject(Fault(status=200, body=again), skip=1)
    error = fetch_error(sim.base_url)
    assert error.message == f"model id {newest[0]['id']!r} appears on two pages"


@pytest.mark.parametrize("token", ["sk-ant-api03-unknown", "expired"])
def test_a_bad_key_is_auth(sim: GatewaySimulator, token: str) -> None:
    if token == "expired":
        token = SIM_KEY
        sim.expire_token(SIM_KEY)
    error = fetch_error(sim.base_url, token=token)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert error.message == "HTTP 401: authentication_error: invalid x-api-key"


def test_a_key_that_loses_access_midway_is_auth(sim: GatewaySimulator) -> None:
    sim.inject(Fault.http(401, message="invalid x-api-key"), skip=2)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert sim.requests_count(SIM_KEY) == 3


def test_canary_key_never_leaks(sim: GatewaySimulator, caplog: pytest.LogCaptureFixture) -> None:
    bare = CANARY.removeprefix("sk-")
    echo = f"invalid x-api-key {CANARY} ({bare})"
    faults = [
        (Fault.http(401, message=echo), 0),
        (Fault.http(403, message=echo), 0),
        (Fault.http(500, message=echo), 1),
        (Fault.http(529, message=echo), 1),
        (Fault(status=404, body=echo, content_type="text/plain"), 1),
        (Fault(status=302, headers={"Location": f"https://x.example/?key={CANARY}"}), 1),
        (Fault(status=200, body={"type": "error", "error": {"type": "x", "message": echo}}), 1),
        (Fault(status=200, body={"data": [{"id": CANARY}, {"id": CANARY}]}), 1),
        (Fault(status=200, body={"data": [{"id": CANARY, "max_tokens": CANARY}]}), 1),
        (Fault(status=200, body=f"not json {CANARY}", content_type="text/plain"), 2),
        (Fault.truncated(), 1),
    ]
    caplog.set_level(logging.DEBUG)
    errors = []
    for fault, skip in faults:
        sim.inject(fault, skip=skip)
        errors.append(fetch_error(sim.base_url, token=CANARY))
    sim.expire_token(CANARY)
    errors.append(fetch_error(sim.base_url, token=CANARY))
    assert len({e.kind for e in errors}) >= 6
    for error in errors:
        for text in (error.message, repr(error), str(error.to_json())):
            assert CANARY not in text
            assert bare not in text
    assert "***" in errors[0].message
    assert caplog.records
    for record in caplog.records:
        assert bare not in record.getMessage()


# -- end to end: checks, snapshots, events --------------------------------------------------


def count_snapshots(db: Any) -> int:
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(Snapshot)) or 0


def changes(report: Any) -> list[tuple[str, str]]:
    (token,) = report.tokens
    return [(str(c.type), c.model) for c in token.changes]


def test_checks_through_the_pipeline(sim: GatewaySimulator, db_url: str) -> None:
    base = sim_config(sim.base_url, {"claude": SIM_KEY}, source="anthropic", failure_threshold=99)
    source = SourceConfig(name="anthropic", base_url=sim.base_url, flavor="anthropic")
    config = replace(base, sources=(source,))
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        (report,) = checker.check()
        assert report.tokens[0].baseline and report.tokens[0].model_count == 8
        assert report.events == ()

        # One model added, one gone (on the last page): the addition is reported at
        # once, the removal once the flap guard has seen it twice.
        added = make_model("claude-sim-new", None, created=1_800_000_000, display_name="New")
        sim.set_group("default", [added, *SIM_MODELS[1:]])
        (report,) = checker.check()
        assert changes(report) == [("added", "claude-sim-new")]
        (event,) = report.events
        assert event.type is EventType.MODELS_CHANGED
        assert event.changes[0].record is not None
        assert event.changes[0].record.field_map()["display_name"] == "New"
        (report,) = checker.check()
        assert changes(report) == [("removed", "claude-sim-0")]
        snapshots = count_snapshots(db)

        # A failing middle page: the check fails; pages 1 and 3 never become a
        # snapshot and the models of the missing pages are never "removed".
        for _ in range(3):
            sim.inject(Fault.http(500), skip=1)
            (report,) = checker.check()
            assert [t.outcome for t in report.tokens] == ["server"]
            assert report.tokens[0].model_count is None
            assert not report.changed
            assert report.events == ()
        assert count_snapshots(db) == snapshots

        (report,) = checker.check()
        assert report.tokens[0].outcome == "ok"
        assert not report.changed

        # A changed limit is a field change once confirmed.
        raised = [
            dict(m, max_output_tokens=128_000) if m["id"] == "claude-sim-3" else m
            for m in [added, *SIM_MODELS[1:]]
        ]
        sim.set_group("default", raised)
        reports = [checker.check()[0] for _ in range(2)]
        found = [c for r in reports for c in r.tokens[0].changes]
        (change,) = found
        assert change.type is ChangeType.FIELD_CHANGED
        assert (change.model, change.field) == ("claude-sim-3", "max_output_tokens")
        assert (change.before, change.after) == (64_000, 128_000)
    finally:
        db.close()


def test_a_reused_page_asks_for_the_next_one_with_its_own_token(sim: GatewaySimulator) -> None:
    # The second token's pages are byte for byte the first token's, so they come from the
    # parsed-page cache; each next-page request must still carry the token of its walk.
    PAGES.clear()
    first, second = fetch(sim.base_url, SIM_KEY), fetch(sim.base_url, CANARY)
    assert isinstance(first, FetchOk) and isinstance(second, FetchOk)
    assert first.models == second.models
    assert PAGES.hits == 3
    assert sim.requests_count(SIM_KEY) == 3
    assert sim.requests_count(CANARY) == 3
    assert all(entry.status == 200 for entry in sim.requests)
