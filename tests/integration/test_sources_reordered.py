"""A list recognised in another order parses exactly as a full parse would.

The bodies are written here with the standard library the way new-api's Go encoder
writes them (no spaces), and served by a plain HTTP server; hostile strings (braces,
brackets, quotes, backslashes, commas) try to make the item split lie.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config.model import MonitorSettings, Secret, SourceConfig, TokenConfig
from monitor.core.records import FetchError, FetchOk
from monitor.sources import reordered
from monitor.sources.base import InvalidResponse, Request
from monitor.sources.caches import ParseCaches
from monitor.sources.fetch import fetch_models
from monitor.sources.openai_compat import NewApiFlavor
from tests.support.misbehaving import BodyServer, serving_bodies

# Shared by the checks of this module, as a checker shares its caches between cycles.
CACHES = ParseCaches()


@pytest.fixture(scope="module")
def server() -> Iterator[BodyServer]:
    with serving_bodies() as served:
        yield served


def _go(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _body(items: list[dict]) -> bytes:
    return _go({"data": items, "object": "list", "success": True})


def _full_parse(body: bytes) -> dict | str:
    try:
        page = NewApiFlavor().parse(json.loads(body), Request("http://x/v1/models"))
    except InvalidResponse as exc:
        return f"invalid: {exc}"
    return {r.id: r for r in page.models}


def _fetched(server: BodyServer, body: bytes) -> dict | str:
    server.body = body
    source = SourceConfig("gw", server.base_url, "new-api")
    result = fetch_models(
        source, TokenConfig("t", "gw", Secret("sk-reorder-0000")), MonitorSettings(), CACHES
    )
    if isinstance(result, FetchError):
        return f"invalid: {result.message}"
    assert isinstance(result, FetchOk)
    return dict(result.models)


tricky = st.text(alphabet='ab{}[],:"\\ 中', max_size=8)
items = st.lists(
    st.fixed_dictionaries(
        {"id": tricky, "owned_by": tricky, "supported_endpoint_types": st.lists(tricky, max_size=2)}
    ),
    max_size=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(models=items, data=st.data())
def test_any_order_of_any_list_parses_as_a_full_parse(
    server: BodyServer, models: list, data
) -> None:
    first = _body(models)
    expected_first = _full_parse(first)
    got_first = _fetched(server, first)
    assert (
        got_first == expected_first
        or isinstance(expected_first, str) == isinstance(got_first, str) is True
    )
    order = data.draw(st.permutations(models))
    again = _body(list(order))
    expected = _full_parse(again)
    got = _fetched(server, again)
    if isinstance(expected, str):
        assert isinstance(got, str)  # invalid either way (a duplicate id names itself)
    else:
        assert got == expected


def test_a_reordered_list_is_not_decoded_again(server: BodyServer) -> None:
    models = [
        {"id": f"m-{i}", "owned_by": "x", "supported_endpoint_types": ["openai"]} for i in range(50)
    ]
    _fetched(server, _body(models))
    hits = CACHES.pages.hits
    assert _fetched(server, _body(models[::-1])) == _full_parse(_body(models))
    assert CACHES.pages.hits == hits + 1


def test_tokens_that_get_a_list_parsed_before_share_one_read_only_mapping(
    server: BodyServer,
) -> None:
    models = [
        {"id": f"s-{i}", "owned_by": "x", "supported_endpoint_types": ["openai"]} for i in range(20)
    ]
    source = SourceConfig("gw", server.base_url, "new-api")
    caches = ParseCaches()
    results = []
    for n, order in enumerate((models, models[::-1], models[5:] + models[:5])):
        server.body = _body(order)
        token = TokenConfig(f"t{n}", "gw", Secret(f"sk-share-{n:04d}"))
        result = fetch_models(source, token, MonitorSettings(), caches)
        assert isinstance(result, FetchOk)
        results.append(result.models)
    assert dict(results[0]) == _full_parse(_body(models))
    assert results[1] is results[2]  # recognised: the cached page's index
    with pytest.raises(TypeError):
        results[1]["s-0"] = results[1]["s-1"]  # type: ignore[index]
    assert dict(results[1]) == dict(results[0])


def test_split_and_key() -> None:
    assert reordered.split(b'{"data":[1,2]}', b"data") is None  # not objects
    assert reordered.split(b'{"data":[],"data":[]}', b"data") is None  # two lists
    found = reordered.split(b'{"data":[{"id":"a"},{"id":"b"}],"success":true}', b"data")
    assert found is not None and found.items == [b'"id":"a"', b'"id":"b"']
    assert found.matches([{"id": "a"}, {"id": "b"}])
    swapped = reordered.split(b'{"data":[{"id":"b"},{"id":"a"}],"success":true}', b"data")
    assert swapped is not None and swapped.key("c") == found.key("c") is not None
    assert swapped.key("c") != found.key("another request")
    other = reordered.split(b'{"data":[{"id":"b"},{"id":"a"}],"success":false}', b"data")
    assert other is not None and other.key("c") != found.key("c")
    longer = reordered.split(b'{"data":[{"id":"b"},{"id":"a"},{"id":"c"}],"success":true}', b"data")
    assert longer is not None and longer.key("c") != found.key("c")


def test_a_list_with_a_repeated_item_has_no_key() -> None:
    # [a, a, b] and [a, b, b] hold the same set of item texts: neither may stand for the other.
    twice_a = reordered.split(b'{"data":[{"id":"a"},{"id":"a"},{"id":"b"}]}', b"data")
    twice_b = reordered.split(b'{"data":[{"id":"a"},{"id":"b"},{"id":"b"}]}', b"data")
    assert twice_a is not None and twice_a.key("c") is None
    assert twice_b is not None and twice_b.key("c") is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[{"id":"a},{"}]}',  # `},{` inside a string
        b'{"data":[{"id":"a","x":[{"y":1},{"z":2}]}]}',  # between nested objects
        b'{"data":[{"id":"a"}, {"id":"b"}]}',  # a space between items
    ],
)
def test_items_that_are_not_objects_of_their_own_are_never_trusted(body: bytes) -> None:
    found = reordered.split(body, b"data")
    assert found is not None
    assert not found.matches(json.loads(body)["data"])
