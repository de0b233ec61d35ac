"""Anthropic's models list: `GET {base_url}/models`, paginated with `after_id`.

The request carries `x-api-key` and `anthropic-version: 2023-06-01` and no Authorization
header. A page is

    {"data": [ModelInfo, ...], "first_id": "...", "has_more": true, "last_id": "..."}

and the next page is asked for with `after_id=<last_id>` while `has_more` is true. A
walk that cannot continue (`has_more` without a `last_id`, a loop, a failing page) is a
failed check: `monitor.sources.fetch` never turns part of a list into a snapshot.

What is diffed, under the names every flavor uses:

- `display_name`;
- `context_window` from `max_input_tokens`, `max_output_tokens` from `max_tokens`;
- `capabilities`: the sorted names of what the model supports. The documented shape is
  an object of `{"supported": bool}` entries, some with nested entries
  (`"thinking": {"supported": true, "types": {"adaptive": {"supported": true}}}`);
  nested names are dotted (`thinking.types.adaptive`). A plain list of names is taken
  as it is;
- `deprecation_date`, `retirement_date`: ISO strings as given, when the answer has them
  (as `deprecated_at`/`retires_at`, or under the field names themselves).

Absent or null values are left out. `created_at` (a release date, sometimes an epoch
placeholder), `type`, `line` and `lifecycle` (which follows the dates) are not diffed. Errors are
`{"type": "error", "error": {"type": ..., "message": ...}}`; 529 `overloaded_error` is a
5xx, so a server error by status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.config.model import Secret
from monitor.core.records import ModelRecord
from monitor.sources.base import (
    FieldSpec,
    Flavor,
    InvalidResponse,
    Page,
    Request,
    json_type,
    typed_fields,
)
from monitor.sources.side_routes import ProbeAuth

ANTHROPIC_VERSION = "2023-06-01"

# The documented capability object nests three levels (thinking.types.adaptive); this
# leaves room for growth while bounding the recursion over a hostile body.
_MAX_CAPABILITY_DEPTH = 6


class AnthropicFlavor(Flavor):
    """The Anthropic Models API (and gateways that answer in its format)."""

    name: ClassVar[str] = "anthropic"
    probe_auth: ClassVar[ProbeAuth | None] = "x-api-key"
    # Models per page: 1000 is the API's maximum (its default is 20). Tests lower it.
    page_size: ClassVar[int] = 1000

    def first_request(self, base_url: str, secret: Secret) -> Request:
        return Request(
            url=f"{base_url.rstrip('/')}/models",
            headers=(("x-api-key", secret), ("anthropic-version", ANTHROPIC_VERSION)),
            params=(("limit", str(self.page_size)),),
        )

    def parse(self, body: object, request: Request) -> Page:
        if not isinstance(body, dict):
            raise InvalidResponse(f"the response is {json_type(body)}, not a JSON object")
        if body.get("type") == "error" or body.get("error") not in (None, "", {}):
            detail = self.error_message(body)
            raise InvalidResponse("the response is an error" + (f": {detail}" if detail else ""))
        if "data" not in body:
            raise InvalidResponse("the response has no data list")
        data = body["data"]
        if not isinstance(data, list):
            raise InvalidResponse(f"data is {json_type(data)}, not a list")
        records: list[ModelRecord] = []
        seen: set[str] = set()
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise InvalidResponse(f"data[{index}] is {json_type(item)}, not a model object")
            model_id = item.get("id")
            if not isinstance(model_id, str) or not model_id:
                raise InvalidResponse(f"data[{index}] has {_what_id(model_id)}")
            if model_id in seen:
                raise InvalidResponse(f"model id {model_id!r} appears twice")
            seen.add(model_id)
            records.append(self.record(model_id, item))
        return Page(records, self._next(body, len(data), request))

    def _next(self, body: dict[str, Any], count: int, request: Request) -> Request | None:
        has_more = body.get("has_more")
        if has_more is None:
            # Gateways that speak this format without paginating may leave the flag
            # out; only a page that is not full can then be the last one.
            if count >= self.page_size:
                raise InvalidResponse(
                    f"a full page of {count} models without has_more: the list may go on"
                )
            return None
        if not isinstance(has_more, bool):
            raise InvalidResponse(f"has_more is {json_type(has_more)}, not a boolean")
        if not has_more:
            return None
        last_id = body.get("last_id")
        if not isinstance(last_id, str) or not last_id:
            raise InvalidResponse("has_more is true but the page has no last_id to continue from")
        params = (("limit", str(self.page_size)), ("after_id", last_id))
        return Request(request.url, request.headers, params)

    def record(self, model_id: str, item: Mapping[str, Any]) -> ModelRecord:
        """One ModelInfo, normalized. `item` has a valid string id."""
        fields = typed_fields(model_id, item, _FIELDS)
        capabilities = _capabilities(model_id, item.get("capabilities"))
        if capabilities is not None:
            fields["capabilities"] = capabilities
        return ModelRecord.build(model_id, None, fields)

    def error_message(self, body: object) -> str | None:
        """ "authentication_error: invalid x-api-key": the error type, then its message."""
        if isinstance(body, Mapping):
            error = body.get("error")
            if isinstance(error, Mapping):
                kind, message = error.get("type"), error.get("message")
                if isinstance(kind, str) and kind and isinstance(message, str) and message.strip():
                    return f"{kind}: {message}"
        return super().error_message(body)


# (wire name, record field name, expected type); for a field with two wire names the
# first one present wins.
_FIELDS: FieldSpec = (
    ("display_name", "display_name", str),
    ("max_input_tokens", "context_window", int),
    ("max_tokens", "max_output_tokens", int),
    ("deprecated_at", "deprecation_date", str),
    ("deprecation_date", "deprecation_date", str),
    ("retires_at", "retirement_date", str),
    ("retirement_date", "retirement_date", str),
)


def _what_id(model_id: object) -> str:
    if model_id is None:
        return "no id"
    if model_id == "":
        return "an empty id"
    return f"an id that is {json_type(model_id)}"


def _capabilities(model_id: str, value: object) -> list[str] | None:
    """The sorted names of the supported capabilities; None when the answer has none."""
    if value is None:
        return None
    if isinstance(value, list):
        if not all(isinstance(name, str) and name for name in value):
            raise InvalidResponse(
                f"model {model_id!r}: capabilities is a list, but not of capability names"
            )
        return sorted(set(value))
    if not isinstance(value, dict):
        raise InvalidResponse(
            f"model {model_id!r}: capabilities is {json_type(value)}, not an object"
        )
    names: list[str] = []
    _collect(model_id, value, "", 0, names)
    return sorted(names)


def _collect(
    model_id: str, node: Mapping[str, Any], prefix: str, depth: int, out: list[str]
) -> None:
    """Append the dotted name of every entry under `node` whose `supported` is true.

    Values that are not objects (future details such as limits) are not capabilities and
    are skipped; a `supported` that is not a boolean makes the answer invalid.
    """
    if depth > _MAX_CAPABILITY_DEPTH:
        raise InvalidResponse(f"model {model_id!r}: capabilities nest too deeply")
    for key, child in node.items():
        if key == "supported" or not isinstance(child, dict):
            continue
        path = f"{prefix}{key}"
        supported = child.get("supported")
        if supported is True:
            out.append(path)
        elif supported is not None and supported is not False:
            raise InvalidResponse(
                f"model {model_id!r}: capabilities.{path}.supported is {json_type(supported)},"
                " not a boolean"
            )
        _collect(model_id, child, f"{path}.", depth + 1, out)
