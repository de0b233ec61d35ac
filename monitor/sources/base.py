"""What a flavor is: how to ask a source for its models list, and how to read the answer.

A flavor knows a wire format and nothing about sockets: `monitor.sources.fetch` makes
the requests, enforces the deadline and the size cap, and classifies failures. Keeping
the two apart lets the normalization be tested on plain dicts, and lets paginating
flavors (Anthropic's `after_id`, Gemini's `pageToken`) reuse the same walk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import ErrorKind, ModelRecord
from monitor.sources.budget import BudgetRoute
from monitor.sources.interning import RecordTable
from monitor.sources.side_routes import PriceRoute, ProbeAuth


@dataclass(frozen=True, slots=True)
class Request:
    """One GET of a walk.

    Header values that carry a credential are `Secret`s, so a Request can be logged,
    compared or put in an exception without leaking the token; only the fetcher
    reveals them, at the moment of sending. `params` is the query string, kept apart
    from `url` so a next-page request is just new params.
    """

    url: str
    headers: tuple[tuple[str, str | Secret], ...] = field(default=(), repr=False)
    params: tuple[tuple[str, str], ...] = ()

    def wire_headers(self) -> dict[str, str]:
        """The headers as sent, secrets revealed. Never log the result."""
        return {
            name: value.reveal() if isinstance(value, Secret) else value
            for name, value in self.headers
        }

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What identifies the page asked for: the same key twice is a pagination loop."""
        return self.url, self.params


@dataclass(frozen=True, slots=True)
class Page:
    """The models of one response and, when the list continues, the request for the rest.

    `index` is set by the fetcher on a one-page list it caches for other tokens: the
    models by id, read-only, so every token that gets the page shares one mapping.
    """

    models: list[ModelRecord]
    next: Request | None = None
    index: Mapping[str, ModelRecord] | None = field(default=None, compare=False)


class InvalidResponse(Exception):
    """The body is not a complete, valid models list.

    The message says what is wrong in words an operator understands. It may quote
    the remote body; the fetcher sanitizes it before it goes anywhere.
    """


class Flavor(ABC):
    """A wire format: the request to make, how to parse pages, how to read error bodies.

    The fetcher creates one per check (`create`); between checks a flavor keeps nothing
    of its own, only what it is handed (the caches' `RecordTable`).
    """

    name: ClassVar[str]
    # A walk that has not ended after this many pages is treated as a loop.
    max_pages: ClassVar[int] = 1000
    # The key of the one list of a single-page answer whose order means nothing and
    # changes between requests (new-api's "data"): the fetcher then recognises a list
    # it parsed before in any order (`monitor.sources.reordered`). Only for flavors
    # whose `parse` depends on the body alone and not on the order of that list.
    unordered_list: ClassVar[str | None] = None
    # Where the gateway tells a token's quota and expiry (monitor.sources.budget); None:
    # it does not, and budgets are not read.
    budget_route: ClassVar[BudgetRoute | None] = None
    # Where the gateway publishes its prices (monitor.sources.pricing); None: it does not.
    price_route: ClassVar[PriceRoute | None] = None
    # How a probe (monitor.sources.probes) sends the token: "bearer" (OpenAI's routes, and
    # new-api's Anthropic route), "x-api-key" (Anthropic's API); None: not probed.
    probe_auth: ClassVar[ProbeAuth | None] = None

    @classmethod
    def create(cls, registry: Mapping[str, type[Flavor]], records: RecordTable) -> Flavor:
        """A new instance for one check. `registry` holds every registered flavor, for a
        flavor that delegates to another (auto); `records` is the owner's table of
        interned records, for a flavor that interns them (new-api)."""
        return cls()

    @property
    def chosen(self) -> str:
        """The flavor the check was read as, reported with it (auto names its choice)."""
        return self.name

    @classmethod
    def explain_auth(
        cls, source: SourceConfig, token: TokenConfig, settings: MonitorSettings
    ) -> str | None:
        """Why the gateway refused `token` (a 401), when it can say: expired, no quota.
        Called once per failing spell, after the refusal; None when there is no way to ask."""
        return None

    @abstractmethod
    def first_request(self, base_url: str, secret: Secret) -> Request:
        """The request for the first page. `base_url` is the source's, e.g. ".../v1"."""

    @abstractmethod
    def parse(self, body: object, request: Request) -> Page:
        """Normalize one decoded JSON body, or raise InvalidResponse.

        Must raise InvalidResponse (and nothing else) for any body that is not a
        complete, valid page: a partial list must never become a snapshot.
        """

    def caches_pages(self) -> bool:
        """Whether the fetcher keeps parsed pages to reuse for identical bodies
        (`monitor.sources.caches`).

        Only when `parse` depends on (body, request) alone, and identical bodies are
        common. A flavor that keeps state between pages must say False while that
        state matters. A next-page request must carry the headers of the request it
        follows (a reused page gets the current ones).
        """
        return True

    def error_kind(self, status: int, body: object) -> ErrorKind | None:
        """The kind of a non-2xx answer when the flavor knows better than its status.

        `body` is the decoded JSON error body, or None when there is none (empty, not
        JSON, an HTML page, or cut at the error-body limit). Return None to keep the
        classification by status (401 auth, 403 forbidden, 429 rate limited, 5xx
        server, other 4xx client error). Gemini overrides this: it answers an invalid
        key with HTTP 400 and reason API_KEY_INVALID, which is an auth failure.
        """
        return None

    def error_message(self, body: object) -> str | None:
        """A human message from an error body, or None when there is none.

        Understands the common shapes: OpenAI-style `{"error": {"message": ...}}`
        (also Anthropic's and Gemini's, which nest the same way), `{"error": "..."}`
        (vLLM, Ollama) and new-api's `{"success": false, "message": ...}`.
        """
        if isinstance(body, list) and body:
            body = body[0]  # Google APIs sometimes wrap the status object in a list
        if not isinstance(body, Mapping):
            return None
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            if isinstance(message, str) and message.strip():
                return message
            for key in ("type", "code", "status"):
                value = error.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                    return str(value)
        elif isinstance(error, str) and error.strip():
            return error
        message = body.get("message")
        if isinstance(message, str) and message.strip():
            return message
        return None


def json_type(value: Any) -> str:
    """A JSON type in words, for messages such as "data is an object, not a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


FieldSpec = tuple[tuple[str, str, type], ...]  # (wire key, field name, int or str)


def typed_fields(model_id: str, item: Mapping[str, Any], spec: FieldSpec) -> dict[str, Any]:
    """The fields `spec` names, type-checked: a wrong type fails the whole check.

    Several wire keys may feed one field (an API renamed a key); the first present wins.
    """
    fields: dict[str, Any] = {}
    for wire, name, kind in spec:
        value = item.get(wire)
        if value is None or name in fields:
            continue
        if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidResponse(
                f"model {model_id!r}: {wire} is {json_type(value)}, not an integer"
            )
        if kind is str and not isinstance(value, str):
            raise InvalidResponse(f"model {model_id!r}: {wire} is {json_type(value)}, not a string")
        fields[name] = value
    return fields
