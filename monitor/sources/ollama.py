"""Ollama's OpenAI-compatible models list: the models pulled on one host.

`GET {base_url}/models` (base_url `http://host:11434/v1`), no auth needed; the Bearer
token is sent when one is configured (a reverse proxy in front often wants it). One
page of `{"object": "list", "data": [...]}`.

- `created` is the model's modification time on the host (not a release date): it
  changes when the model is pulled again, i.e. when the weights behind a tag may have
  changed. It is stored as `modified_at`, an ISO 8601 UTC string
  ("2026-11-26T10:00:00Z"), so a report reads as a date. Values <= 0 (Go's zero time,
  -62135596800, means "unknown") are left out.
- `owned_by` is the namespace part of the id (`library` for official models): it says
  nothing the id does not, and is dropped.

Ollama is written in Go and encodes an empty list as `"data": null`; with no model
pulled, that is the honest answer, so it reads as an empty list here (the pipeline still
re-fetches before it believes a list that suddenly became empty).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from monitor.config.model import Secret
from monitor.core.records import ModelRecord
from monitor.sources.base import InvalidResponse, Request, json_type
from monitor.sources.openai_compat import OpenAIFlavor
from monitor.sources.openrouter import bearer_headers


def modified_at(created: object, model_id: str) -> str | None:
    """A Unix time as "YYYY-MM-DDTHH:MM:SSZ"; None for an unknown (<= 0) time."""
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise InvalidResponse(
            f"model {model_id!r}: created is {json_type(created)}, not a Unix time"
        )
    if created != created or created <= 0:  # NaN, Go's zero time, the epoch
        return None
    try:
        moment = datetime.fromtimestamp(int(created), UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidResponse(
            f"model {model_id!r}: created ({created}) is not a possible Unix time"
        ) from None
    return moment.isoformat().replace("+00:00", "Z")


class OllamaFlavor(OpenAIFlavor):
    """Ollama: model presence and when each model was last pulled."""

    name: ClassVar[str] = "ollama"

    def first_request(self, base_url: str, secret: Secret) -> Request:
        return Request(url=f"{base_url.rstrip('/')}/models", headers=bearer_headers(secret))

    def model_list(self, body: object) -> list[Any]:
        if isinstance(body, dict) and "data" in body and body["data"] is None:
            # Go's nil slice: no model pulled. Still reject an error body with it.
            return super().model_list({**body, "data": []})
        return super().model_list(body)

    def record(self, model_id: str, item: dict[str, Any]) -> ModelRecord:
        created = item.get("created")
        if created is None:
            return ModelRecord(model_id)
        when = modified_at(created, model_id)
        if when is None:
            return ModelRecord(model_id)
        return ModelRecord(model_id, None, (("modified_at", when),))
