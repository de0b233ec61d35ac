"""`flavor = "auto"`: work out the wire format from the source itself.

The choice is made once per check, deterministically, in two steps; the chosen flavor
then does everything (request, parsing, pagination, error bodies) and its name is
reported as the check's flavor (`AutoFlavor.detected`, `AutoFlavor.reason`).

1. By host, before any request. A base_url whose host is, or is a subdomain of,

   | host                                 | flavor       |
   | ------------------------------------ | ------------ |
   | `api.anthropic.com`                  | `anthropic`  |
   | `generativelanguage.googleapis.com`  | `gemini`     |
   | `openrouter.ai`                      | `openrouter` |

   delegates to that flavor when it is registered in FLAVORS (looked up at call time).
   These providers need their own request (headers, paths, query), so guessing from a
   response would be too late.

2. Otherwise the OpenAI-style request is sent (`GET {base_url}/models`, only a Bearer
   header: an `x-api-key` header would switch new-api to the Anthropic format), and the
   first successful body decides. Rules are tried in this order; each looks at the
   envelope or at *any* model entry (or *every* entry, where said), so the answer does
   not depend on the random order of `data`:

   1. new-api: the envelope has a `success` key, or an entry has
      `supported_endpoint_types`.
   2. vLLM: an entry has `max_model_len` -> `vllm` if such a flavor is registered, else
      `openai` (presence only; vLLM's `created` is the request time and its fake
      `permission` list would otherwise pass it off as one-api).
   3. one-api: an entry has a `permission` list.
   4. openrouter: an entry has both a `pricing` object and an `architecture` object.
   5. litellm: an entry has `mode`, `max_input_tokens` or `max_output_tokens`, or every
      entry has LiteLLM's constant `created` (1677610602).
   6. ollama: an entry has `owned_by: "library"`, or every entry has an id with a tag
      (`name:tag`) and an `owned_by` equal to the namespace in that id (Ollama derives
      one from the other).
   7. openai: anything else (including an empty list: nothing to tell formats apart,
      and presence is all an empty list has).

OpenRouter's format found on a host that does not name it (a proxy, a mirror) is
asked once more with `output_modalities=all`, and only that answer is read: the first
one, like any OpenRouter answer without it, leaves out the models that do not output
text.

A body that is not a valid OpenAI-style list fails as it would for `openai`, with a hint
where the shape says what the source probably is (`"data": null` from an empty Ollama,
a `models` list from Gemini or Ollama's native API). Nothing is chosen from a failed
response.

Error responses come before any body could decide: they are read by the flavor chosen
by host if any, else with the generic error shapes, and LiteLLM's "No connected db."
HTTP 400 (a wrong key on a proxy without a database) counts as an auth failure.

The chosen flavor is not remembered between checks: each check detects again from its
own response, so a gateway that is upgraded (one-api -> new-api) is followed. The rules
rest on what every answer of a format carries, so a format's answers keep getting the
same name; set the flavor explicitly where that is not enough (an Ollama host with no
model pulled answers `"data": null`, which auto refuses to guess from).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from monitor.config.model import Secret
from monitor.core.records import ErrorKind
from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.base import Flavor, InvalidResponse, Page, Request
from monitor.sources.gemini import GeminiFlavor
from monitor.sources.interning import RecordTable
from monitor.sources.litellm import LITELLM_CREATED, LiteLLMFlavor
from monitor.sources.ollama import OllamaFlavor
from monitor.sources.openai_compat import NewApiFlavor, OneApiFlavor, OpenAIFlavor
from monitor.sources.openrouter import ALL_MODALITIES, OpenRouterFlavor

logger = logging.getLogger("monitor.sources")

# Hosts that name their provider: (domain, flavor). A host matches its domain exactly
# or as a subdomain ("eu.openrouter.ai").
PROVIDER_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gemini"),
    ("openrouter.ai", "openrouter"),
)

LIBRARY = "library"

# The flavors auto picks from when it is given no registry (the fetcher gives it
# `monitor.sources.registry.FLAVORS`).
_BUILTIN: dict[str, type[Flavor]] = {
    "anthropic": AnthropicFlavor,
    "gemini": GeminiFlavor,
    "new-api": NewApiFlavor,
    "one-api": OneApiFlavor,
    "openai": OpenAIFlavor,
    "openrouter": OpenRouterFlavor,
    "litellm": LiteLLMFlavor,
    "ollama": OllamaFlavor,
}


def registered(registry: Mapping[str, type[Flavor]], name: str) -> type[Flavor] | None:
    """The flavor class `registry` names `name`, if any (never auto itself)."""
    flavor = registry.get(name)
    return None if flavor is None or flavor.name == "auto" else flavor


def provider_for_host(base_url: str) -> str | None:
    """The flavor a base_url's host names ("openrouter.ai" -> "openrouter"), or None."""
    try:
        host = (urlsplit(base_url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    for domain, flavor in PROVIDER_HOSTS:
        if host == domain or host.endswith("." + domain):
            return flavor
    return None


def detect(body: object, registry: Mapping[str, type[Flavor]] = _BUILTIN) -> tuple[str, str]:
    """(flavor name, the reason in words) for a successful OpenAI-style body.

    `registry` holds the flavors there are (a "vllm" one is chosen when registered).
    Raises InvalidResponse when the body is no models list at all.
    """
    data = _model_list(body)
    assert isinstance(body, dict)  # _model_list checked it
    entries = [entry for entry in data if isinstance(entry, dict)]

    def any_has(test: Callable[[Mapping[str, Any]], bool]) -> bool:
        return any(test(entry) for entry in entries)

    def every(test: Callable[[Mapping[str, Any]], bool]) -> bool:
        return bool(entries) and all(test(entry) for entry in entries)

    if "success" in body:
        return "new-api", 'the response has a "success" key'
    if any_has(lambda e: "supported_endpoint_types" in e):
        return "new-api", "models have supported_endpoint_types"
    if any_has(lambda e: "max_model_len" in e):
        name = "vllm" if registered(registry, "vllm") is not None else "openai"
        return name, "models have max_model_len (vLLM)"
    if any_has(lambda e: isinstance(e.get("permission"), list)):
        return "one-api", "models have a permission list"
    if any_has(
        lambda e: isinstance(e.get("pricing"), dict) and isinstance(e.get("architecture"), dict)
    ):
        return "openrouter", "models have pricing and architecture"
    if any_has(lambda e: any(k in e for k in ("mode", "max_input_tokens", "max_output_tokens"))):
        return "litellm", "models have mode or max_input_tokens/max_output_tokens"
    if every(lambda e: _is(e.get("created"), LITELLM_CREATED)):
        return "litellm", f"every model has created = {LITELLM_CREATED}"
    if any_has(lambda e: e.get("owned_by") == LIBRARY):
        return "ollama", 'models are owned_by "library"'
    if every(_ollama_shaped):
        return "ollama", "every model id has a tag and owned_by is its namespace"
    return "openai", "no gateway-specific fields"


def _is(value: object, constant: int) -> bool:
    return not isinstance(value, bool) and value == constant


def _ollama_shaped(entry: Mapping[str, Any]) -> bool:
    model_id, owner = entry.get("id"), entry.get("owned_by")
    if not isinstance(model_id, str) or not isinstance(owner, str):
        return False
    name, colon, tag = model_id.rpartition(":")
    if not colon or not name or not tag or "/" in tag:
        return False
    parts = name.split("/")
    namespace = parts[-2] if len(parts) >= 2 else LIBRARY
    return owner == namespace


def _model_list(body: object) -> list[Any]:
    """The data list, or InvalidResponse with a hint at what the source is instead."""
    if isinstance(body, dict) and "success" not in body and body.get("error") in (None, "", {}):
        if "data" in body and body["data"] is None:
            raise InvalidResponse(
                "data is null, not a list (an Ollama host with no model pulled answers so:"
                ' set flavor = "ollama" for this source)'
            )
        if "data" not in body and isinstance(body.get("models"), list):
            raise InvalidResponse(
                "the response has a models list, not a data list (Gemini, or Ollama's"
                " native API?): set the source's flavor, or a base_url ending in /v1"
            )
    return OpenAIFlavor().model_list(body)


class AutoFlavor(Flavor):
    """Detects the wire format from the host, else the first answer, and delegates to it.

    One instance serves one check, like every flavor; `detected` is the chosen flavor's
    name (None until chosen) and `reason` says why it was chosen.
    """

    name: ClassVar[str] = "auto"

    @classmethod
    def create(cls, registry: Mapping[str, type[Flavor]], records: RecordTable) -> Flavor:
        return cls(registry, records)

    def __init__(
        self, registry: Mapping[str, type[Flavor]] = _BUILTIN, records: RecordTable | None = None
    ) -> None:
        self._registry = registry  # the flavors to choose from
        self._records = records if records is not None else RecordTable()
        self._delegate: Flavor | None = None
        self.detected: str | None = None
        self.reason: str | None = None

    @property
    def chosen(self) -> str:
        return self.detected or self.name

    @property
    def delegate(self) -> Flavor | None:
        return self._delegate

    @property
    def max_pages(self) -> int:  # type: ignore[override]
        return self._delegate.max_pages if self._delegate is not None else Flavor.max_pages

    def caches_pages(self) -> bool:
        # Until a format is chosen, parsing the first page also decides the format.
        return self._delegate is not None and self._delegate.caches_pages()

    def _make(self, flavor_class: type[Flavor]) -> Flavor:
        return flavor_class.create(self._registry, self._records)

    def _choose(self, name: str, flavor: Flavor, reason: str) -> Flavor:
        self._delegate, self.detected, self.reason = flavor, name, reason
        logger.debug("flavor auto: chose %s (%s)", name, reason)
        return flavor

    def first_request(self, base_url: str, secret: Secret) -> Request:
        provider = provider_for_host(base_url)
        if provider is not None:
            flavor_class = registered(self._registry, provider)
            if flavor_class is not None:
                flavor = self._choose(
                    provider, self._make(flavor_class), f"the host names {provider}"
                )
                return flavor.first_request(base_url, secret)
            logger.debug("flavor auto: %s is not available; trying the OpenAI format", provider)
        return OpenAIFlavor().first_request(base_url, secret)

    def parse(self, body: object, request: Request) -> Page:
        if self._delegate is not None:
            return self._delegate.parse(body, request)
        name, reason = detect(body, self._registry)
        flavor = self._make(registered(self._registry, name) or OpenAIFlavor)
        page = flavor.parse(body, request)  # only a body that parses decides
        self._choose(name, flavor, reason)
        if name == "openrouter" and "output_modalities" not in dict(request.params):
            # This answer left out every model that does not output text: ask again,
            # the way OpenRouter must be asked, and read only that answer.
            params = (*request.params, *ALL_MODALITIES)
            return Page([], Request(url=request.url, headers=request.headers, params=params))
        return page

    def error_message(self, body: object) -> str | None:
        if self._delegate is not None:
            return self._delegate.error_message(body)
        return super().error_message(body)

    def error_kind(self, status: int, body: object) -> ErrorKind | None:
        """The chosen flavor's classification of an error response (the Flavor
        `error_kind` hook); before any choice, LiteLLM's unambiguous "No connected db."
        rule, then the default."""
        if self._delegate is not None:
            return self._delegate.error_kind(status, body)
        return LiteLLMFlavor().error_kind(status, body) or super().error_kind(status, body)
