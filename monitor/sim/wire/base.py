"""What a wire format is, and the canonical model every format renders.

The simulator keeps one list of canonical models per token or group (`make_model`
dicts). A `WireFormat` turns that list into one provider's bytes: which paths it
serves, where the credential is, how a page is cut, what an error looks like. Keeping
the formats apart from the HTTP plumbing lets a new provider be one small module, and
lets the same models come out of every format, so a test can compare clients.

Formats are called on the server's handler threads: they must not keep per-request
state on `self` (options set by a test, such as LiteLLM's `connected_db`, are fine).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from random import Random
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

# new-api and one-api report this constant `created` for every model; it is also the
# default `created` of a canonical model.
CREATED = 1626777600

JSON = "application/json; charset=utf-8"

# Keys a canonical model may carry besides new-api's own (`id`, `object`, `created`,
# `owned_by`, `supported_endpoint_types`). Each format renders the ones it has.
EXTRA_KEYS = frozenset(
    {
        "display_name",
        "context_window",
        "max_output_tokens",
        "created",
        "capabilities",
        "deprecation_date",
        "retirement_date",
        "generation_methods",
        "version",
        "pricing",
        "input_modalities",
        "output_modalities",
        "supported_parameters",
        "expiration_date",
        "top_provider",
        "mode",
        "description",
        # Not in every provider's vocabulary, but needed to play some of them.
        "lifecycle",  # Anthropic: active, deprecated, retired
        "canonical_slug",  # OpenRouter
        "tokenizer",  # OpenRouter's architecture.tokenizer
    }
)
# What new-api must never show: everything above except `created`, which it has.
NOT_NEW_API = EXTRA_KEYS - {"created"}

_request_ids = itertools.count(1)


def make_model(
    id: str,
    endpoint_types: Iterable[str] | None = ("openai",),
    owned_by: str = "openai",
    **extra: Any,
) -> dict[str, Any]:
    """A canonical model: new-api's wire fields plus the `extra` keys other formats render.

    `endpoint_types=None` leaves out `supported_endpoint_types`, as new-api deployments
    from before mid-2025 do. `extra` takes the keys in `EXTRA_KEYS` (a misspelt key
    raises, instead of silently rendering a default); `created` replaces the constant.
    """
    unknown = sorted(extra.keys() - EXTRA_KEYS)
    if unknown:
        raise TypeError(f"make_model() got unknown extra keys: {', '.join(unknown)}")
    model: dict[str, Any] = {
        "id": id,
        "object": "model",
        "created": extra.pop("created", CREATED),
        "owned_by": owned_by,
    }
    if endpoint_types is not None:
        model["supported_endpoint_types"] = list(endpoint_types)
    model.update(extra)
    return model


def encode(body: bytes | str | Mapping[str, Any] | list[Any]) -> bytes:
    """Compact JSON as gateways send it; bytes and str pass through."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# How Go's encoding/json escapes a string beyond plain JSON: HTML characters and the two
# line separators JavaScript treats as newlines.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def go_float(value: float) -> str:
    """A float as Go's encoding/json writes it: `1` not `1.0`, `1e-7` not `1e-07`.

    Go gateways (new-api, one-api) send the shortest text that reads back as the same
    float, in plain notation between 1e-6 and 1e21; a client must cope with `1` where
    Python would write `1.0`.
    """
    if not math.isfinite(value):
        raise ValueError(f"JSON has no {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}" if sign == "-" else text
    plain = format(Decimal(text), "f")
    return plain.rstrip("0").rstrip(".") if "." in plain else plain


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A number kept as its JSON text, so `"0.0375"` goes out as 0.0375 and never as the
    nearest float's expansion. `go_json` writes the text verbatim."""

    text: str

    def __post_init__(self) -> None:
        if not _JSON_NUMBER.fullmatch(self.text):
            raise ValueError(f"not a JSON number: {self.text!r}")

    @classmethod
    def of(cls, value: JsonNumber | int | float | Decimal | str) -> JsonNumber:
        """Ints and Decimals as written, floats as Go writes them, strings verbatim."""
        if isinstance(value, JsonNumber):
            return value
        if isinstance(value, bool):
            raise TypeError(f"a number, not {value!r}")
        if isinstance(value, int | Decimal):
            return cls(str(value))
        if isinstance(value, float):
            return cls(go_float(value))
        if isinstance(value, str):
            return cls(value.strip())
        raise TypeError(f"a number, not {type(value).__name__}")


def go_json(value: Any) -> bytes:
    """Compact JSON as a Go gateway's encoding/json writes it.

    Floats go through `go_float`, `JsonNumber` and `Decimal` text is written as is, and
    strings escape `<`, `>` and `&` as Go does. Mappings keep their order: a caller
    sorts the keys of what Go held as a map and keeps struct fields in declared order.
    """
    out: list[str] = []
    _write_go(value, out)
    return "".join(out).encode()


def _write_go(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, JsonNumber):
        out.append(value.text)
    elif isinstance(value, int | float | Decimal):
        out.append(JsonNumber.of(value).text)
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            _write_go(str(key), out)
            out.append(":")
            _write_go(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write_go(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def fingerprint(token: str) -> str:
    """How the request log names a token: never by its value."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def request_id() -> str:
    """An id in new-api's style; every error of a gateway carries one."""
    return f"{time.strftime('%Y%m%d%H%M%S')}{next(_request_ids):08d}"


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 529 and other non-standard codes
        return ""


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; nothing else authenticates."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def rfc3339(value: int | float | str) -> str:
    """A unix time or an ISO date as the RFC 3339 UTC timestamp APIs send."""
    if isinstance(value, str):
        return value if "T" in value else f"{value}T00:00:00Z"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def newest_first(models: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The stable order of APIs that page: release date, newest first, then id."""
    return sorted(models, key=lambda m: (-int(m.get("created", CREATED)), m["id"]))


def output_modalities(model: Mapping[str, Any]) -> list[str]:
    """What a model produces: given, or guessed from its endpoint types."""
    given = model.get("output_modalities")
    if given is not None:
        return list(given)
    types = set(model.get("supported_endpoint_types") or ())
    if "image-generation" in types:
        return ["image"]
    if types and types <= {"embeddings", "jina-rerank"}:
        return ["embeddings"]
    return ["text"]


def gateway_error(message: str, type: str, code: str = "") -> dict[str, Any]:
    """new-api's error body, which one-api and many OpenAI-compatible gateways share."""
    return {"error": {"message": message, "type": type, "code": code}}


# -- what a format sees and returns --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One request as a format needs it: path, query and headers (names lower-cased)."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]

    @classmethod
    def parse(cls, method: str, target: str, headers: Iterable[tuple[str, str]]) -> WireRequest:
        parts = urlsplit(target)
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        return cls(
            method=method,
            path=parts.path,
            query={name: tuple(values) for name, values in query.items()},
            headers={name.lower(): value for name, value in headers},
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None


class WireResponse(NamedTuple):
    status: int
    body: bytes
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, body: Mapping[str, Any] | bytes, **kwargs: Any) -> WireResponse:
    return WireResponse(status, encode(body), **kwargs)


P = TypeVar("P")


class ModelSet:
    """An immutable list of canonical models plus each format's pre-encoded form.

    Encoding each model once and only shuffling, slicing and joining bytes per request
    is what keeps a 1,000-model answer cheap enough for benchmarks.
    """

    def __init__(self, models: Iterable[Mapping[str, Any] | str]) -> None:
        items: list[dict[str, Any]] = []
        for model in models:
            item = make_model(model) if isinstance(model, str) else dict(model)
            if not isinstance(item.get("id"), str):
                raise ValueError(f"a model needs a string id: {item!r}")
            items.append(item)
        self.models: tuple[dict[str, Any], ...] = tuple(items)
        # Filled lazily; two threads may both compute an entry, with equal results.
        self._prepared: dict[str, Any] = {}

    def prepared(self, wire: WireFormat[P]) -> P:
        cached = self._prepared.get(wire.name)
        if cached is None:
            cached = wire.prepare(self.models)
            self._prepared[wire.name] = cached
        return cached


EMPTY = ModelSet(())


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as the simulator's token registry sees it.

    `token` is the credential as the format read it (None: none sent). `models` is what
    the caller may see: its token's models, or for an unknown token the "default"
    group, which is what formats without auth (OpenRouter, Ollama) serve to anyone.

    The account fields are new-api's token row in quota units: `expires_at` is Unix
    seconds or -1 for never (the table's value; the usage route sends 0 for it).
    `default_models` is the "default" group whoever asks, for public pages such as
    new-api's pricing.
    """

    token: str | None
    known: bool
    expired: bool
    exhausted: bool
    models: ModelSet
    expires_at: int = -1
    total_available: int = 0
    total_granted: int = 0
    total_used: int = 0
    unlimited: bool = False
    default_models: ModelSet = EMPTY

    @property
    def refused(self) -> bool:
        return self.expired or self.exhausted

    @property
    def usable(self) -> bool:
        return self.known and not self.refused


class WireFormat(ABC, Generic[P]):
    """One provider's models API. `P` is the format's pre-encoded form of a model list.

    The simulator calls `token` to know who asks (for the request log, token-scoped
    faults and the token's models), then `respond`. The default `respond` serves
    `models_paths` and 404s elsewhere, after `refuse` had its say on auth and headers.
    `error` renders `Fault.http` in this format's error shape.
    """

    name: ClassVar[str]
    # What follows host:port in the base URL a client configures.
    base_path: ClassVar[str] = "/v1"
    # The routes that list models: the only ones faults apply to.
    models_paths: ClassVar[frozenset[str]] = frozenset({"/v1/models"})
    # The routes behind the gateway's strict per-address limiter (new-api's "critical"
    # one); the simulator counts them with `GatewaySimulator.set_usage_limit`.
    limited_paths: ClassVar[frozenset[str]] = frozenset()

    def token(self, request: WireRequest) -> str | None:
        return bearer(request.header("Authorization"))

    def respond(self, request: WireRequest, caller: Caller, rng: Random) -> WireResponse:
        if request.path not in self.models_paths:
            return self.not_found(request)
        refusal = self.refuse(request, caller)
        if refusal is not None:
            return refusal
        return self.list_response(request, caller.models.prepared(self), rng)

    def refuse(self, request: WireRequest, caller: Caller) -> WireResponse | None:
        """The answer to a request that may not list models; None lets it through."""
        return None if caller.usable else self.unauthorized(request, caller)

    @abstractmethod
    def prepare(self, models: Sequence[Mapping[str, Any]]) -> P:
        """Encode a model list once, for many requests."""

    @abstractmethod
    def list_response(self, request: WireRequest, prepared: P, rng: Random) -> WireResponse:
        """One page of the list. `rng` is this request's own, seeded by the simulator."""

    @abstractmethod
    def error(self, status: int, message: str, code: str = "") -> WireResponse:
        """An error in this format's shape (what `Fault.http` sends)."""

    def unauthorized(self, request: WireRequest, caller: Caller) -> WireResponse:
        return self.error(401, "Unauthorized")

    def not_found(self, request: WireRequest) -> WireResponse:
        return self.error(404, f"Invalid URL ({request.method} {request.path})")

    def too_many_requests(self) -> WireResponse:
        """What the limiter of `limited_paths` sends: new-api's is a bare 429, no body."""
        return WireResponse(429, b"", None)

    def default_message(self, status: int) -> str:
        """The message of a `Fault.http` given none."""
        return phrase(status) or "error"


def parse_int(value: str | None) -> int | None:
    """A query integer, or None when absent or not an integer."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
