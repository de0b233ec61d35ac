"""What every flavor promises, checked on each one in monitor.sources.registry.FLAVORS.

Each is registered under its own name. Whatever JSON comes back, its parser either reads
a list of models (non-empty, distinct string ids) or refuses the body as not a models
list, and its error readers never raise. And on the wire, against a plain standard-library
server on loopback, its first request goes to the documented path with the key in the
provider's own header only: never in the URL, never beside another provider's header,
never replaced by a ~/.netrc entry; with our User-Agent and Accept.

A flavor added to the registry fails here until it is given its CASES entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import __version__
from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import FetchOk, ModelRecord
from monitor.sim import GatewaySimulator
from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.auto import AutoFlavor
from monitor.sources.base import Flavor, InvalidResponse, Page
from monitor.sources.fetch import fetch_models
from monitor.sources.gemini import GeminiFlavor
from monitor.sources.interning import RecordTable
from monitor.sources.litellm import LiteLLMFlavor
from monitor.sources.ollama import OllamaFlavor
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor
from monitor.sources.openrouter import OpenRouterFlavor
from monitor.sources.registry import FLAVORS
from tests.support.fixtures import load

KEY = "sk-flavor-contract-key-4f8a2c6e9b1d"

# Keys the OpenAI-style parsers look at, so generated bodies get near the interesting paths.
OPENAI_KEYS = ["id", "data", "success", "error", "message", "owned_by", "x"]
NEW_API_LIST = {
    "data": [
        {
            "id": "gpt-4o",
            "object": "model",
            "created": 1626777600,
            "owned_by": "openai",
            "supported_endpoint_types": ["openai", "openai-response"],
        },
        {"id": "claude-sonnet-4", "object": "model", "owned_by": "claude"},
    ],
    "object": "list",
    "success": True,
}
OPENAI_LIST = {
    "object": "list",
    "data": [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "o3", "object": "model", "created": 1744225308, "owned_by": "system"},
    ],
}


@dataclass(frozen=True)
class Case:
    """One flavor's part in the contract."""

    flavor: type[Flavor]
    base_url: str  # of a real deployment: what its first request is built on
    keys: tuple[str, ...]  # the object keys its parser reads, for generated bodies
    body: dict[str, Any]  # a complete one-page answer, served on the wire
    path: str  # the first request's path and query, under the base URL's path
    headers: dict[str, str]  # the credentials, as sent
    reported: str | None = None  # the flavor a result names, when not this one


BEARER = {"authorization": f"Bearer {KEY}"}
CASES: dict[str, Case] = {
    "anthropic": Case(
        AnthropicFlavor,
        "https://api.anthropic.com/v1",
        ("id", "data", "has_more", "last_id", "type", "error", "capabilities", "supported", "x"),
        load("anthropic-models.json"),
        "/v1/models?limit=1000",
        {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    ),
    "auto": Case(
        AutoFlavor,
        "https://gw.example/v1",
        (*OPENAI_KEYS, "supported_endpoint_types", "mode", "created", "models", "name"),
        NEW_API_LIST,
        "/v1/models",
        BEARER,
        reported="new-api",  # what it detected
    ),
    "gemini": Case(
        GeminiFlavor,
        "https://generativelanguage.googleapis.com/v1beta",
        (
            "name",
            "models",
            "nextPageToken",
            "error",
            "details",
            "reason",
            "supportedGenerationMethods",
            "inputTokenLimit",
            "x",
        ),
        {"models": load("gemini-models.json")["models"]},  # as a last page
        "/v1beta/models?pageSize=1000",
        {"x-goog-api-key": KEY},
    ),
    "litellm": Case(
        LiteLLMFlavor,
        "http://litellm.internal:4000/v1",
        (*OPENAI_KEYS, "mode", "max_input_tokens", "max_output_tokens", "type", "code"),
        load("litellm-models.json"),
        "/v1/models",
        BEARER,
    ),
    "new-api": Case(
        NewApiFlavor,
        "https://gw.example/v1",
        (*OPENAI_KEYS, "supported_endpoint_types"),
        NEW_API_LIST,
        "/v1/models",
        BEARER,
    ),
    "ollama": Case(
        OllamaFlavor,
        "http://127.0.0.1:11434/v1",
        (*OPENAI_KEYS, "created", "object"),
        load("ollama-models.json"),
        "/v1/models",
        BEARER,
    ),
    "one-api": Case(
        OneApiFlavor,
        "https://gw.example/v1",
        (*OPENAI_KEYS, "supported_endpoint_types"),
        OPENAI_LIST,
        "/v1/models",
        BEARER,
    ),
    "openai": Case(
        OpenAIFlavor,
        "https://gw.example/v1",
        (*OPENAI_KEYS, "supported_endpoint_types"),
        OPENAI_LIST,
        "/v1/models",
        BEARER,
    ),
    "openrouter": Case(
        OpenRouterFlavor,
        "https://openrouter.ai/api/v1",
        (
            "id",
            "data",
            "error",
            "message",
            "pricing",
            "prompt",
            "architecture",
            "input_modalities",
            "context_length",
            "top_provider",
            "links",
            "next",
            "x",
        ),
        load("openrouter-models.json"),
        "/v1/models?output_modalities=all",
        BEARER,
    ),
}
# Every provider's credential header: a request carries its own flavor's only.
CREDENTIALS = {name for case in CASES.values() for name in case.headers}


def flavor_of(name: str) -> Flavor:
    """A new instance, as the fetcher makes one for each check."""
    return FLAVORS[name].create(FLAVORS, RecordTable())


def test_every_registered_flavor_has_a_case() -> None:
    assert sorted(FLAVORS) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(FLAVORS))
def test_registered_under_its_own_name(name: str) -> None:
    assert FLAVORS[name] is CASES[name].flavor
    assert issubclass(FLAVORS[name], Flavor)
    assert FLAVORS[name].name == name


# -- any JSON at all -------------------------------------------------------------------------


def json_values(keys: tuple[str, ...]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(keys), children, max_size=5)
        ),
        max_leaves=25,
    )


@pytest.mark.parametrize("name", sorted(FLAVORS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_json_either_parses_or_is_invalid(name: str, data: st.DataObject) -> None:
    case = CASES[name]
    body = data.draw(json_values(case.keys), label="body")
    flavor = flavor_of(name)
    request = flavor.first_request(case.base_url, Secret(KEY))
    try:
        page = flavor.parse(body, request)
    except InvalidResponse:
        pass
    else:
        assert isinstance(page, Page)
        assert len({r.id for r in page.models}) == len(page.models)
        assert all(isinstance(r.id, str) and r.id for r in page.models)
    flavor.error_message(body)  # never raises
    flavor.error_kind(400, body)


# -- the first request, on the wire ----------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    """Records each request's path and headers; answers with the server's body."""

    protocol_version = "HTTP/1.1"
    server: CaptureServer

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append((self.path, headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class CaptureServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Capture)
        self.body = b""
        self.seen: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def parsed(name: str, body: dict[str, Any]) -> dict[str, ModelRecord]:
    """What the flavor makes of `body` as the only page of a real deployment's list."""
    case = CASES[name]
    flavor = flavor_of(name)
    page = flavor.parse(body, flavor.first_request(case.base_url, Secret(KEY)))
    assert page.next is None
    return {record.id: record for record in page.models}


@pytest.mark.parametrize("name", sorted(FLAVORS))
def test_first_request_on_the_wire(
    name: str, capture: CaptureServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A ~/.netrc entry for the host must not replace (or add) a credential.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password netrc-password\n")
    monkeypatch.setenv("NETRC", str(netrc))
    case = CASES[name]
    capture.body = json.dumps(case.body).encode()
    prefix = "/" + case.path.split("/")[1]  # /v1, /v1beta
    source = SourceConfig(name="gw", base_url=capture.url + prefix, flavor=name)
    result = fetch_models(
        source, TokenConfig("team", "gw", Secret(KEY)), MonitorSettings(timeout=5.0)
    )

    assert isinstance(result, FetchOk), result
    assert result.flavor == (case.reported or name)
    assert dict(result.models) == parsed(name, case.body)
    ((path, headers),) = capture.seen
    assert path == case.path
    assert KEY not in path
    assert {h: headers.get(h) for h in CREDENTIALS if h in headers} == case.headers
    assert headers["user-agent"] == f"llm-model-monitor/{__version__}"
    assert headers["accept"] == "application/json"


# The flavors whose gateway can say why it refused a token (explain_auth asks it).
EXPLAINS_REFUSALS = {"new-api"}


@pytest.mark.parametrize("name", sorted(FLAVORS))
def test_only_a_gateway_that_can_say_why_is_asked_why_a_token_was_refused(name: str) -> None:
    # A new-api gateway that would answer the usage route for this expired token.
    with GatewaySimulator(flavor="new-api", seed=2) as gateway:
        gateway.add_token("sk-refused-0000")
        gateway.expire_token("sk-refused-0000")
        source = SourceConfig("gw", gateway.base_url, name)
        token = TokenConfig("t", "gw", Secret("sk-refused-0000"))
        said = FLAVORS[name].explain_auth(source, token, MonitorSettings(timeout=5.0))
        asked = [r.path for r in gateway.requests if "usage" in r.path]
    if name in EXPLAINS_REFUSALS:
        assert said is not None and said.startswith("the token expired at ")
        assert asked == ["/api/usage/token/"]
    else:
        assert said is None and asked == []
