"""The parsed-page cache: bounded by the models it holds, keyed by what decides a parse."""

from __future__ import annotations

from monitor.config.model import Secret
from monitor.core.records import ModelRecord
from monitor.sources.auto import AutoFlavor
from monitor.sources.base import Page, Request
from monitor.sources.caches import PageCache, page_key
from monitor.sources.openai_compat import NewApiFlavor, OpenAIFlavor

REQUEST = Request("https://gw.example/v1/models", (("Authorization", Secret("Bearer a")),))


def page(*ids: str) -> Page:
    return Page([ModelRecord(i) for i in ids])


def test_the_key_ignores_headers_but_not_the_flavor_the_request_or_the_body() -> None:
    other_token = Request(REQUEST.url, (("Authorization", Secret("Bearer b")),))
    key = page_key(NewApiFlavor(), REQUEST, b"{}")
    assert page_key(NewApiFlavor(), other_token, b"{}") == key
    assert page_key(OpenAIFlavor(), REQUEST, b"{}") != key
    assert page_key(NewApiFlavor(), Request(REQUEST.url, params=(("p", "2"),)), b"{}") != key
    assert page_key(NewApiFlavor(), REQUEST, b"{ }") != key


def test_least_recently_used_pages_go_first_within_the_model_budget() -> None:
    cache = PageCache(max_models=5)
    cache.put(b"a", page("1", "2"))
    cache.put(b"b", page("3", "4"))
    assert cache.get(b"a") is not None  # "b" is now the least recently used
    cache.put(b"c", page("5", "6"))
    assert cache.get(b"b") is None
    assert cache.get(b"a") is not None and cache.get(b"c") is not None
    cache.put(b"huge", page(*map(str, range(6))))  # over the whole budget: not kept
    assert cache.get(b"huge") is None
    assert (cache.hits, cache.misses) == (3, 2)


def test_who_takes_part() -> None:
    auto = AutoFlavor()
    assert not auto.caches_pages()  # parsing the first page also decides the format
    auto.first_request("https://api.anthropic.com/v1", Secret("k"))  # chosen by the host
    assert auto.caches_pages()
    assert not NewApiFlavor().caches_pages()  # a new order on every request
