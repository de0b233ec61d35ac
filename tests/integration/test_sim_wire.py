"""The simulator's wire formats over real loopback: shapes, auth, pagination, faults.

Each format is checked against the provider's documented schema (its API reference and
its SDK's types): a client written for the real API must be able to read it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from monitor.sim import WIRE_FORMATS, Fault, GatewaySimulator, fingerprint, make_model
from monitor.sim.wire import LiteLLMWire

TOKEN = "sk-sim-wire-0123456789abcdef"
OTHER = "sk-sim-other-fedcba9876543210"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# A small catalogue with every kind of model a format treats differently.
MODELS = [
    make_model(
        "claude-sonnet-4-5",
        ("anthropic", "openai"),
        owned_by="claude",
        display_name="Claude Sonnet 4.5",
        created=1759104000,
        context_window=200_000,
        max_output_tokens=64_000,
        capabilities=["batch", "thinking", "effort", "effort.high", "image_input"],
        pricing={"prompt": "0.000003", "completion": "0.000015"},
        input_modalities=["text", "image"],
        mode="chat",
    ),
    make_model(
        "claude-3-haiku-20240307",
        ("anthropic",),
        owned_by="claude",
        created=1709769600,
        deprecation_date="2026-01-05",
        retirement_date="2026-07-05",
    ),
    make_model("gpt-4o", ("openai", "openai-response"), created=1715367049),
    make_model("text-embedding-3-small", ("embeddings",), created=1705948997, mode="embedding"),
    make_model("gpt-image-1", ("image-generation",), created=1745280000),
]
IDS = {m["id"] for m in MODELS}


def catalogue(n: int) -> list[dict[str, Any]]:
    """`n` models with distinct release times, in no particular order."""
    return [make_model(f"model-{i:03d}", created=1_700_000_000 + (i * 7919) % n) for i in range(n)]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def simulator(flavor: str, models: list[dict[str, Any]] | None = None) -> GatewaySimulator:
    sim = GatewaySimulator(flavor=flavor, seed=3).start()
    sim.set_group("default", MODELS if models is None else models)
    sim.add_token(TOKEN)
    return sim


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[GatewaySimulator]:
    flavor, models = request.param if isinstance(request.param, tuple) else (request.param, None)
    with simulator(flavor, models) as gateway:
        yield gateway


def auth(flavor: str, token: str | None = TOKEN) -> dict[str, str]:
    """The headers a client of `flavor` sends."""
    if token is None:
        return {"anthropic-version": "2023-06-01"} if flavor == "anthropic" else {}
    if flavor == "anthropic":
        return {"x-api-key": token, "anthropic-version": "2023-06-01"}
    if flavor == "gemini":
        return {"x-goog-api-key": token}
    return {"Authorization": f"Bearer {token}"}


def get(
    http: requests.Session,
    sim: GatewaySimulator,
    token: str | None = TOKEN,
    path: str = "/models",
    headers: dict[str, str] | None = None,
    **params: object,
) -> requests.Response:
    return http.get(
        sim.base_url + path,
        headers=auth(sim.flavor, token) if headers is None else headers,
        params=params,  # type: ignore[arg-type]
        timeout=5,
    )


def walk(
    http: requests.Session, sim: GatewaySimulator, size: int | None = None, token: str = TOKEN
) -> list[list[str]]:
    """The ids of every page, following the format's own pagination."""
    pages: list[list[str]] = []
    params: dict[str, object] = {}
    while True:
        if sim.flavor == "anthropic":
            body = get(http, sim, token, **params, **({"limit": size} if size else {})).json()
            pages.append([m["id"] for m in body["data"]])
            if not body["has_more"]:
                return pages
            params = {"after_id": body["last_id"]}
        elif sim.flavor == "gemini":
            body = get(http, sim, token, **params, **({"pageSize": size} if size else {})).json()
            pages.append([m["name"].removeprefix("models/") for m in body.get("models", [])])
            if "nextPageToken" not in body:
                return pages
            params = {"pageToken": body["nextPageToken"]}
        elif sim.flavor == "openrouter":
            offset = sum(map(len, pages))
            extra = {"offset": offset, "limit": size} if size else {}
            body = get(http, sim, token, output_modalities="all", **extra).json()
            pages.append([m["id"] for m in body["data"]])
            if not size or len(body["data"]) < size:
                return pages
        else:
            body = get(http, sim, token).json()
            return [[m["id"] for m in body["data"] or ()]]


def assert_complete(pages: list[list[str]], expected: set[str]) -> None:
    ids = [model_id for page in pages for model_id in page]
    assert len(ids) == len(set(ids)), "duplicates across pages"
    assert set(ids) == expected, "models lost or invented across pages"


# -- every format --------------------------------------------------------------------------


SUFFIXES = {
    "new-api": "/v1",
    "one-api": "/v1",
    "openai": "/v1",
    "litellm": "/v1",
    "ollama": "/v1",
    "anthropic": "/v1",
    "gemini": "/v1beta",
    "openrouter": "/api/v1",
}


def test_every_format_is_registered_with_its_base_url() -> None:
    assert set(WIRE_FORMATS) == set(SUFFIXES)
    with GatewaySimulator() as sim:
        for flavor, suffix in SUFFIXES.items():
            sim.flavor = flavor  # switching while running
            assert sim.base_url == f"http://127.0.0.1:{sim.port}{suffix}"
            assert sim.wire.name == flavor
        with pytest.raises(ValueError, match="flavor"):
            sim.flavor = "vllm"
        assert sim.flavor == list(SUFFIXES)[-1]  # unchanged by the refusal


@pytest.mark.parametrize("flavor", sorted(WIRE_FORMATS))
def test_the_same_models_come_out_of_every_format(http: requests.Session, flavor: str) -> None:
    with simulator(flavor) as sim:
        # Pages of 2 where the format pages: 3 pages for 5 models.
        assert_complete(walk(http, sim, size=2), IDS)


@pytest.mark.parametrize(
    ("flavor", "check"),
    [
        ("new-api", lambda b: b["error"]["type"] == "new_api_error"),
        ("one-api", lambda b: b["error"]["type"] == "one_api_error"),
        ("openai", lambda b: b["error"]["type"] == "server_error" and b["error"]["param"] is None),
        ("anthropic", lambda b: b["type"] == "error" and b["error"]["type"] == "api_error"),
        ("gemini", lambda b: b["error"]["status"] == "UNAVAILABLE" and b["error"]["code"] == 503),
        ("openrouter", lambda b: b["error"]["code"] == 503),
        ("litellm", lambda b: b["error"]["code"] == "503" and b["error"]["param"] == "None"),
        ("ollama", lambda b: isinstance(b["error"], str)),
    ],
)
def test_fault_http_speaks_the_active_format(
    http: requests.Session, flavor: str, check: Any
) -> None:
    with simulator(flavor) as sim:
        sim.inject(Fault.http(503, message="upstream down"), token=TOKEN)
        response = get(http, sim)
        assert response.status_code == 503
        assert check(response.json())
        assert "upstream down" in response.text
        assert get(http, sim).status_code == 200


@pytest.mark.parametrize("flavor", ["anthropic", "gemini", "openrouter", "litellm", "ollama"])
def test_faults_only_hit_the_models_routes(http: requests.Session, flavor: str) -> None:
    with simulator(flavor) as sim:
        sim.inject(Fault.http(500), times=None)
        assert get(http, sim, path="/elsewhere").status_code == 404
        assert get(http, sim).status_code == 500


def test_make_model_extras_stay_out_of_new_api(http: requests.Session) -> None:
    model = make_model("m", display_name="M", context_window=8192, created=1700000000)
    assert model["display_name"] == "M"
    assert model["created"] == 1700000000
    with pytest.raises(TypeError, match="context_length"):
        make_model("m", context_length=8192)
    with simulator("new-api", [model]) as sim:
        [sent] = get(http, sim).json()["data"]
    assert sent == {
        "id": "m",
        "object": "model",
        "created": 1700000000,
        "owned_by": "openai",
        "supported_endpoint_types": ["openai"],
    }


# -- anthropic ----------------------------------------------------------------------------


@pytest.mark.parametrize("sim", ["anthropic"], indirect=True)
def test_anthropic_model_info(sim: GatewaySimulator, http: requests.Session) -> None:
    response = get(http, sim)
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert list(body) == ["data", "has_more", "first_id", "last_id"]
    by_id = {m["id"]: m for m in body["data"]}
    sonnet = by_id["claude-sonnet-4-5"]
    assert sonnet["type"] == "model"
    assert sonnet["display_name"] == "Claude Sonnet 4.5"
    assert sonnet["created_at"] == "2025-09-29T00:00:00Z"
    assert (sonnet["max_input_tokens"], sonnet["max_tokens"]) == (200_000, 64_000)
    assert (sonnet["lifecycle"], sonnet["deprecated_at"], sonnet["retires_at"]) == (
        "active",
        None,
        None,
    )
    assert sonnet["line"] == "sonnet"
    caps = sonnet["capabilities"]
    assert caps["batch"] == {"supported": True}
    assert caps["pdf_input"] == {"supported": False}
    assert caps["thinking"]["supported"] is True
    assert caps["thinking"]["types"]["enabled"] == {"supported": True}
    assert caps["effort"]["high"] == {"supported": True}
    assert caps["effort"]["low"] == {"supported": False}
    assert {"context_management", "server_tools", "structured_outputs"} <= caps.keys()
    haiku = by_id["claude-3-haiku-20240307"]
    assert haiku["lifecycle"] == "deprecated"
    assert haiku["deprecated_at"] == "2026-01-05T00:00:00Z"
    assert haiku["retires_at"] == "2026-07-05T00:00:00Z"
    assert haiku["display_name"] == "claude-3-haiku-20240307"  # always sent
    assert all(RFC3339.match(m["created_at"]) for m in body["data"])
    # Newest first, and the same order on every request.
    created = [m["created_at"] for m in body["data"]]
    assert created == sorted(created, reverse=True)
    assert get(http, sim).json()["data"] == body["data"]


@pytest.mark.parametrize("sim", ["anthropic"], indirect=True)
def test_anthropic_auth(sim: GatewaySimulator, http: requests.Session) -> None:
    def error(response: requests.Response) -> tuple[int, str, str]:
        body = response.json()
        assert body["type"] == "error"
        assert body["request_id"] == response.headers["request-id"]
        return response.status_code, body["error"]["type"], body["error"]["message"]

    assert error(get(http, sim, token=None)) == (
        401,
        "authentication_error",
        "x-api-key header is required",
    )
    assert error(get(http, sim, token="sk-ant-nobody")) == (
        401,
        "authentication_error",
        "invalid x-api-key",
    )
    bearer_only = get(http, sim, headers={"Authorization": f"Bearer {TOKEN}"})
    assert error(bearer_only)[:2] == (401, "authentication_error")
    no_version = get(http, sim, headers={"x-api-key": TOKEN})
    assert error(no_version) == (
        400,
        "invalid_request_error",
        "anthropic-version: header is required",
    )
    sim.expire_token(TOKEN)
    assert error(get(http, sim))[:2] == (401, "authentication_error")
    assert sim.requests[0].token is None
    assert sim.requests[1].token == fingerprint("sk-ant-nobody")  # read from x-api-key


@pytest.mark.parametrize("sim", [("anthropic", catalogue(25))], indirect=True)
def test_anthropic_pagination(sim: GatewaySimulator, http: requests.Session) -> None:
    first = get(http, sim, limit=10).json()
    assert (len(first["data"]), first["has_more"]) == (10, True)
    assert first["first_id"] == first["data"][0]["id"]
    assert first["last_id"] == first["data"][-1]["id"]
    pages = walk(http, sim, size=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert_complete(pages, {f"model-{i:03d}" for i in range(25)})
    assert walk(http, sim, size=10) == pages  # stable
    assert walk(http, sim) == [[*pages[0], *pages[1]], pages[2]]  # default limit 20
    # before_id pages backwards from a cursor.
    back = get(http, sim, limit=10, before_id=pages[2][0]).json()
    assert [m["id"] for m in back["data"]] == pages[1]
    assert back["has_more"] is True
    last = get(http, sim, limit=10, after_id=pages[2][-1]).json()
    assert last == {"data": [], "has_more": False, "first_id": None, "last_id": None}


@pytest.mark.parametrize("sim", [("anthropic", catalogue(5))], indirect=True)
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"after_id": "no-such-model"},
        {"after_id": "model-001", "before_id": "model-002"},
        {"lifecycle": "sunset"},
    ],
)
def test_anthropic_bad_params(
    sim: GatewaySimulator, http: requests.Session, params: dict[str, object]
) -> None:
    response = get(http, sim, **params)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_retired_models_only_on_request(http: requests.Session) -> None:
    retired = make_model("claude-2.1", lifecycle="retired", retirement_date="2025-07-21")
    with simulator("anthropic", [*MODELS, retired]) as sim:
        assert "claude-2.1" not in {m["id"] for m in get(http, sim, limit=1000).json()["data"]}
        only = get(http, sim, lifecycle="retired").json()["data"]
        assert [(m["id"], m["lifecycle"]) for m in only] == [("claude-2.1", "retired")]
        assert get(http, sim, limit=1000).status_code == 200


@pytest.mark.parametrize("sim", [("anthropic", catalogue(25))], indirect=True)
def test_anthropic_second_page_overloaded(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.add_token(OTHER)
    sim.inject(Fault.overloaded(), token=TOKEN, skip=1)
    page1 = get(http, sim, limit=10).json()
    assert get(http, sim, OTHER, limit=10).status_code == 200  # another key: no effect
    failed = get(http, sim, limit=10, after_id=page1["last_id"])
    assert failed.status_code == 529
    assert failed.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    retried = get(http, sim, limit=10, after_id=page1["last_id"])
    assert retried.status_code == 200
    assert [m["id"] for m in retried.json()["data"]] == walk(http, sim, size=10)[1]


# -- gemini -------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", ["gemini"], indirect=True)
def test_gemini_models(sim: GatewaySimulator, http: requests.Session) -> None:
    body = get(http, sim).json()
    assert list(body) == ["models"]  # a single page: no nextPageToken
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {f"models/{model_id}" for model_id in IDS}
    sonnet = by_name["models/claude-sonnet-4-5"]
    assert sonnet == {
        "name": "models/claude-sonnet-4-5",
        "version": "001",
        "displayName": "Claude Sonnet 4.5",
        "inputTokenLimit": 200_000,
        "outputTokenLimit": 64_000,
        "supportedGenerationMethods": [
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }
    embedding = by_name["models/text-embedding-3-small"]
    assert embedding["supportedGenerationMethods"] == ["embedContent", "countTextTokens"]
    assert "temperature" not in embedding  # only generative models have sampling defaults
    assert "description" not in embedding  # proto3 JSON leaves out empty strings
    # ?key= authenticates as well as the header.
    assert get(http, sim, token=None, key=TOKEN).json() == body


@pytest.mark.parametrize("sim", ["gemini"], indirect=True)
def test_gemini_auth(sim: GatewaySimulator, http: requests.Session) -> None:
    invalid = get(http, sim, token="AIza-not-a-key")
    assert invalid.status_code == 400
    assert invalid.json() == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
    }
    missing = get(http, sim, token=None)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    bearer = get(http, sim, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 403
    sim.expire_token(TOKEN)
    expired = get(http, sim).json()["error"]
    assert expired["message"] == "API key expired. Please renew the API key."
    assert expired["details"][0]["reason"] == "API_KEY_INVALID"
    assert sim.requests[0].token == fingerprint("AIza-not-a-key")


@pytest.mark.parametrize("sim", [("gemini", catalogue(120))], indirect=True)
def test_gemini_pagination(sim: GatewaySimulator, http: requests.Session) -> None:
    pages = walk(http, sim)  # default pageSize: 50
    assert [len(page) for page in pages] == [50, 50, 20]
    assert_complete(pages, {f"model-{i:03d}" for i in range(120)})
    assert walk(http, sim) == pages
    assert [len(page) for page in walk(http, sim, size=45)] == [45, 45, 30]
    assert [len(page) for page in walk(http, sim, size=5000)] == [120]  # capped at 1000
    token = get(http, sim).json()["nextPageToken"]
    assert "model-" not in token  # opaque
    base64.b64decode(token, validate=True)
    assert get(http, sim, pageToken="not a token").status_code == 400
    assert get(http, sim, pageSize="many").json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("sim", [("gemini", catalogue(120))], indirect=True)
def test_gemini_page_token_survives_a_change(sim: GatewaySimulator, http: requests.Session) -> None:
    first = get(http, sim).json()
    sim.set_group("default", catalogue(120)[1:])  # a model of the first page vanishes
    second = get(http, sim, pageToken=first["nextPageToken"]).json()
    names = [m["name"] for m in first["models"]] + [m["name"] for m in second["models"]]
    assert len(set(names)) == len(names) == 100


@pytest.mark.parametrize("sim", [("gemini", catalogue(120))], indirect=True)
def test_gemini_second_page_fails(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.inject(Fault.http(503), token=TOKEN, skip=1)
    first = get(http, sim).json()
    failed = get(http, sim, pageToken=first["nextPageToken"])
    assert failed.status_code == 503
    assert failed.json()["error"]["status"] == "UNAVAILABLE"
    assert len(get(http, sim, pageToken=first["nextPageToken"]).json()["models"]) == 50


@pytest.mark.parametrize("sim", [("gemini", [])], indirect=True)
def test_gemini_empty_list_is_an_empty_object(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    assert get(http, sim).json() == {}


# -- openrouter ---------------------------------------------------------------------------


@pytest.mark.parametrize("sim", ["openrouter"], indirect=True)
def test_openrouter_model(sim: GatewaySimulator, http: requests.Session) -> None:
    body = get(http, sim, token=None).json()
    assert list(body) == ["data"]
    sonnet = next(m for m in body["data"] if m["id"] == "claude-sonnet-4-5")
    assert sonnet == {
        "id": "claude-sonnet-4-5",
        "canonical_slug": "claude-sonnet-4-5",
        "name": "Claude Sonnet 4.5",
        "created": 1759104000,
        "description": "",
        "context_length": 200_000,
        "architecture": {
            "modality": "text+image->text",
            "input_modalities": ["text", "image"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": "0.000003",
            "completion": "0.000015",
            "request": "0",
            "image": "0",
            "web_search": "0",
            "internal_reasoning": "0",
        },
        "top_provider": {
            "context_length": 200_000,
            "max_completion_tokens": 64_000,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": sonnet["supported_parameters"],
        "default_parameters": {},
        "expiration_date": None,
    }
    assert "max_tokens" in sonnet["supported_parameters"]


@pytest.mark.parametrize("sim", ["openrouter"], indirect=True)
def test_openrouter_output_modalities(sim: GatewaySimulator, http: requests.Session) -> None:
    def ids(**params: object) -> set[str]:
        return {m["id"] for m in get(http, sim, token=None, **params).json()["data"]}

    text = IDS - {"text-embedding-3-small", "gpt-image-1"}
    assert ids() == text  # the default hides what does not output text
    assert ids(output_modalities="text") == text
    assert ids(output_modalities="all") == IDS
    assert ids(output_modalities="image") == {"gpt-image-1"}
    assert ids(output_modalities="image,embeddings") == {"gpt-image-1", "text-embedding-3-small"}


@pytest.mark.parametrize("sim", ["openrouter"], indirect=True)
def test_openrouter_needs_no_auth(sim: GatewaySimulator, http: requests.Session) -> None:
    assert get(http, sim, token=None).status_code == 200
    assert get(http, sim, token="sk-or-v1-bogus").status_code == 200  # ignored
    # The per-user list is the one that checks the key.
    missing = get(http, sim, token=None, path="/models/user")
    assert (missing.status_code, missing.json()) == (
        401,
        {"error": {"message": "No auth credentials found", "code": 401}},
    )
    invalid = get(http, sim, token="sk-or-v1-bogus", path="/models/user")
    assert invalid.status_code == 401
    assert invalid.json()["error"]["code"] == 401
    assert get(http, sim, path="/models/user").status_code == 200


@pytest.mark.parametrize("sim", [("openrouter", catalogue(25))], indirect=True)
def test_openrouter_offset_limit(sim: GatewaySimulator, http: requests.Session) -> None:
    pages = walk(http, sim, size=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert_complete(pages, {f"model-{i:03d}" for i in range(25)})
    assert walk(http, sim, size=10) == pages
    assert get(http, sim, limit=-1).json()["error"]["code"] == 400
    sim.inject(Fault.http(502), skip=1)
    assert get(http, sim, offset=0, limit=10).status_code == 200
    failed = get(http, sim, offset=10, limit=10)
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == 502


# -- litellm ------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", ["litellm"], indirect=True)
def test_litellm_models(sim: GatewaySimulator, http: requests.Session) -> None:
    body = get(http, sim).json()
    assert list(body) == ["data", "object"]
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [m["id"] for m in MODELS]  # config order
    assert all(
        (m["object"], m["created"], m["owned_by"]) == ("model", 1677610602, "openai")
        for m in body["data"]
    )
    sonnet, haiku = body["data"][:2]
    assert sonnet["mode"] == "chat"
    assert (sonnet["max_input_tokens"], sonnet["max_output_tokens"]) == (200_000, 64_000)
    assert set(haiku) == {"id", "object", "created", "owned_by"}
    assert get(http, sim, headers={"x-litellm-api-key": TOKEN}).json() == body
    assert (
        http.get(
            sim.base_url.removesuffix("/v1") + "/models", headers=auth("litellm"), timeout=5
        ).json()
        == body
    )


@pytest.mark.parametrize("sim", ["litellm"], indirect=True)
def test_litellm_auth(sim: GatewaySimulator, http: requests.Session) -> None:
    missing = get(http, sim, token=None)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {
            "message": "Authentication Error, No api key passed in.",
            "type": "auth_error",
            "param": "None",
            "code": "401",
        }
    }
    unknown = "sk-litellm-unknown-key-9876"
    invalid = get(http, sim, token=unknown)
    assert invalid.status_code == 401
    error = invalid.json()["error"]
    assert error["message"].startswith("Authentication Error, Invalid proxy server token passed.")
    assert unknown not in error["message"]
    assert (error["type"], error["code"]) == ("auth_error", "401")
    # Without a database, a wrong key is a 400.
    wire = sim.wire
    assert isinstance(wire, LiteLLMWire)
    wire.connected_db = False
    no_db = get(http, sim, token=unknown)
    assert no_db.status_code == 400
    assert no_db.json()["error"]["message"].endswith("No connected db.")
    assert no_db.json()["error"]["code"] == "400"
    assert get(http, sim).status_code == 200  # the configured key still works


# -- ollama -------------------------------------------------------------------------------


def test_ollama_models(http: requests.Session) -> None:
    local = [
        make_model("llama3:latest", created=1718000000),
        make_model("jmorganca/tinyllama:1b", created=1719000000),
        make_model("qwen2.5-coder:7b", created=1717000000),
    ]
    with simulator("ollama", local) as sim:
        body = get(http, sim, token=None).json()
        assert body == {
            "object": "list",
            "data": [
                {
                    "id": "jmorganca/tinyllama:1b",
                    "object": "model",
                    "created": 1719000000,
                    "owned_by": "jmorganca",
                },
                {
                    "id": "llama3:latest",
                    "object": "model",
                    "created": 1718000000,
                    "owned_by": "library",
                },
                {
                    "id": "qwen2.5-coder:7b",
                    "object": "model",
                    "created": 1717000000,
                    "owned_by": "library",
                },
            ],
        }
        assert get(http, sim, token="anything").json() == body  # a key is ignored
        sim.inject(Fault.http(500, message="llama runner process has terminated"))
        failed = get(http, sim)
        assert failed.json() == {"error": "llama runner process has terminated"}
        missing = get(http, sim, path="/nope")
        assert (missing.status_code, missing.text) == (404, "404 page not found")
        sim.set_group("default", [])
        assert get(http, sim).json() == {"object": "list", "data": None}
