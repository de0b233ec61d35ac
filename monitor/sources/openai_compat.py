"""The OpenAI-style models list and the gateways that extend it: new-api and one-api.

All three answer `GET {base_url}/models` with a Bearer token and a single page
`{"data": [{"id": ...}, ...]}`. They differ in what is worth diffing:

- openai: presence only (`created` and `owned_by` say nothing useful).
- one-api: `owned_by`; `permission` (fake ids), `root`, `parent`, `created` are noise.
- new-api: `owned_by` and the set of `supported_endpoint_types`; `created` is constant.

new-api answers a failing handler with HTTP 200 and `{"success": false}`, and any of
them may put an `{"error": ...}` body behind a 200; both are failed checks, never an
empty list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import ModelRecord
from monitor.sources.base import Flavor, InvalidResponse, Page, Request, json_type
from monitor.sources.budget import BudgetRoute, explain_auth_failure
from monitor.sources.interning import RecordTable
from monitor.sources.side_routes import PriceRoute, ProbeAuth

_ABSENT = object()


class OpenAIFlavor(Flavor):
    """Plain OpenAI (and anything that only promises its shape): model presence only."""

    name: ClassVar[str] = "openai"
    probe_auth: ClassVar[ProbeAuth | None] = "bearer"

    def first_request(self, base_url: str, secret: Secret) -> Request:
        # Only the Bearer header: an x-api-key header switches new-api to the
        # Anthropic format, and x-goog-api-key breaks the route.
        authorization = Secret(f"Bearer {secret.reveal()}")
        return Request(
            url=f"{base_url.rstrip('/')}/models", headers=(("Authorization", authorization),)
        )

    def parse(self, body: object, request: Request) -> Page:
        data = self.model_list(body)
        records: list[ModelRecord] = []
        seen: set[str] = set()
        record = self.record
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise InvalidResponse(f"data[{index}] is {json_type(item)}, not a model object")
            model_id = item.get("id")
            if not isinstance(model_id, str) or not model_id:
                what = "no id" if model_id is None else f"an id that is {json_type(model_id)}"
                if model_id == "":
                    what = "an empty id"
                raise InvalidResponse(f"data[{index}] has {what}")
            if model_id in seen:
                raise InvalidResponse(f"model id {model_id!r} appears twice")
            seen.add(model_id)
            records.append(record(model_id, item))
        return Page(records)

    def caches_pages(self) -> bool:
        # new-api and one-api send `data` in a new order on every request, so the same
        # body rarely comes twice; unchanged models are interned records instead.
        return False

    def model_list(self, body: object) -> list[Any]:
        """The `data` list of an envelope, or InvalidResponse saying what is wrong instead."""
        if not isinstance(body, dict):
            raise InvalidResponse(f"the response is {json_type(body)}, not a JSON object")
        if body.get("success") is False:
            detail = self.error_message(body)
            raise InvalidResponse(
                'the gateway answered "success": false' + (f": {detail}" if detail else "")
            )
        if body.get("error") not in (None, "", {}):
            detail = self.error_message(body)
            raise InvalidResponse("the response is an error" + (f": {detail}" if detail else ""))
        if "data" not in body:
            raise InvalidResponse("the response has no data list")
        data = body["data"]
        if not isinstance(data, list):
            raise InvalidResponse(f"data is {json_type(data)}, not a list")
        return data

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        """One model, normalized. `item` is a dict with a valid string id."""
        return ModelRecord(model_id)


class OneApiFlavor(OpenAIFlavor):
    """one-api: `owned_by` is kept; no endpoint types."""

    name: ClassVar[str] = "one-api"
    budget_route: ClassVar[BudgetRoute | None] = "billing"
    unordered_list: ClassVar[str | None] = "data"  # shuffled on every request

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        return _with_owned_by(model_id, None, item)


class NewApiFlavor(OneApiFlavor):
    """new-api: `owned_by` and the set of `supported_endpoint_types`.

    Deployments from before mid-2025 send no `supported_endpoint_types`: the record
    then has endpoint_types None (unknown), which is not the same as `[]` (none).
    Values are opaque strings: forks and admins add their own.
    """

    name: ClassVar[str] = "new-api"
    budget_route: ClassVar[BudgetRoute | None] = "usage"
    price_route: ClassVar[PriceRoute | None] = "pricing"

    @classmethod
    def create(cls, registry: Mapping[str, type[Flavor]], records: RecordTable) -> Flavor:
        return cls(records)

    def __init__(self, records: RecordTable | None = None) -> None:
        # Shared with every check of the same owner (`monitor.sources.caches`); a flavor
        # made on its own gets a table of its own.
        self.records = records if records is not None else RecordTable()

    @classmethod
    def explain_auth(
        cls, source: SourceConfig, token: TokenConfig, settings: MonitorSettings
    ) -> str | None:
        # new-api says "Invalid token" to every refusal; its usage route still tells
        # an expired token from an exhausted one (monitor/sources/usage.py).
        return explain_auth_failure(source, token, settings)

    def parse(self, body: object, request: Request) -> Page:
        # The fast path: a model that looks exactly as it did before is one lookup in
        # the intern table. A hit proves the item valid (its key holds only strings);
        # anything else, and any duplicate id, goes through the full checks.
        data = self.model_list(body)
        interned = self.records
        records: list[ModelRecord] = []
        for item in data:
            try:
                types = item["supported_endpoint_types"]
                record = (
                    interned.get((item["id"], tuple(types), item["owned_by"]))
                    if types.__class__ is list  # tuple() would also take a string
                    else None
                )
            except (KeyError, TypeError):
                record = None
            if record is None:
                return super().parse(body, request)
            records.append(record)
        if len({r.id for r in records}) != len(records):
            return super().parse(body, request)  # it names the duplicate
        return Page(records)

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        types = item.get("supported_endpoint_types", _ABSENT)
        if types is _ABSENT:
            return _with_owned_by(model_id, None, item)
        if not isinstance(types, list):
            raise _bad_types(model_id, types)
        for t in types:
            if not isinstance(t, str):
                raise _bad_types(model_id, types)
        owned_by = item.get("owned_by", _ABSENT)
        if owned_by.__class__ is str:
            # The common case, served from the intern table when this model looked the
            # same before: no frozenset or record is built for an unchanged model.
            key = (model_id, tuple(types), owned_by)
            record = self.records.get(key)
            if record is None:
                record = self.records.intern(
                    key, ModelRecord(model_id, frozenset(types), (("owned_by", owned_by),))
                )
            return record
        return _with_owned_by(model_id, frozenset(types), item)


def _bad_types(model_id: str, types: object) -> InvalidResponse:
    return InvalidResponse(
        f"model {model_id!r}: supported_endpoint_types is {json_type(types)}, not a list of strings"
    )


def _with_owned_by(
    model_id: str, endpoint_types: frozenset[str] | None, item: dict[str, Any]
) -> ModelRecord:
    owned_by = item.get("owned_by", _ABSENT)
    if owned_by is _ABSENT:
        return ModelRecord(model_id, endpoint_types)
    if isinstance(owned_by, str):
        # What ModelRecord.build would produce, without its generic freezing: this runs
        # once per model, thousands of times per check.
        return ModelRecord(model_id, endpoint_types, (("owned_by", owned_by),))
    return ModelRecord.build(model_id, endpoint_types, {"owned_by": owned_by})
