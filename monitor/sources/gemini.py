"""Google's Gemini API models list: `GET {base_url}/models`, paginated with `pageToken`.

The key goes in the `x-goog-api-key` header, never in the URL (URLs get logged, by us
and by every proxy on the way). `pageSize` is always sent: the API's default is 50,
and a list cut at 50 would look like mass removal. A page is

    {"models": [Model, ...], "nextPageToken": "..."}

and the next page is asked for with `pageToken=<nextPageToken>` until the token is
absent or empty. The responses are proto3 JSON, which leaves out empty lists and zero
values: `{}` is an empty list, a model without `supportedGenerationMethods` supports
none.

Each model's id is its `name` without the `models/` prefix. Its endpoint types are
the set of `supportedGenerationMethods` (`generateContent`, `countTokens`,
`embedContent`, ...), diffed as gained and lost. Diffed fields: `display_name`
(displayName), `context_window` (inputTokenLimit), `max_output_tokens`
(outputTokenLimit), `version`. Not diffed: `description`, `baseModelId`, the sampling
defaults (`temperature`, `maxTemperature`, `topP`, `topK`) and `thinking`.

Errors are Google status objects, `{"error": {"code", "message", "status", "details"}}`,
sometimes wrapped in a list. An invalid key is HTTP 400 with an ErrorInfo detail whose
reason is `API_KEY_INVALID`: `error_kind` makes that an auth failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.config.model import Secret
from monitor.core.records import ErrorKind, ModelRecord
from monitor.sources.base import (
    FieldSpec,
    Flavor,
    InvalidResponse,
    Page,
    Request,
    json_type,
    typed_fields,
)

MODEL_PREFIX = "models/"

# ErrorInfo reasons (google.api.ErrorReason) that mean the credential itself is bad.
# Blocked keys and disabled services come as 403 and stay "forbidden".
AUTH_REASONS = frozenset({"API_KEY_INVALID", "ACCESS_TOKEN_EXPIRED"})


class GeminiFlavor(Flavor):
    """The Gemini API (generativelanguage.googleapis.com) `models.list`."""

    name: ClassVar[str] = "gemini"
    # Models per page, always sent: the API's default is 50 (1000 is its maximum).
    # Tests lower it.
    page_size: ClassVar[int] = 1000

    def first_request(self, base_url: str, secret: Secret) -> Request:
        return Request(
            url=f"{base_url.rstrip('/')}/models",
            headers=(("x-goog-api-key", secret),),
            params=(("pageSize", str(self.page_size)),),
        )

    def parse(self, body: object, request: Request) -> Page:
        if not isinstance(body, dict):
            raise InvalidResponse(f"the response is {json_type(body)}, not a JSON object")
        if body.get("error") not in (None, "", {}):
            detail = self.error_message(body)
            raise InvalidResponse("the response is an error" + (f": {detail}" if detail else ""))
        if "models" in body:
            models = body["models"]
        elif set(body) <= {"nextPageToken"}:
            models = []  # proto3 JSON leaves an empty list out
        else:
            raise InvalidResponse("the response has no models list")
        if not isinstance(models, list):
            raise InvalidResponse(f"models is {json_type(models)}, not a list")
        records: list[ModelRecord] = []
        seen: set[str] = set()
        for index, item in enumerate(models):
            if not isinstance(item, dict):
                raise InvalidResponse(f"models[{index}] is {json_type(item)}, not a model object")
            model_id = _model_id(index, item.get("name"))
            if model_id in seen:
                raise InvalidResponse(f"model id {model_id!r} appears twice")
            seen.add(model_id)
            records.append(self.record(model_id, item))
        return Page(records, self._next(body, request))

    def _next(self, body: dict[str, Any], request: Request) -> Request | None:
        token = body.get("nextPageToken")
        if token is None or token == "":
            return None
        if not isinstance(token, str):
            raise InvalidResponse(f"nextPageToken is {json_type(token)}, not a string")
        params = (("pageSize", str(self.page_size)), ("pageToken", token))
        return Request(request.url, request.headers, params)

    def record(self, model_id: str, item: Mapping[str, Any]) -> ModelRecord:
        """One Model, normalized. `model_id` is its name without the prefix."""
        methods = item.get("supportedGenerationMethods")
        if methods is None:
            methods = []
        elif not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise InvalidResponse(
                f"model {model_id!r}: supportedGenerationMethods is {json_type(methods)},"
                " not a list of strings"
            )
        return ModelRecord.build(model_id, methods, typed_fields(model_id, item, _FIELDS))

    def error_kind(self, status: int, body: object) -> ErrorKind | None:
        """HTTP 400 with reason API_KEY_INVALID is a bad key: auth, not a client error."""
        if 400 <= status < 500 and AUTH_REASONS.intersection(_reasons(body)):
            return ErrorKind.AUTH
        return None

    def error_message(self, body: object) -> str | None:
        """ "API key not valid. Please pass a valid API key. (API_KEY_INVALID)": the message,
        then the ErrorInfo reason (or else the status name) in parentheses."""
        error = _status_object(body)
        if error is not None:
            reasons = _reasons(body)
            status = error.get("status")
            tag = reasons[0] if reasons else status if isinstance(status, str) else ""
            message = error.get("message")
            if isinstance(message, str) and message.strip():
                return f"{message} ({tag})" if tag and tag not in message else message
            if tag:
                return tag  # more telling than the numeric code, which the status repeats
        return super().error_message(body)


# (wire name, record field name, expected type)
_FIELDS: FieldSpec = (
    ("displayName", "display_name", str),
    ("inputTokenLimit", "context_window", int),
    ("outputTokenLimit", "max_output_tokens", int),
    ("version", "version", str),
)


def _model_id(index: int, name: object) -> str:
    if not isinstance(name, str) or not name:
        if name is None:
            what = "no name"
        elif name == "":
            what = "an empty name"
        else:
            what = f"a name that is {json_type(name)}"
        raise InvalidResponse(f"models[{index}] has {what}")
    model_id = name.removeprefix(MODEL_PREFIX)
    if not model_id:
        raise InvalidResponse(f"models[{index}] has the name {name!r}, with no model after it")
    return model_id


def _status_object(body: object) -> Mapping[str, Any] | None:
    """The `error` of a Google status body (also when wrapped in a list), or None."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return error
    return None


def _reasons(body: object) -> list[str]:
    """The ErrorInfo reasons in a Google status body's `details`."""
    error = _status_object(body)
    details = error.get("details") if error is not None else None
    if not isinstance(details, list):
        return []
    return [
        detail["reason"]
        for detail in details
        if isinstance(detail, Mapping) and isinstance(detail.get("reason"), str)
    ]
