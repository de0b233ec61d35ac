"""Values that flow through the pipeline: what a check saw, and how it differs from before.

Everything here is immutable and free of I/O so the diff and event logic can be tested
without sockets or databases.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from monitor.core.budget import Budget

# A field value as the diff sees it: JSON scalars, or tuples of them (lists are frozen
# into tuples so records stay hashable).
FieldValue = Any


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One model as a flavor normalized it.

    `endpoint_types` is None for flavors that have no such notion (plain OpenAI), and a
    set otherwise: upstream order is meaningless. `fields` holds only what the flavor
    marks as worth diffing, sorted by name; constant or volatile upstream fields
    (new-api's `created`) never get here.
    """

    id: str
    endpoint_types: frozenset[str] | None = None
    fields: tuple[tuple[str, FieldValue], ...] = ()

    @classmethod
    def build(
        cls,
        id: str,
        endpoint_types: Iterable[str] | None = None,
        fields: Mapping[str, FieldValue] | None = None,
    ) -> ModelRecord:
        types = None if endpoint_types is None else frozenset(endpoint_types)
        items = tuple(sorted((k, _freeze(v)) for k, v in (fields or {}).items()))
        return cls(id=id, endpoint_types=types, fields=items)

    def field_map(self) -> dict[str, FieldValue]:
        return dict(self.fields)

    def attributes(self) -> dict[str, Any]:
        """The record without its id, in JSON form (for payloads and storage)."""
        out: dict[str, Any] = {}
        if self.endpoint_types is not None:
            out["endpoint_types"] = sorted(self.endpoint_types)
        for name, value in self.fields:
            out[name] = _thaw(value)
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.endpoint_types is not None:
            out["endpoint_types"] = sorted(self.endpoint_types)
        if self.fields:
            out["fields"] = {name: _thaw(value) for name, value in self.fields}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRecord:
        return cls.build(data["id"], data.get("endpoint_types"), data.get("fields"))


class ValueTooDeep(ValueError):
    """A field value nested deeper than MAX_DEPTH: not a models list anyone writes."""


# Real lists nest a few levels; the bound keeps every recursive walk of a record (freezing,
# thawing, encoding) far from Python's recursion limit.
MAX_DEPTH = 32


def _freeze(value: Any, depth: int = 0) -> FieldValue:
    if isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise ValueTooDeep(f"a field value is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            return tuple(sorted((k, _freeze(v, depth + 1)) for k, v in value.items()))
        return tuple(_freeze(v, depth + 1) for v in value)
    return value


def _thaw(value: FieldValue) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


Models = Mapping[str, ModelRecord]


def number(value: Any) -> Decimal | None:
    """A field value as a number: ints, floats and decimal strings ("0.0000025")."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return (
            None if isinstance(value, float) and not math.isfinite(value) else Decimal(str(value))
        )
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def percent_change(before: Any, after: Any) -> float | None:
    """(after - before) / before in percent, rounded to 0.01; None unless both are numbers,
    `before` is not zero and the result is a finite float."""
    old, new = number(before), number(after)
    if old is None or new is None or old == 0:
        return None
    try:
        percent = float((new - old) / abs(old) * 100)
    except ArithmeticError:  # beyond what a Decimal context holds (1e999999999)
        return None
    # 1e-300 -> 1e300 is a finite move whose percentage is not: JSON has no Infinity.
    return round(percent, 2) if math.isfinite(percent) else None


def canonical_json(models: Models, encodings: Encodings | None = None) -> bytes:
    """The one byte form of a models list: sorted by id, sorted keys, no whitespace.

    Two lists that differ only in upstream order produce the same bytes, hence the
    same content hash, hence one stored snapshot. `encodings` remembers each record's part
    for the next list holding the same record object.
    """
    # json.dumps of a list is "[" + the items' encodings joined by "," + "]".
    if encodings is None:
        parts = [_encode(models[key].to_json()) for key in sorted(models)]
    else:
        parts = [encodings.of(models[key]) for key in sorted(models)]
    return ("[" + ",".join(parts) + "]").encode()


class Encodings:
    """Each record's canonical encoding, by the record object's identity.

    The parsers hand out the same record object for an unchanged model
    (`monitor.sources.interning`), so a cycle that hashes the same list once per token
    encodes each model once. Keyed by identity, never by equality: 1 == 1.0 == True, yet
    they encode differently. The record is kept beside its encoding, so its id cannot be
    reused while the entry lives. Bounded: cleared when it grows past `limit` (a few MB).
    Thread-safe: dict reads and writes are atomic, and a lost write only costs a miss.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._by_id: dict[int, tuple[ModelRecord, str]] = {}

    def of(self, record: ModelRecord) -> str:
        cached = self._by_id.get(id(record))
        if cached is not None and cached[0] is record:
            return cached[1]
        if len(self._by_id) > self.limit:
            self._by_id.clear()
        text = _encode(record.to_json())
        self._by_id[id(record)] = (record, text)
        return text


def _encode(value: Any) -> str:
    return _ENCODER.encode(value)


# json.dumps with these options builds a new encoder on every call; one is enough.
# allow_nan=False: a non-finite number that got this far is refused, never stored.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def content_hash(canonical: bytes) -> str:
    """A snapshot's address: the SHA-256 of its canonical JSON, in hex."""
    return hashlib.sha256(canonical).hexdigest()


def models_from_canonical(data: bytes) -> dict[str, ModelRecord]:
    # Snapshots stored by older versions may hold NaN or Infinity literals: read as
    # their names, as lists are read now, so no output ever carries them.
    rows = json.loads(data, parse_constant=str)
    return {row["id"]: ModelRecord.from_json(row) for row in rows}


class ErrorKind(StrEnum):
    """Why a check failed. Receivers and `status` branch on these, never on messages."""

    AUTH = "auth"  # 401 (and provider equivalents such as Gemini's API_KEY_INVALID)
    FORBIDDEN = "forbidden"  # 403
    RATE_LIMITED = "rate_limited"  # 429
    SERVER = "server"  # 5xx
    CLIENT_ERROR = "client_error"  # any other 4xx, e.g. 404 from a wrong base_url
    NETWORK = "network"  # DNS, refused, reset, TLS
    TIMEOUT = "timeout"
    INVALID_RESPONSE = "invalid_response"  # 2xx but not a complete, valid models list
    TOO_LARGE = "too_large"

    @property
    def immediate(self) -> bool:
        """Credential problems are reported at once; the rest only after a streak."""
        return self in (ErrorKind.AUTH, ErrorKind.FORBIDDEN)


@dataclass(frozen=True, slots=True)
class FetchOk:
    """A complete, valid models list."""

    models: Mapping[str, ModelRecord]
    status: int = 200
    bytes_read: int = 0
    duration: float = 0.0
    flavor: str = ""


@dataclass(frozen=True, slots=True)
class FetchError:
    """A failed check. `message` is already sanitized: short, no control characters, no secret."""

    kind: ErrorKind
    message: str
    status: int | None = None
    retry_after: float | None = None  # seconds, from retry-after-ms / Retry-After
    duration: float = 0.0
    detail: str | None = None  # why, when the source can say (new-api's usage endpoint)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "status": self.status,
            "message": self.message,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


FetchResult = FetchOk | FetchError


class ChangeType(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    ENDPOINT_TYPES_CHANGED = "endpoint_types_changed"
    FIELD_CHANGED = "field_changed"
    # Prices in common units (monitor.core.prices): before/after are (name, decimal
    # text) pairs, e.g. (("input", "2.5"), ("output", "10")); `group` the token's group.
    PRICE_CHANGED = "price_changed"
    # A new-api group's ratio: `group` names it, before/after are decimal texts; no model.
    GROUP_RATIO_CHANGED = "group_ratio_changed"
    # Probes (docs/probes.md): a listed model that does not answer a call, with the
    # gateway's `error`; and one that answers again.
    UNAVAILABLE = "unavailable"
    AVAILABLE = "available"


PRICE_UNIT = "USD per 1M tokens (request: USD per request)"


@dataclass(frozen=True, slots=True)
class CallError:
    """Why a call to a listed model failed, as the gateway said it: its HTTP status, its
    error code ("model_not_found") and its message, sanitized, without the request id
    (which differs on every call, so two tokens' same failure groups into one change)."""

    status: int | None
    code: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallError:
        return cls(data.get("status"), data.get("code"), str(data.get("message") or ""))

    def text(self) -> str:
        """The error in one line: "HTTP 503 model_not_found: No available channel ..."."""
        head = f"HTTP {self.status}" if self.status is not None else "no answer"
        if self.code:
            head += f" {self.code}"
        return f"{head}: {self.message}" if self.message else head


@dataclass(frozen=True, slots=True)
class Change:
    """One difference for one model.

    `record` is the model as it now is (added) or last was (removed). `tokens` is empty
    for a single token's diff and filled in when changes are grouped across a source.
    """

    type: ChangeType
    model: str
    record: ModelRecord | None = None
    field: str | None = None
    before: FieldValue = None
    after: FieldValue = None
    gained: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    group: str | None = None  # price changes: the tokens' new-api group (None: base prices)
    error: CallError | None = None  # unavailable: what the call answered

    def key(self) -> tuple[Any, ...]:
        """Identity of the change itself, regardless of which tokens saw it."""
        return (
            self.type,
            self.model,
            self.record,
            self.field,
            self.before,
            self.after,
            self.gained,
            self.lost,
            self.group,
            self.error,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": str(self.type),
            "model": self.model,
            "tokens": list(self.tokens),
        }
        if self.type is ChangeType.ADDED and self.record is not None:
            out["after"] = self.record.attributes()
        elif self.type is ChangeType.REMOVED and self.record is not None:
            out["before"] = self.record.attributes()
        elif self.type is ChangeType.ENDPOINT_TYPES_CHANGED:
            out["gained"] = list(self.gained)
            out["lost"] = list(self.lost)
        elif self.type is ChangeType.FIELD_CHANGED:
            out["field"] = self.field
            out["before"] = _thaw(self.before)
            out["after"] = _thaw(self.after)
            percent = percent_change(self.before, self.after)
            if percent is not None:
                out["percent"] = percent
        elif self.type is ChangeType.PRICE_CHANGED:
            out["group"] = self.group
            out["before"] = dict(self.before or ())
            out["after"] = dict(self.after or ())
            out["unit"] = PRICE_UNIT
        elif self.type is ChangeType.GROUP_RATIO_CHANGED:
            del out["model"]
            out["group"] = self.group
            out["before"] = self.before
            out["after"] = self.after
        elif self.type is ChangeType.UNAVAILABLE and self.error is not None:
            out["error"] = self.error.to_json()
        return out


class EventType(StrEnum):
    MODELS_CHANGED = "models.changed"
    TOKEN_FAILING = "token.failing"  # noqa: S105 - not a password
    TOKEN_RECOVERED = "token.recovered"  # noqa: S105
    TOKEN_EXPIRING = "token.expiring"  # noqa: S105
    TOKEN_QUOTA_LOW = "token.quota_low"  # noqa: S105
    TEST = "test"


class DeliveryState(StrEnum):
    """Where one delivery (an event for one channel) stands in the outbox.

    pending: due at `next_attempt_at` (retries wait here too); held: kept for a digest
    or past quiet hours until its release time; batched: folded into a digest delivery,
    which is sent instead; sent and dead (its retries ran out) are final, though
    `deliveries --retry` makes a dead one pending again.
    """

    PENDING = "pending"
    HELD = "held"
    SENT = "sent"
    DEAD = "dead"
    BATCHED = "batched"


@dataclass(frozen=True, slots=True)
class SourceRef:
    name: str
    base_url: str


@dataclass(frozen=True, slots=True)
class Event:
    """What is worth telling people. Serialized as the version-1 payload (docs/payload.md)."""

    id: str
    type: EventType
    occurred_at: str  # RFC 3339 UTC, "2026-11-26T10:00:00Z"
    source: SourceRef
    tokens: tuple[str, ...]
    summary: str
    changes: tuple[Change, ...] = ()
    error: FetchError | None = None
    # (token, what is unusual about its changes), e.g. a mass removal; said plainly.
    notices: tuple[tuple[str, str], ...] = ()
    # token.expiring and token.quota_low: the budget read, and the threshold crossed.
    budget: Budget | None = None
    threshold: str | None = None

    @property
    def notice(self) -> str | None:
        return "; ".join(text for _, text in self.notices) or None

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": "1",
            "id": self.id,
            "type": str(self.type),
            "occurred_at": self.occurred_at,
            "source": {"name": self.source.name, "base_url": self.source.base_url},
            "tokens": list(self.tokens),
            "summary": self.summary,
            "changes": [change.to_json() for change in self.changes],
        }
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.notices:
            out["notice"] = self.notice
        if self.budget is not None:
            out["budget"] = self.budget.to_json()
            if self.threshold is not None:
                out["budget"]["threshold"] = self.threshold
        return out
