"""OpenRouter's models list: prices, context windows, modalities, parameters.

`GET {base_url}/models?output_modalities=all` (base_url `https://openrouter.ai/api/v1`).
Without `output_modalities=all` only text-output models come back, so image and audio
models would look removed. No auth is needed; the Bearer token is sent anyway when one
is configured (harmless, and it keeps a proxy in front honest).

Fields, per model (absent or null upstream values are left out, never stored as None):

- `display_name` (`name`), `context_window` (`context_length`),
  `max_output_tokens` (`top_provider.max_completion_tokens`);
- `pricing.<key>` for every key of `pricing` (`prompt`, `completion`, `request`,
  `image`, `web_search`, `internal_reasoning`, `input_cache_read`, ...): decimal strings,
  parsed with Decimal and stored in one canonical spelling ("0.0000030" and "3E-6"
  become "0.000003") so a re-formatting upstream is no change. Negative values (`-1`
  marks a variable price, e.g. `openrouter/auto`) and values that are not finite
  decimals are kept exactly as given;
- `input_modalities`, `output_modalities` (from `architecture`) and
  `supported_parameters`: sorted lists without duplicates (upstream order means nothing);
- `expiration_date`, `top_provider.context_length`, `top_provider.is_moderated`.

Never diffed: `created`, `description`, `canonical_slug`, `hugging_face_id`,
`per_request_limits`, `default_parameters`, `architecture.modality` (the same facts as
the modality lists), `architecture.tokenizer`, `architecture.instruct_type`, `links`.

endpoint_types is None: OpenRouter has no such notion.

The list is one page. Should a response carry `links.next` (the API documents optional
`offset`/`limit`), its query is followed on the same URL, never to another host, so a
paged answer is read completely instead of becoming a partial snapshot.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from monitor.config.model import Secret
from monitor.core.records import ModelRecord
from monitor.sources.base import InvalidResponse, Page, Request, json_type
from monitor.sources.openai_compat import OpenAIFlavor

# Query parameters without which OpenRouter leaves out non-text models.
ALL_MODALITIES: tuple[tuple[str, str], ...] = (("output_modalities", "all"),)

# Decimals with exponents beyond this are kept as given rather than spelled out in full
# (a hostile "1e999999" must not become a million-character string).
_MAX_EXPONENT = 40


def bearer_headers(secret: Secret) -> tuple[tuple[str, str | Secret], ...]:
    """The Authorization header when a token is configured, else none."""
    value = secret.reveal()
    if not value.strip():
        return ()
    return (("Authorization", Secret(f"Bearer {value}")),)


def normalize_decimal(value: str) -> str:
    """One spelling per non-negative decimal: "0.0000030", "3e-6" -> "0.000003"; "1.50" -> "1.5".

    Negative numbers (OpenRouter's "-1": the price varies), non-finite values, unparsable
    text and absurd exponents are returned unchanged.
    """
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return value
    if not number.is_finite() or (number.is_signed() and not number.is_zero()):
        return value
    if number.is_zero():
        return "0"
    if abs(number.adjusted()) > _MAX_EXPONENT:
        return value
    # Exact: a context as precise as the number, so nothing is rounded away.
    exact = Context(prec=max(28, len(number.as_tuple().digits)))
    return format(number.normalize(exact), "f")


class OpenRouterFlavor(OpenAIFlavor):
    """OpenRouter: pricing, limits, modalities and parameters of every model."""

    name: ClassVar[str] = "openrouter"

    def first_request(self, base_url: str, secret: Secret) -> Request:
        return Request(
            url=f"{base_url.rstrip('/')}/models",
            headers=bearer_headers(secret),
            params=ALL_MODALITIES,
        )

    def parse(self, body: object, request: Request) -> Page:
        page = super().parse(body, request)
        return Page(page.models, self._next(body, request, bool(page.models)))

    def _next(self, body: object, request: Request, any_models: bool) -> Request | None:
        links = body.get("links") if isinstance(body, dict) else None
        target = links.get("next") if isinstance(links, dict) else None
        if not isinstance(target, str) or not target.strip() or not any_models:
            return None
        query = dict(parse_qsl(urlsplit(target).query))
        if not query:
            return None
        params = dict(request.params)
        params.update(query)
        params.setdefault("output_modalities", "all")
        return Request(url=request.url, headers=request.headers, params=tuple(params.items()))

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        fields: dict[str, Any] = {}
        where = f"model {model_id!r}"

        name = item.get("name")
        if name is not None:
            fields["display_name"] = _scalar(name, f"{where}: name")
        context = _count(item.get("context_length"), f"{where}: context_length")
        if context is not None:
            fields["context_window"] = context

        top = _object(item.get("top_provider"), f"{where}: top_provider")
        max_out = _count(
            top.get("max_completion_tokens"), f"{where}: top_provider.max_completion_tokens"
        )
        if max_out is not None:
            fields["max_output_tokens"] = max_out
        top_context = _count(top.get("context_length"), f"{where}: top_provider.context_length")
        if top_context is not None:
            fields["top_provider.context_length"] = top_context
        moderated = top.get("is_moderated")
        if moderated is not None:
            fields["top_provider.is_moderated"] = _scalar(
                moderated, f"{where}: top_provider.is_moderated"
            )

        pricing = _object(item.get("pricing"), f"{where}: pricing")
        for key, value in pricing.items():
            price = _price(value, f"{where}: pricing.{key}")
            if price is not None:
                fields[f"pricing.{key}"] = price

        architecture = _object(item.get("architecture"), f"{where}: architecture")
        for key in ("input_modalities", "output_modalities"):
            values = _strings(architecture.get(key), f"{where}: architecture.{key}")
            if values is not None:
                fields[key] = values
        parameters = _strings(item.get("supported_parameters"), f"{where}: supported_parameters")
        if parameters is not None:
            fields["supported_parameters"] = parameters

        expiration = item.get("expiration_date")
        if expiration is not None:
            fields["expiration_date"] = _scalar(expiration, f"{where}: expiration_date")
        return ModelRecord.build(model_id, None, fields)


def _object(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidResponse(f"{what} is {json_type(value)}, not an object")
    return value


def _count(value: object, what: str) -> int | float | None:
    """A token count: a number or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidResponse(f"{what} is {json_type(value)}, not a number")
    return value


def _scalar(value: object, what: str) -> str | int | float | bool:
    """A string, number or boolean (callers have already set null aside)."""
    if isinstance(value, str | int | float):  # bool is an int
        return value
    raise InvalidResponse(f"{what} is {json_type(value)}, not a single value")


def _strings(value: object, what: str) -> list[str] | None:
    """A sorted list of distinct strings, or None for null/absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidResponse(f"{what} is {json_type(value)}, not a list of strings")
    return sorted(set(value))


def _price(value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return normalize_decimal(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return normalize_decimal(str(value))
    raise InvalidResponse(f"{what} is {json_type(value)}, not a decimal string")
