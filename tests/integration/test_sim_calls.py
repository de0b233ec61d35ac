"""The gateway simulator answers a probe's calls as new-api does, over real loopback sockets.

Chat completions, embeddings and Anthropic messages; the checks in new-api's order
(token, body, limiter, model limits, channel, fields, price, quota, upstream) and the
per-model verdicts that force one of them; the call log and its counts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from monitor.sim import GatewaySimulator
from monitor.sim.serve import StateError, apply, parse_state

TOKEN = "sk-sim-calls-0123456789abcdef"
VIP = "sk-sim-vip-fedcba9876543210"
THIRD = "sk-sim-third-00112233445566"
MODELS = ["gpt-4o", "o3-mini", "text-embedding-3-small", "claude-sonnet-4-5"]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = "/v1/messages"


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=5) as gateway:
        gateway.set_group("default", MODELS)
        gateway.set_group("vip", ["gpt-5"])
        gateway.add_token(TOKEN)
        gateway.add_token(VIP, group="vip")
        gateway.add_token(THIRD)
        yield gateway


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "H"}],
        "max_tokens": 1,
        **extra,
    }


def messages_body(model: str) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "H"}]}


def post(
    http: requests.Session,
    sim: GatewaySimulator,
    path: str,
    body: Any,
    token: str | None = TOKEN,
    *,
    api_key: bool = False,
    timeout: float = 5,
) -> requests.Response:
    """A call as a probe sends it: JSON (or raw bytes), Bearer or `x-api-key`."""
    headers = {}
    if token is not None:
        headers = {"x-api-key": token} if api_key else {"Authorization": f"Bearer {token}"}
    url = f"http://{sim.host}:{sim.port}{path}"
    if isinstance(body, bytes):
        return http.post(url, data=body, headers=headers, timeout=timeout)
    return http.post(url, json=body, headers=headers, timeout=timeout)


def openai_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The `error` object of new-api's OpenAI-shaped error, after checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert " (request id: " in error["message"] and error["message"].endswith(")")
    return error


# -- answers that succeed ---------------------------------------------------------------------


def test_chat_answers_one_token(sim: GatewaySimulator, http: requests.Session) -> None:
    response = post(http, sim, CHAT, chat_body("gpt-4o"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert abs(body["created"] - time.time()) < 60
    assert body["model"] == "gpt-4o"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "H"}, "finish_reason": "length"}
    ]
    usage = body["usage"]
    assert usage["completion_tokens"] == 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + 1 > 1


def test_embeddings_answer_a_vector(sim: GatewaySimulator, http: requests.Session) -> None:
    body = post(http, sim, EMBEDDINGS, {"model": "text-embedding-3-small", "input": "H"}).json()
    assert body["object"] == "list"
    assert body["model"] == "text-embedding-3-small"
    [item] = body["data"]
    assert (item["object"], item["index"]) == ("embedding", 0)
    assert item["embedding"] and all(isinstance(x, float) for x in item["embedding"])
    assert body["usage"]["prompt_tokens"] >= 1
    listed = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert [d["index"] for d in post(http, sim, EMBEDDINGS, listed).json()["data"]] == [0, 1]


@pytest.mark.parametrize("api_key", [True, False], ids=["x-api-key", "bearer"])
def test_messages_take_either_header(
    sim: GatewaySimulator, http: requests.Session, api_key: bool
) -> None:
    response = post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5"), api_key=api_key)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == (
        "message",
        "assistant",
        "claude-sonnet-4-5",
    )
    assert body["content"] == [{"type": "text", "text": "H"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["usage"]["output_tokens"] == 1 and body["usage"]["input_tokens"] >= 1
    assert sim.calls()[-1].token == TOKEN


def test_calls_speak_new_api_whatever_the_flavor(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.flavor = "anthropic"
    response = post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5"), api_key=True)
    assert response.status_code == 200
    assert post(http, sim, CHAT, chat_body("gpt-4o")).json()["object"] == "chat.completion"


# -- tokens and models --------------------------------------------------------------------------


def test_refused_tokens_get_401(sim: GatewaySimulator, http: requests.Session) -> None:
    for token in ("sk-nobody", None):
        error = openai_error(post(http, sim, CHAT, chat_body("gpt-4o"), token), 401, "")
        assert error["message"].startswith("Invalid token (request id: ")
        assert error["type"] == "new_api_error"
    # new-api reads x-api-key on the Anthropic route only.
    openai_error(post(http, sim, CHAT, chat_body("gpt-4o"), api_key=True), 401, "")
    sim.expire_token(TOKEN)
    openai_error(post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5")), 401, "")
    assert [c.status for c in sim.calls()] == [401, 401, 401, 401]


def test_a_model_the_token_does_not_list_has_no_channel(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    error = openai_error(post(http, sim, CHAT, chat_body("gpt-5")), 503, "model_not_found")
    assert error["type"] == "new_api_error"
    assert error["message"].startswith(
        "No available channel for model gpt-5 under group default (distributor) (request id: "
    )
    error = openai_error(post(http, sim, CHAT, chat_body("gpt-4o"), VIP), 503, "model_not_found")
    assert "model gpt-4o under group vip" in error["message"]
    assert post(http, sim, CHAT, chat_body("gpt-5"), VIP).status_code == 200


def test_an_allow_list_is_checked_before_the_channel(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.set_models(TOKEN, ["gpt-4o"])
    error = openai_error(post(http, sim, CHAT, chat_body("o3-mini")), 403, "")
    assert error["message"].startswith("This token has no access to model o3-mini (request id: ")
    assert post(http, sim, CHAT, chat_body("gpt-4o")).status_code == 200


def test_request_ids_differ(sim: GatewaySimulator, http: requests.Session) -> None:
    first, second = (
        openai_error(post(http, sim, CHAT, chat_body("nope")), 503, "model_not_found")["message"]
        for _ in range(2)
    )
    assert first != second
    assert first.split(" (request id: ")[0] == second.split(" (request id: ")[0]


# -- verdicts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "status", "code", "type", "message"),
    [
        (
            "no_channel",
            503,
            "model_not_found",
            "new_api_error",
            "No available channel for model gpt-4o under group default",
        ),
        (
            "unpriced",
            400,
            "model_price_error",
            "new_api_error",
            "Model gpt-4o ratio or price not set",
        ),
        ("forbidden", 403, "", "new_api_error", "This token has no access to model gpt-4o"),
        (
            "quota",
            403,
            "pre_consume_token_quota_failed",
            "new_api_error",
            "token quota is not enough, token remain quota: \uff041.000000, need quota: ",
        ),
        ("upstream_error", 502, "bad_response_status_code", "upstream_error", "bad response"),
    ],
)
def test_error_verdicts(
    sim: GatewaySimulator,
    http: requests.Session,
    verdict: str,
    status: int,
    code: str,
    type: str,
    message: str,
) -> None:
    sim.set_verdict("gpt-4o", verdict)
    error = openai_error(post(http, sim, CHAT, chat_body("gpt-4o")), status, code)
    assert error["type"] == type
    assert message in error["message"]
    assert sim.calls()[-1].status == status


def test_rate_limited_is_a_bare_429(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.set_verdict("gpt-4o", "rate_limited")
    response = post(http, sim, CHAT, chat_body("gpt-4o"))
    assert response.status_code == 429
    assert response.content == b""
    assert "Content-Type" not in response.headers and "Retry-After" not in response.headers
    sim.set_retry_after(7)
    assert post(http, sim, CHAT, chat_body("gpt-4o")).headers["Retry-After"] == "7"
    # The limiter comes before the model limits and the channel.
    sim.set_verdict("gpt-5", "rate_limited")
    assert post(http, sim, CHAT, chat_body("gpt-5")).status_code == 429


def test_slow_answers_ok_after_a_while(sim: GatewaySimulator, http: requests.Session) -> None:
    sim.set_verdict("gpt-4o", "slow")
    sim.set_slow_seconds(0.6)
    with pytest.raises(requests.ReadTimeout):
        post(http, sim, CHAT, chat_body("gpt-4o"), timeout=0.2)
    # Logged as soon as decided, so a test sees the call its client gave up on.
    assert [(c.model, c.status) for c in sim.calls()] == [("gpt-4o", 200)]
    started = time.monotonic()
    with requests.Session() as fresh:
        assert post(fresh, sim, CHAT, chat_body("gpt-4o")).status_code == 200
    assert time.monotonic() - started >= 0.6


def test_messages_relay_errors_come_in_anthropic_shape(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    """From the field checks on, new-api answers /v1/messages in Anthropic's shape, which has
    no code; its middleware (token, limits, channel) answers in OpenAI's everywhere."""
    sim.set_verdict("claude-sonnet-4-5", "quota")
    response = post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5"), api_key=True)
    assert response.status_code == 403
    body = response.json()
    assert list(body) == ["type", "error"] and body["type"] == "error"
    assert body["error"]["type"] == "new_api_error"
    assert body["error"]["message"].startswith("token quota is not enough")
    sim.set_verdict("claude-sonnet-4-5", "upstream_error")
    body = post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5")).json()
    assert body["error"]["type"] == "bad_response_status_code"
    sim.set_verdict("claude-sonnet-4-5", "no_channel")
    response = post(http, sim, MESSAGES, messages_body("claude-sonnet-4-5"))
    openai_error(response, 503, "model_not_found")


def test_a_token_verdict_wins_over_the_one_for_every_token(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    sim.set_verdict("gpt-4o", "no_channel")
    sim.set_verdict("gpt-4o", "unpriced", token=TOKEN)
    sim.set_verdict("gpt-4o", "ok", token=THIRD)
    assert post(http, sim, CHAT, chat_body("gpt-4o")).status_code == 400
    assert post(http, sim, CHAT, chat_body("gpt-4o"), THIRD).status_code == 200
    sim.set_verdict("gpt-4o", None, token=TOKEN)
    assert post(http, sim, CHAT, chat_body("gpt-4o")).status_code == 503
    sim.set_verdict("gpt-4o", None)
    assert post(http, sim, CHAT, chat_body("gpt-4o")).status_code == 200
    # An explicit "ok" answers even for a model the token does not list.
    sim.set_verdict("gpt-5", "ok")
    assert post(http, sim, CHAT, chat_body("gpt-5")).status_code == 200
    sim.clear_verdicts()
    assert post(http, sim, CHAT, chat_body("gpt-5"), THIRD).status_code == 503


def test_unknown_verdicts_and_bad_settings_raise(sim: GatewaySimulator) -> None:
    with pytest.raises(ValueError, match="verdict must be one of"):
        sim.set_verdict("gpt-4o", "broken")
    with pytest.raises(ValueError, match="negative"):
        sim.set_slow_seconds(-1)
    with pytest.raises(ValueError, match="negative"):
        sim.set_retry_after(-1)


# -- request bodies -----------------------------------------------------------------------------


def test_o_series_refuse_max_tokens(sim: GatewaySimulator, http: requests.Session) -> None:
    response = post(http, sim, CHAT, chat_body("o3-mini"))
    error = openai_error(response, 400, "unsupported_parameter")
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "max_tokens"
    assert error["message"].startswith(
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead."
    )
    body = chat_body("o3-mini", max_completion_tokens=1)
    del body["max_tokens"]
    assert post(http, sim, CHAT, body).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        (CHAT, b"not json", "", "Invalid request"),
        (CHAT, b"[1, 2]", "", "Invalid request"),
        (CHAT, {"messages": [{"role": "user", "content": "H"}]}, "", "model is required"),
        (
            CHAT,
            {"model": "gpt-4o", "max_tokens": 1},
            "invalid_request",
            "field messages is required",
        ),
        (
            CHAT,
            {"model": "gpt-4o", "messages": []},
            "invalid_request",
            "field messages is required",
        ),
        (EMBEDDINGS, {"model": "text-embedding-3-small"}, "invalid_request", "input is empty"),
    ],
)
def test_bad_bodies_get_400(
    sim: GatewaySimulator, http: requests.Session, path: str, body: Any, code: str, message: str
) -> None:
    error = openai_error(post(http, sim, path, body), 400, code)
    assert error["message"].startswith(message)


def test_messages_need_max_tokens_and_messages(
    sim: GatewaySimulator, http: requests.Session
) -> None:
    body = messages_body("claude-sonnet-4-5")
    del body["max_tokens"]
    refused = post(http, sim, MESSAGES, body, api_key=True)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert refused.json()["error"]["message"].startswith("max_tokens: Field required")
    empty = post(http, sim, MESSAGES, {"model": "claude-sonnet-4-5", "max_tokens": 1})
    assert empty.status_code == 400
    assert empty.json()["error"]["message"].startswith("field messages is required")


def test_oversized_bodies_and_other_paths(sim: GatewaySimulator, http: requests.Session) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2 << 20}\r\n\r\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):  # the server closes: the body was never read
            data += chunk
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"request body too large" in data
    response = post(http, sim, "/v1/models", {})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/models)"
    assert sim.polls() == 0


# -- the call log -------------------------------------------------------------------------------


def test_calls_are_counted_per_token_and_model(http: requests.Session) -> None:
    clock = iter(range(100))
    with GatewaySimulator(usage_clock=lambda: float(next(clock))) as sim:
        sim.set_group("default", MODELS)
        sim.add_token(TOKEN)
        sim.add_token(VIP)
        assert http.get(
            f"{sim.base_url}/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ).ok
        post(http, sim, CHAT, chat_body("gpt-4o"))
        post(http, sim, CHAT, chat_body("gpt-4o"))
        post(http, sim, EMBEDDINGS, {"model": "text-embedding-3-small", "input": "H"}, VIP)
        post(http, sim, MESSAGES, messages_body("gpt-5"), VIP, api_key=True)
        post(http, sim, CHAT, b"{", "sk-nobody")

        assert sim.call_counts() == Counter(
            {
                (TOKEN, "gpt-4o"): 2,
                (VIP, "text-embedding-3-small"): 1,
                (VIP, "gpt-5"): 1,
                ("sk-nobody", None): 1,
            }
        )
        assert sim.polls() == 1 and sim.polls(TOKEN) == 1  # calls are not polls
        assert sim.requests_count() == 6 and sim.requests_count(VIP) == 2
        assert [r.path for r in sim.requests] == [
            "/v1/models",
            CHAT,
            CHAT,
            EMBEDDINGS,
            MESSAGES,
            CHAT,
        ]

        mine = sim.calls(TOKEN)
        assert [(c.path, c.status, c.model) for c in mine] == [(CHAT, 200, "gpt-4o")] * 2
        assert mine[0].body == chat_body("gpt-4o")
        assert [c.at for c in sim.calls()] == sorted(c.at for c in sim.calls())
        assert [(c.path, c.status) for c in sim.calls(VIP)] == [(EMBEDDINGS, 200), (MESSAGES, 503)]
        assert sim.calls("sk-nobody")[0].body is None
        assert sim.calls("sk-nobody")[0].status == 401

        sim.reset_requests()
        assert sim.calls() == [] and sim.call_counts() == Counter()


def test_concurrent_calls_are_all_counted(sim: GatewaySimulator) -> None:
    errors: list[BaseException] = []

    def worker(token: str) -> None:
        try:
            with requests.Session() as session:
                for _ in range(15):
                    assert post(session, sim, CHAT, chat_body("gpt-4o"), token).status_code == 200
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in (TOKEN, THIRD) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sim.call_counts() == Counter({(TOKEN, "gpt-4o"): 45, (THIRD, "gpt-4o"): 45})


# -- `model-monitor sim`'s state file -----------------------------------------------------------


def test_the_state_file_sets_verdicts(http: requests.Session) -> None:
    text = (
        '[groups]\ndefault = ["gpt-4o", "gpt-4.1"]\n'
        '[[tokens]]\nname = "a"\nvalue = "sk-state"\n'
        '[verdicts]\ngpt-4o = "no_channel"\n"gpt-4.1" = "unpriced"\n'
    )
    state = parse_state(text)
    assert state.verdicts == {"gpt-4o": "no_channel", "gpt-4.1": "unpriced"}
    with GatewaySimulator() as sim:
        apply(sim, state)
        assert post(http, sim, CHAT, chat_body("gpt-4o"), "sk-state").status_code == 503
        assert post(http, sim, CHAT, chat_body("gpt-4.1"), "sk-state").status_code == 400
        # Saved again without the table: the verdicts are gone.
        apply(sim, parse_state(text.split("[verdicts]")[0]))
        assert post(http, sim, CHAT, chat_body("gpt-4o"), "sk-state").status_code == 200


@pytest.mark.parametrize(
    "table",
    ['[verdicts]\ngpt-4o = "broken"', "[verdicts]\ngpt-4o = 1", '[verdicts]\ngpt-4.1 = "ok"'],
)
def test_state_file_verdict_mistakes_name_the_place(table: str) -> None:
    with pytest.raises(StateError, match=r"^sim\.toml: \[verdicts\] maps model ids to one of"):
        parse_state(table, "sim.toml")
