"""One probe: the cheapest real call a listed model allows, and what its answer means.

new-api lists models whose channels are enabled but failing, and routes from a cache
that lags its list by up to a minute; one-api lists a token's whitelist as it is. Only a
call tells whether a listed model answers. The call is the smallest there is: chat
completions with `max_tokens` 1 (`max_completion_tokens` for the o-series and GPT-5,
which refuse the other), embeddings of one character, Anthropic messages with
`max_tokens` 1. Models priced per call and image, video, audio and rerank models are not
called unless a source names them (`probe_models`). docs/probes.md says what it costs.

The answer is classified by status and error code, never by message (new-api translates
its messages); `monitor.events.probes` turns the classes into verdicts.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from monitor.config import SourceConfig, TokenConfig
from monitor.core.records import CallError, ModelRecord
from monitor.events.probes import Outcome, ProbeResult
from monitor.sources.anthropic import ANTHROPIC_VERSION
from monitor.sources.fetch import sanitize, secret_forms
from monitor.sources.side_routes import ProbeAuth
from monitor.transport.connections import GET_HEADERS, POOLS, read_reply
from monitor.transport.deadline import within

CallKind = Literal["chat", "embeddings", "messages"]

# new-api's endpoint types a probe goes through, in order of preference.
_ROUTES: tuple[tuple[str, CallKind], ...] = (
    ("openai", "chat"),
    ("anthropic", "messages"),
    ("embeddings", "embeddings"),
)
# Words in an endpoint type, a LiteLLM `mode` or a model id that mark a model no small
# text call reaches: it makes pictures, video or sound, or ranks documents.
_MEDIA = ("image", "video", "audio", "speech", "rerank", "transcri", "tts", "moderation")
_MEDIA_IDS = ("dall-e*", "gpt-image*", "sora*", "whisper*", "*-tts*", "tts-*", "midjourney*")
# Models that refuse `max_tokens` and want `max_completion_tokens` (OpenAI's reasoning
# models); a refusal naming the parameter is retried with the other one anyway.
_COMPLETION_TOKENS = re.compile(r"^(o\d|gpt-5)")
# new-api ends each message with its request id, which differs on every call.
# (Also in full-width parentheses, as its Chinese messages write them.)
_REQUEST_ID = re.compile(r"\s*[(\uff08]\s*request id:?[^)\uff09]*[)\uff09]", re.IGNORECASE)

_BODY_LIMIT = 64 * 1024


def call_kind(record: ModelRecord, auth: ProbeAuth, *, named: bool = False) -> CallKind | None:
    """The request that probes `record`, or None when it is not probed. `named`: the
    source lists it in `probe_models`, so it is probed even where it would be skipped."""
    if auth == "x-api-key":
        return "messages"
    types = record.endpoint_types
    if types:
        if not named and any(_is_media(kind) for kind in types):
            return None
        for kind, call in _ROUTES:
            if kind in types:
                return call
        # Only routes a small call does not use (responses, gemini, images): a chat
        # completion could fail for that reason alone, and say nothing true.
        return "chat" if named else None
    mode = record.field_map().get("mode")  # LiteLLM says what a model is for
    if isinstance(mode, str):
        if mode == "embedding":
            return "embeddings"
        if mode not in ("chat", "completion", "responses") and not named:
            return None
        return "chat"
    model = record.id.rsplit("/", 1)[-1].lower()
    if not named and (
        any(fnmatch.fnmatchcase(model, glob) for glob in _MEDIA_IDS)
        or any(word in model for word in _MEDIA)
    ):
        return None
    return "embeddings" if "embed" in model else "chat"


def _is_media(endpoint_type: str) -> bool:
    kind = endpoint_type.lower()
    return any(word in kind for word in _MEDIA)


def named(model: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(model, glob) for glob in globs)


def wants_completion_tokens(model: str) -> bool:
    return bool(_COMPLETION_TOKENS.match(model.rsplit("/", 1)[-1].lower()))


def request_body(kind: CallKind, model: str, *, completion_tokens: bool | None = None) -> bytes:
    """The JSON body of the smallest call of `kind` to `model`."""
    if kind == "embeddings":
        body: dict[str, Any] = {"model": model, "input": "a"}
    elif kind == "messages":
        body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "a"}]}
    else:
        if completion_tokens is None:
            completion_tokens = wants_completion_tokens(model)
        limit = "max_completion_tokens" if completion_tokens else "max_tokens"
        body = {"model": model, "messages": [{"role": "user", "content": "a"}], limit: 1}
    return json.dumps(body, separators=(",", ":")).encode()


_PATHS: Mapping[CallKind, str] = {
    "chat": "/chat/completions",
    "embeddings": "/embeddings",
    "messages": "/messages",
}


def send_probe(
    source: SourceConfig,
    token: TokenConfig,
    model: str,
    kind: CallKind,
    auth: ProbeAuth,
    timeout: float,
) -> ProbeResult:
    """Call `model` once as `token` (twice when the first call is refused for naming the
    wrong token limit) and classify the answer; any failure is this probe's alone."""
    started = time.monotonic()
    first = wants_completion_tokens(model)
    result = _call(source, token, model, kind, auth, timeout, first)
    if kind == "chat" and _wrong_limit(result):
        result = _call(source, token, model, kind, auth, timeout, not first)
    return replace(result, duration=time.monotonic() - started)


def _wrong_limit(result: ProbeResult) -> bool:
    error = result.error
    return (
        result.outcome is Outcome.INCONCLUSIVE
        and error is not None
        and error.status == 400
        and error.code == "unsupported_parameter"
    )


def _call(
    source: SourceConfig,
    token: TokenConfig,
    model: str,
    kind: CallKind,
    auth: ProbeAuth,
    timeout: float,
    completion_tokens: bool,
) -> ProbeResult:
    secret = token.secret.reveal()
    headers = {**GET_HEADERS, "Content-Type": "application/json"}
    if auth == "x-api-key":
        headers["x-api-key"] = secret
    else:
        headers["Authorization"] = f"Bearer {secret}"
    if kind == "messages":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    url = source.base_url.rstrip("/") + _PATHS[kind]
    body = request_body(kind, model, completion_tokens=completion_tokens)
    deadline = None
    try:
        with within(timeout) as deadline:
            response = POOLS.post(
                url, headers, body, timeout=timeout, verify=source.ca_bundle or source.verify_tls
            )
            reply = read_reply(response, _BODY_LIMIT)
    except Exception as exc:
        expired = deadline is not None and deadline.expired
        what = "no answer in time" if expired else f"no answer ({type(exc).__name__})"
        return ProbeResult(Outcome.TRANSIENT, CallError(None, None, what), kind)
    if deadline.expired:
        return ProbeResult(Outcome.TRANSIENT, CallError(None, None, "no answer in time"), kind)
    return classify(
        reply.status,
        reply.body,
        secrets=secret_forms(secret),
        retry_after=reply.retry_after,
        kind=kind,
    )


def classify(
    status: int,
    body: bytes,
    *,
    secrets: Iterable[str] = (),
    retry_after: float | None = None,
    kind: str = "",
) -> ProbeResult:
    """What an answer says about the model (docs/probes.md, "What an answer means")."""
    if 200 <= status < 300:
        return ProbeResult(Outcome.OK, kind=kind, status=status)
    code, message = _error_of(body)
    message = sanitize(_REQUEST_ID.sub("", message), secrets) if message else ""
    relayed = code == _RELAY_TYPE
    error = CallError(status, None if relayed else code, message)
    if status == 429:
        outcome = Outcome.RATE_LIMITED
    elif status == 401:
        outcome = Outcome.AUTH
    elif code == "pre_consume_token_quota_failed" or (relayed and status == 403):
        # new-api's relay answers its Anthropic route in Anthropic's shape, which has no
        # code; its one 403 there is the quota pre-charge (no access to a model is refused
        # earlier, with a code, in OpenAI's shape on every route).
        outcome = Outcome.TOKEN_QUOTA
    elif code in ("model_not_found", "model_price_error", "not_found_error") or status == 403:
        outcome = Outcome.UNAVAILABLE
    elif status >= 500:
        outcome = Outcome.TRANSIENT
    else:
        outcome = Outcome.INCONCLUSIVE
    return ProbeResult(outcome, error, kind, retry_after, status=status)


# The error type new-api's relay gives its own errors in Anthropic's shape.
_RELAY_TYPE = "new_api_error"


def _error_of(body: bytes) -> tuple[str | None, str]:
    """(code, message) of an error body in OpenAI's, Anthropic's or new-api's shape."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if isinstance(error, str):
        return None, error
    if not isinstance(error, dict):
        message = data.get("message")
        return None, message if isinstance(message, str) else ""
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, str | int) or code == "":
        code = error.get("type") if data.get("type") == "error" else None  # Anthropic's
    message = error.get("message")
    return (
        None if code is None or code == "" else str(code),
        message if isinstance(message, str) else "",
    )
