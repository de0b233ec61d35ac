"""How the gateway simulator answers a probe's calls, the way new-api does.

A probe learns whether a listed model is actually callable by sending the cheapest real
request: chat completions or Anthropic messages with `max_tokens` 1, embeddings of one
character. new-api checks such a call in a fixed order, and each step fails its own way,
so this module follows the same order:

1. the token: 401 "Invalid token" (`Authorization: Bearer`, or `x-api-key` on
   `/v1/messages`);
2. the body: JSON with a `model`, else 400;
3. the rate limiter: a bare 429 with no body;
4. the token's model limits: 403 "This token has no access to model X";
5. a channel for the model in the token's group: 503 `model_not_found`;
6. the request's own fields: 400 (chat needs `messages`, embeddings `input`);
7. the model's price: 400 `model_price_error`;
8. the token's quota: 403 `pre_consume_token_quota_failed`;
9. the upstream call: 502 `bad_response_status_code`, or the provider's 400 for a
   parameter it refuses (o-series models refuse `max_tokens`, Anthropic requires it).

Steps 1 to 5 are new-api's middleware and answer in the OpenAI error shape on every
route. From step 6 on, an error on `/v1/messages` comes in Anthropic's shape
(`{"type":"error","error":{"type":...,"message":...}}`), where new-api's own errors keep
their type and lose their code: a probe must not rely on the code there. Every error
message ends with " (request id: ...)", different per request.

A test forces a step's failure per model with a verdict (`VERDICTS`). Without one, a
model the token sees in its models list answers 200; any other answers 503, or 403 when
the token has its own allow-list (new-api's model limits are checked first).

Calls are answered in new-api's shapes whatever the simulator's `flavor`: probes call
gateways, and one set of shapes keeps the verdicts comparable across formats.
"""

from __future__ import annotations

import io
import json
import random
import re
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

from monitor.sim.wire.base import (
    ModelSet,
    WireRequest,
    WireResponse,
    bearer,
    gateway_error,
    json_response,
    request_id,
)
from monitor.sim.wire.one_api import QUOTA_PER_UNIT

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MESSAGES_PATH = "/v1/messages"
CALL_PATHS = frozenset({CHAT_PATH, EMBEDDINGS_PATH, MESSAGES_PATH})

VERDICTS = frozenset(
    {"ok", "no_channel", "unpriced", "forbidden", "quota", "rate_limited", "upstream_error", "slow"}
)
# A probe's body is tiny; the cap only keeps a runaway client from filling memory.
MAX_BODY = 1 << 20
DEFAULT_SLOW_SECONDS = 5.0

# OpenAI's reasoning models, which take only `max_completion_tokens`.
_O_SERIES = re.compile(r"o[134](?:-|$)")
_ID_CHARS = string.ascii_letters + string.digits
_NEW_API = "new_api_error"
# new-api writes amounts of quota with a full-width dollar sign.
_DOLLAR = "\uff04"


class CallRecord(NamedTuple):
    """One call, logged when its answer was decided (before a slow verdict's wait).

    `token` is the credential's value as sent (None: none sent), `model` the body's
    `model` (None: missing or not a string), `body` the decoded JSON body (None: not
    JSON), `at` the simulator's `usage_clock` on arrival.
    """

    token: str | None
    model: str | None
    path: str
    status: int
    body: Any
    at: float


@dataclass(frozen=True, slots=True)
class CallAccount:
    """The calling token as the simulator's registry holds it, read under its lock."""

    token: str | None
    usable: bool  # known, not expired, not exhausted
    group: str
    models: ModelSet  # what its models list shows
    limited: bool  # `models` is its own allow-list: new-api's model limits
    available: int  # quota units left

    def sees(self, model: str) -> bool:
        return any(m["id"] == model for m in self.models.models)


class CallAnswer(NamedTuple):
    response: WireResponse
    delay: float = 0.0  # seconds to wait before sending (the "slow" verdict)


def call_token(request: WireRequest) -> str | None:
    """The token as new-api reads it: `x-api-key` wins on the Anthropic route only."""
    if request.path == MESSAGES_PATH and request.header("x-api-key"):
        return request.header("x-api-key")
    return bearer(request.header("Authorization"))


def read_body(request: WireRequest, rfile: io.BufferedIOBase) -> bytes | WireResponse:
    """The body by its Content-Length, or the answer refusing it.

    After a refusal the body is still unread, so the caller must close the connection.
    A chunked body is refused with 411: probes and HTTP clients send a length for JSON.
    """
    if request.header("Transfer-Encoding"):
        return _middleware_error(411, "a request body needs a Content-Length")
    try:
        length = int(request.header("Content-Length") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return _middleware_error(400, "invalid Content-Length")
    if length > MAX_BODY:
        return _middleware_error(413, "request body too large", "read_request_body_failed")
    return rfile.read(length)


class CallDesk:
    """The verdicts tests set, the call log and the answers.

    Thread-safe: handler threads answer and log while the test thread sets verdicts.
    Verdicts are kept per (token value, model); a token's own verdict wins over the
    one for every token (key None).
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[tuple[str | None, str], str] = {}
        self._log: list[CallRecord] = []
        # Its own generator, so calls do not change the models lists' shuffles.
        self._rng = random.Random(seed)
        self._slow_seconds = DEFAULT_SLOW_SECONDS
        self._retry_after: float | None = None

    def set_verdict(self, model: str, verdict: str | None, token: str | None = None) -> None:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(
                f"verdict must be one of {', '.join(sorted(VERDICTS))}, not {verdict!r}"
            )
        with self._lock:
            if verdict is None:
                self._verdicts.pop((token, model), None)
            else:
                self._verdicts[(token, model)] = verdict

    def clear_verdicts(self) -> None:
        with self._lock:
            self._verdicts.clear()

    def set_slow_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._slow_seconds = float(seconds)

    def set_retry_after(self, seconds: float | None) -> None:
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._retry_after = seconds

    def records(self, token: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [r for r in self._log if token is None or r.token == token]

    def counts(self) -> Counter[tuple[str | None, str | None]]:
        with self._lock:
            return Counter((r.token, r.model) for r in self._log)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()

    def answer(
        self, request: WireRequest, raw: bytes, account: CallAccount, now: float
    ) -> CallAnswer:
        """Answer one call and log it."""
        body = _decode(raw)
        model = body.get("model") if isinstance(body, dict) else None
        model = model if isinstance(model, str) and model else None
        with self._lock:
            verdict = None
            if model is not None:
                verdict = self._verdicts.get((account.token, model)) or self._verdicts.get(
                    (None, model)
                )
            seed = self._rng.getrandbits(64)
            slow, retry_after = self._slow_seconds, self._retry_after
        call = _Call(request.path, body, model, account, random.Random(seed))
        answer = call.answer(verdict, slow, retry_after)
        record = CallRecord(account.token, model, request.path, answer.response.status, body, now)
        with self._lock:
            self._log.append(record)
        return answer


@dataclass(frozen=True, slots=True)
class _Call:
    path: str
    body: Any
    model: str | None
    account: CallAccount
    rng: random.Random

    def answer(self, verdict: str | None, slow: float, retry_after: float | None) -> CallAnswer:
        """The checks in new-api's order (see the module docstring)."""
        account, model = self.account, self.model
        if not account.usable:
            return CallAnswer(_middleware_error(401, "Invalid token"))
        if not isinstance(self.body, dict):
            return CallAnswer(
                _middleware_error(400, "Invalid request, the body is not a JSON object")
            )
        if model is None:
            return CallAnswer(_middleware_error(400, "model is required"))
        if verdict == "rate_limited":
            headers = () if retry_after is None else (("Retry-After", _seconds(retry_after)),)
            return CallAnswer(WireResponse(429, b"", None, headers))
        if verdict == "forbidden" or (
            verdict is None and account.limited and not account.sees(model)
        ):
            return CallAnswer(_middleware_error(403, f"This token has no access to model {model}"))
        if verdict == "no_channel" or (verdict is None and not account.sees(model)):
            message = (
                f"No available channel for model {model} under group {account.group} (distributor)"
            )
            return CallAnswer(_middleware_error(503, message, "model_not_found"))
        invalid = self._invalid()
        if invalid is not None:
            return CallAnswer(self._relay_error(400, invalid, "invalid_request"))
        if verdict == "unpriced":
            message = (
                f"模型 {model} 倍率或价格未配置\uff0c请联系管理员设置或开始自用模式\uff1b"
                f"Model {model} ratio or price not set, please set or start self-use mode"
            )
            return CallAnswer(self._relay_error(400, message, "model_price_error"))
        if verdict == "quota":
            remain = account.available / QUOTA_PER_UNIT
            message = (
                f"token quota is not enough, token remain quota: {_DOLLAR}{remain:.6f}, "
                f"need quota: {_DOLLAR}{max(remain, 0) + 0.002:.6f}"
            )
            return CallAnswer(self._relay_error(403, message, "pre_consume_token_quota_failed"))
        if verdict == "upstream_error":
            return CallAnswer(
                self._relay_error(
                    502,
                    "bad response status code 502",
                    "bad_response_status_code",
                    "upstream_error",
                )
            )
        refused = self._upstream_refusal(model)
        if refused is not None:
            return CallAnswer(refused)
        return CallAnswer(self._success(), slow if verdict == "slow" else 0.0)

    def _invalid(self) -> str | None:
        """new-api's own check of the request's fields (step 6)."""
        body = self.body
        if self.path == EMBEDDINGS_PATH:
            return "input is empty" if body.get("input") is None else None
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "field messages is required"
        return None

    def _upstream_refusal(self, model: str) -> WireResponse | None:
        """What the provider refuses, passed on by new-api (step 9)."""
        body = self.body
        if self.path == CHAT_PATH and _O_SERIES.match(model) and body.get("max_tokens") is not None:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return _openai_error(
                400,
                message,
                type="invalid_request_error",
                code="unsupported_parameter",
                param="max_tokens",
            )
        if self.path == MESSAGES_PATH and body.get("max_tokens") is None:
            return _anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
        return None

    def _relay_error(
        self, status: int, message: str, code: str, type: str = _NEW_API
    ) -> WireResponse:
        """An error of new-api's relay: Anthropic's shape on its route, where the code is
        lost (an upstream error's code becomes its type), else OpenAI's."""
        if self.path == MESSAGES_PATH:
            return _anthropic_error(status, type if type == _NEW_API else code, message)
        return _openai_error(status, message, type=type, code=code)

    def _success(self) -> WireResponse:
        body, model, rng = self.body, self.model, self.rng
        prompt = _estimate_tokens(body.get("input" if self.path == EMBEDDINGS_PATH else "messages"))
        if self.path == EMBEDDINGS_PATH:
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": [round(rng.uniform(-0.1, 0.1), 6) for _ in range(8)],
                }
                for i in range(max(len(inputs), 1))
            ]
            usage = {"prompt_tokens": prompt, "total_tokens": prompt}
            return json_response(
                200, {"object": "list", "data": data, "model": model, "usage": usage}
            )
        if self.path == MESSAGES_PATH:
            return json_response(
                200,
                {
                    "id": "msg_01" + _random_id(rng, 22),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": "H"}],
                    "stop_reason": "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": 1},
                },
            )
        return json_response(
            200,
            {
                "id": "chatcmpl-" + _random_id(rng, 29),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "H"},
                        "finish_reason": "length",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": 1,
                    "total_tokens": prompt + 1,
                },
            },
        )


def _decode(raw: bytes) -> Any:
    """The JSON body, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _with_id(message: str) -> str:
    return f"{message} (request id: {request_id()})"


def _middleware_error(status: int, message: str, code: str = "") -> WireResponse:
    """new-api's middleware error (`abortWithOpenAiMessage`), the same on every route."""
    return json_response(status, gateway_error(_with_id(message), _NEW_API, code))


def _openai_error(
    status: int, message: str, *, type: str, code: str, param: str = ""
) -> WireResponse:
    error = {"message": _with_id(message), "type": type, "param": param, "code": code}
    return json_response(status, {"error": error})


def _anthropic_error(status: int, type: str, message: str) -> WireResponse:
    return json_response(
        status, {"type": "error", "error": {"type": type, "message": _with_id(message)}}
    )


def _estimate_tokens(value: Any) -> int:
    """A rough prompt size (a token per 4 characters of JSON), as usage reports need one."""
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


def _random_id(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_ID_CHARS, k=length))


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
