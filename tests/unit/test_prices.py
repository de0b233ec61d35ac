"""Prices in one unit: new-api's /api/pricing read into money, canonical bytes, price
diffs, thresholds and the lines people read."""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.prices import (
    Price,
    PriceList,
    amount,
    canonical_json,
    decimal_text,
    describe,
    diff_group_ratios,
    diff_prices,
    from_canonical,
    money,
    openrouter_price,
    passes_threshold,
    percent_moves,
)
from monitor.core.records import Change, ChangeType, content_hash
from monitor.events import load_event_schema
from monitor.sources.base import InvalidResponse
from monitor.sources.openrouter import OpenRouterFlavor
from monitor.sources.pricing import PRICING_PATH, parse_new_api_pricing

D = Decimal
# Payloads carry decimal texts; the schema says what one looks like.
DECIMAL_PATTERN = re.compile(load_event_schema()["$defs"]["decimal"]["pattern"])


def body(*items: dict[str, Any], groups: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "success": True,
        "data": list(items),
        "group_ratio": {"default": 1} if groups is None else groups,
        "usable_group": {"default": "default"},
    }


def per_token(name: str, ratio: Any, completion: Any = 1, **extra: Any) -> dict[str, Any]:
    item = {
        "model_name": name,
        "quota_type": 0,
        "model_ratio": ratio,
        "model_price": 0,
        "completion_ratio": completion,
        "enable_groups": ["default"],
    }
    item.update(extra)
    return item


def per_request(name: str, price: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "quota_type": 1,
        "model_ratio": 37.5,
        "model_price": price,
        "completion_ratio": 1,
        "enable_groups": ["default"],
    }


def pairs(price: Price | None) -> tuple[tuple[str, str], ...] | None:
    return None if price is None else price.to_pairs()


def plist(groups: dict[str, str] | None = None, **prices: Price) -> PriceList:
    return PriceList(prices, {g: D(r) for g, r in (groups or {}).items()})


# Reading new-api's /api/pricing ----------------------------------------------------------


def test_pricing_path() -> None:
    assert PRICING_PATH == "/api/pricing"


def test_ratios_become_usd_per_million_tokens_exactly() -> None:
    listed = parse_new_api_pricing(
        body(
            per_token("gpt-4o", D("1.25"), 4, cache_ratio=D("0.1")),
            per_token("cheap", 0.1, 2),  # a float: 0.1 stays 0.1, not 0.1000000000000000055
            per_request("dall-e-3", D("0.04")),
            per_token("unpriced", D("37.5"), 1),
            groups={"default": 1, "vip": D("1.5")},
        )
    )
    assert pairs(listed.effective("gpt-4o", None)) == (
        ("input", "2.5"),
        ("output", "10"),
        ("cache_input", "0.25"),
    )
    assert pairs(listed.effective("cheap", None)) == (("input", "0.2"), ("output", "0.4"))
    assert pairs(listed.effective("dall-e-3", None)) == (("request", "0.04"),)
    assert listed.effective("unpriced", None) == Price.NONE
    assert Price.NONE.empty and pairs(Price.NONE) == ()
    # A group pays every component times its ratio, per-request prices included.
    assert pairs(listed.effective("gpt-4o", "vip")) == (
        ("input", "3.75"),
        ("output", "15"),
        ("cache_input", "0.375"),
    )
    assert pairs(listed.effective("dall-e-3", "vip")) == (("request", "0.06"),)
    assert listed.effective("unpriced", "vip") == Price.NONE


def test_sentinel_is_only_the_unset_pair_on_per_token_models() -> None:
    listed = parse_new_api_pricing(
        body(
            per_token("a", D("37.5"), D("1.0")),  # the sentinel, spelled otherwise
            per_token("b", D("37.5"), 2),  # a real (expensive) price
            per_token("c", 1, 1),
            per_request("d", 0),  # per request: ratios do not matter; free
        )
    )
    assert listed.prices["a"] == Price.NONE
    assert pairs(listed.prices["b"]) == (("input", "75"), ("output", "150"))
    assert pairs(listed.prices["c"]) == (("input", "2"), ("output", "2"))
    assert pairs(listed.prices["d"]) == (("request", "0"),)


@pytest.mark.parametrize(
    "value", [5, 5.0, D("5"), D("5.000"), "5", " 5 ", "5E0", "5.0e0"], ids=repr
)
def test_every_spelling_of_a_number_is_one_price(value: Any) -> None:
    listed = parse_new_api_pricing(body(per_token("m", value, value)))
    assert pairs(listed.prices["m"]) == (("input", "10"), ("output", "50"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "is a boolean"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (D("NaN"), "not a finite number"),
        (D("-Infinity"), "not a finite number"),
        (D("sNaN"), "not a finite number"),
        ("Infinity", "not a finite number"),
        (-1, "is negative"),
        (D("-0.5"), "is negative"),
        ("ten", "not a number"),
        ("", "not a number"),
        ([1], "not a number"),
        ({"v": 1}, "not a number"),
        (D("1E+41"), "out of range"),
        (10**50, "out of range"),
        (D("1E-41"), "out of range"),
    ],
    ids=repr,
)
def test_bad_numbers_name_the_model_and_the_field(value: Any, reason: str) -> None:
    with pytest.raises(InvalidResponse, match=rf"model 'gpt-4o': model_ratio .*{reason}"):
        parse_new_api_pricing(body(per_token("gpt-4o", value)))
    with pytest.raises(InvalidResponse, match=rf"model 'img': model_price .*{reason}"):
        parse_new_api_pricing(body(per_request("img", value)))
    with pytest.raises(InvalidResponse, match=rf"model 'c': cache_ratio .*{reason}"):
        parse_new_api_pricing(body(per_token("c", 1, 1, cache_ratio=value)))
    with pytest.raises(InvalidResponse, match=rf"group_ratio 'vip' .*{reason}"):
        parse_new_api_pricing(body(per_token("m", 1), groups={"vip": value}))


def test_zero_and_negative_zero_are_free() -> None:
    listed = parse_new_api_pricing(body(per_token("m", D("-0"), 0)))
    assert pairs(listed.prices["m"]) == (("input", "0"), ("output", "0"))


def test_only_the_numbers_the_quota_type_uses_are_read() -> None:
    item = per_request("img", 1)
    item["model_ratio"] = "garbage"
    item["completion_ratio"] = None
    assert pairs(parse_new_api_pricing(body(item)).prices["img"]) == (("request", "1"),)
    # A null cache_ratio is an absent one.
    listed = parse_new_api_pricing(body(per_token("m", 1, 1, cache_ratio=None)))
    assert listed.prices["m"].cache_input is None


def test_missing_quota_type_is_per_token() -> None:
    item = per_token("m", 1, 3)
    del item["quota_type"]
    assert pairs(parse_new_api_pricing(body(item)).prices["m"]) == (
        ("input", "2"),
        ("output", "6"),
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "the response is an array, not a JSON object"),
        (None, "the response is null, not a JSON object"),
        ({"success": False, "message": "no access"}, '"success": true: no access'),
        ({"data": []}, '"success": true'),
        ({"success": "true", "data": []}, '"success": true'),
        ({"success": True}, "data is null, not a list"),
        ({"success": True, "data": {}}, "data is an object, not a list"),
        ({"success": True, "data": [1]}, r"data\[0\] is a number, not a model object"),
        ({"success": True, "data": [{}]}, r"data\[0\] has no model_name"),
        ({"success": True, "data": [{"model_name": ""}]}, "an empty model_name"),
        ({"success": True, "data": [{"model_name": 7}]}, "a model_name that is a number"),
        (body(per_token("m", 1), per_token("m", 1)), "model 'm' appears twice"),
        (body(per_token("m", 1, quota_type=2)), "model 'm': quota_type is 2"),
        (body(per_token("m", 1, quota_type=True)), "model 'm': quota_type is True"),
        (body(per_token("m", 1, quota_type=D("sNaN"))), "model 'm': quota_type is Decimal"),
        (body(per_token("m", 1, quota_type=1.0)), "model 'm': quota_type is 1.0"),
        (body(per_token("m", 1, quota_type="1")), "model 'm': quota_type is '1'"),
        (body(per_token("m", 1), groups={1: 1}), "group_ratio has a key that is a number"),
        (body(per_token("m", None)), "model 'm': model_ratio is missing"),
        (body(per_token("m", 1, None)), "model 'm': completion_ratio is missing"),
        (body(per_request("m", None)), "model 'm': model_price is missing"),
        (body(per_token("m", 1), groups=[]), "group_ratio is an array, not an object"),
    ],
    ids=repr,
)
def test_invalid_bodies_say_what_is_wrong(bad: Any, message: str) -> None:
    with pytest.raises(InvalidResponse, match=message):
        parse_new_api_pricing(bad)


def test_absent_group_ratios_leave_every_group_unknown() -> None:
    listed = parse_new_api_pricing({"success": True, "data": [per_token("m", 1)]})
    assert listed.group_ratios == {}
    assert not listed.knows_group("default") and listed.knows_group(None)
    assert listed.effective("m", "default") is None
    assert pairs(listed.effective("m", None)) == (("input", "2"), ("output", "2"))


# Values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("2.50"), "2.5"),
        (D("1E+1"), "10"),
        (D("0.0000025"), "0.0000025"),
        (D("2.5E-6"), "0.0000025"),
        (D("0"), "0"),
        (D("0E-7"), "0"),
        (D("-0"), "0"),
        (D("0E+3"), "0"),
        (D("100"), "100"),
        (D("1E-30"), "0.000000000000000000000000000001"),
        (D("123456789E+20"), "12345678900000000000000000000"),
        (D("-1.50"), "-1.5"),
    ],
)
def test_decimal_text_is_plain_exact_and_minimal(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text
    assert DECIMAL_PATTERN.fullmatch(text)
    assert D(text) == value


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), D("-Infinity"), D("sNaN")])
def test_decimal_text_refuses_non_finite(value: Decimal) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        decimal_text(value)


def test_scaled_is_exact_beyond_28_digits() -> None:
    long = D("1.23456789012345678901234567890123")
    assert Price(input=long).scaled(D("1.5")).input == D("1.851851835185185183518518518351845")
    assert Price(request=D("0.04")).scaled(D("0")).to_pairs() == (("request", "0"),)
    assert Price.NONE.scaled(D(3)) == Price.NONE


def test_pairs_follow_the_fixed_order_and_read_back() -> None:
    price = Price(request=D("1"), cache_input=D("0.5"), output=D("4"), input=D("2.0"))
    assert price.to_pairs() == (
        ("input", "2"),
        ("output", "4"),
        ("cache_input", "0.5"),
        ("request", "1"),
    )
    assert Price.from_pairs(price.to_pairs()) == price
    with pytest.raises(ValueError, match="unknown or repeated"):
        Price.from_pairs((("prompt", "1"),))
    with pytest.raises(ValueError, match="unknown or repeated"):
        Price.from_pairs((("input", "1"), ("input", "2")))


@pytest.mark.parametrize("value", [D("-1"), D("NaN"), D("Infinity"), 1.5, "1"])
def test_prices_refuse_what_is_not_an_amount(value: Any) -> None:
    with pytest.raises(ValueError, match="finite, non-negative Decimal"):
        Price(input=value)
    with pytest.raises(ValueError, match="finite, non-negative Decimal"):
        PriceList({}, {"vip": value})
    with pytest.raises(ValueError, match="finite, non-negative Decimal"):
        Price(input=D(1)).scaled(value)


def test_amount_reads_floats_through_their_repr() -> None:
    assert amount(0.1) == D("0.1")
    assert amount(1e-7) == D("1E-7")
    assert amount(3) == D(3)
    assert amount(" 2.50 ") == D("2.5")


def test_price_lists_are_read_only_copies() -> None:
    prices = {"m": Price(input=D(1))}
    listed = PriceList(prices, {})
    prices["n"] = Price.NONE
    assert "n" not in listed.prices
    with pytest.raises(TypeError):
        listed.prices["n"] = Price.NONE  # type: ignore[index]


def test_effective_prices_of_unknown_models_and_groups() -> None:
    listed = plist({"vip": "2"}, m=Price(input=D(1)))
    assert listed.effective("other", None) is None
    assert listed.effective("other", "vip") is None
    assert listed.effective("m", None) == Price(input=D(1))
    assert listed.effective("m", "vip") == Price(input=D(2))
    # A group the list has no ratio for: the price is unknown, not the base price.
    assert listed.effective("m", "svip") is None
    assert listed.knows_group("vip") and not listed.knows_group("svip")


# Canonical bytes -------------------------------------------------------------------------


def test_canonical_form() -> None:
    listed = plist(
        {"vip": "1.50", "default": "1"},
        z=Price(input=D("2.50"), output=D("10")),
        a=Price(request=D("0.04")),
        u=Price.NONE,
    )
    assert canonical_json(listed) == (
        b'{"group_ratios":{"default":"1","vip":"1.5"},'
        b'"prices":{"a":{"request":"0.04"},"u":{},"z":{"input":"2.5","output":"10"}}}'
    )


def test_canonical_bytes_keep_odd_names() -> None:
    listed = plist({"\ud800grp": "1"}, **{"模型\udfff": Price(input=D(1))})
    data = canonical_json(listed)
    assert data.isascii()
    assert from_canonical(data) == listed


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"prices":{}}',
        b'{"prices":{},"group_ratios":{},"x":1}',
        b'{"prices":[],"group_ratios":{}}',
        b'{"prices":{"m":{"input":2}},"group_ratios":{}}',
        b'{"prices":{"m":{"prompt":"2"}},"group_ratios":{}}',
        b'{"prices":{"m":{"input":"-2"}},"group_ratios":{}}',
        b'{"prices":{},"group_ratios":{"g":"NaN"}}',
        b'{"prices":{},"group_ratios":{"g":1}}',
    ],
)
def test_from_canonical_refuses_what_canonical_json_never_writes(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one meaning
        from_canonical(data)


NAMES = st.text(min_size=1, max_size=12)
RATIOS = st.decimals(min_value=0, max_value=1000, places=4)
PRICING_ITEMS = st.dictionaries(
    NAMES,
    st.one_of(
        st.tuples(st.just(0), RATIOS, RATIOS, st.none() | RATIOS),
        st.tuples(st.just(1), RATIOS, st.none(), st.none()),
    ),
    max_size=15,
)


def wire_items(spec: dict[str, tuple[int, Any, Any, Any]]) -> list[dict[str, Any]]:
    items = []
    for name, (quota, first, second, cache) in spec.items():
        if quota == 1:
            items.append(per_request(name, first))
        elif cache is None:
            items.append(per_token(name, first, second))
        else:
            items.append(per_token(name, first, second, cache_ratio=cache))
    return items


@settings(max_examples=150, deadline=None)
@given(PRICING_ITEMS, st.dictionaries(NAMES, RATIOS, max_size=6), st.randoms())
def test_canonical_json_ignores_upstream_order_and_spelling(
    spec: dict[str, tuple[int, Any, Any, Any]], groups: dict[str, Decimal], rnd: random.Random
) -> None:
    items = wire_items(spec)
    first = parse_new_api_pricing(body(*items, groups=groups))

    shuffled = items[:]
    rnd.shuffle(shuffled)
    # Another spelling of every number: strings with trailing zeros, floats where exact.
    respelled = [
        {k: (f"{v}000" if isinstance(v, Decimal) and "." in str(v) else v) for k, v in i.items()}
        for i in shuffled
    ]
    group_keys = list(groups)
    rnd.shuffle(group_keys)
    second = parse_new_api_pricing(body(*respelled, groups={g: groups[g] for g in group_keys}))

    assert second == first
    assert canonical_json(second) == canonical_json(first)
    assert content_hash(canonical_json(second)) == content_hash(canonical_json(first))


def test_canonical_json_differs_when_a_price_does() -> None:
    one = parse_new_api_pricing(body(per_token("m", 1)))
    other = parse_new_api_pricing(body(per_token("m", D("1.0001"))))
    assert canonical_json(one) != canonical_json(other)


# Any finite non-negative Decimal, tiny and huge exponents included.
AMOUNTS = st.one_of(
    st.sampled_from([D("1E-30"), D("123456789E+20"), D("0"), D("0E-9"), D("2.50"), D("-0")]),
    st.builds(
        lambda digits, exponent: Decimal((0, digits, exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple),
        st.integers(-90, 90),
    ),
    st.decimals(min_value=0, allow_nan=False, allow_infinity=False),
)
PRICES = st.builds(
    Price,
    input=st.none() | AMOUNTS,
    output=st.none() | AMOUNTS,
    cache_input=st.none() | AMOUNTS,
    request=st.none() | AMOUNTS,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NAMES, PRICES, max_size=8), st.dictionaries(NAMES, AMOUNTS, max_size=5))
def test_canonical_json_round_trips_exactly(
    prices: dict[str, Price], groups: dict[str, Decimal]
) -> None:
    listed = PriceList(prices, groups)
    data = canonical_json(listed)
    back = from_canonical(data)
    assert back == listed
    assert canonical_json(back) == data
    for model, price in prices.items():
        for name, value in back.prices[model].to_map().items():
            assert value == getattr(price, name)
            assert DECIMAL_PATTERN.fullmatch(decimal_text(value))
    for text in json.loads(data)["group_ratios"].values():
        assert DECIMAL_PATTERN.fullmatch(text)


# Diffs ------------------------------------------------------------------------------------


def test_a_respelled_price_is_no_change() -> None:
    before = parse_new_api_pricing(body(per_token("m", D("1.250")), groups={"vip": "1.50"}))
    after = parse_new_api_pricing(body(per_token("m", "1.25"), groups={"vip": D("1.5")}))
    assert diff_prices(before, after, None) == []
    assert diff_prices(before, after, "vip") == []
    assert diff_group_ratios(before, after) == []


def test_price_changes_carry_pairs_for_the_group() -> None:
    before = plist({"vip": "2"}, m=Price(input=D("2.5"), output=D("10")), same=Price(input=D(1)))
    after = plist({"vip": "2"}, m=Price(input=D("5"), output=D("10")), same=Price(input=D(1)))
    assert diff_prices(before, after, None) == [
        Change(
            ChangeType.PRICE_CHANGED,
            "m",
            before=(("input", "2.5"), ("output", "10")),
            after=(("input", "5"), ("output", "10")),
        )
    ]
    (change,) = diff_prices(before, after, "vip")
    assert (change.group, change.before, change.after) == (
        "vip",
        (("input", "5"), ("output", "20")),
        (("input", "10"), ("output", "20")),
    )
    assert change.to_json()["before"] == {"input": "5", "output": "20"}


def test_gaining_or_losing_a_price_is_a_change_but_model_presence_is_not() -> None:
    before = plist(unset=Price.NONE, priced=Price(input=D(2)), gone=Price(input=D(1)))
    after = plist(unset=Price(input=D(2)), priced=Price.NONE, new=Price(input=D(1)))
    changes = diff_prices(before, after, None)
    assert [(c.model, c.before, c.after) for c in changes] == [
        ("priced", (("input", "2"),), ()),
        ("unset", (), (("input", "2"),)),
    ]
    assert changes[1].to_json()["before"] == {}


def test_diffs_are_sorted_by_model() -> None:
    names = [f"m{i:02d}" for i in range(30)]
    random.Random(3).shuffle(names)
    before = PriceList({n: Price(input=D(1)) for n in names}, {})
    after = PriceList({n: Price(input=D(2)) for n in reversed(names)}, {})
    assert [c.model for c in diff_prices(before, after, None)] == sorted(names)


def test_a_group_either_list_cannot_price_has_no_changes() -> None:
    before = plist({"vip": "2"}, m=Price(input=D(1)))
    after = plist({}, m=Price(input=D(3)))
    assert diff_prices(before, after, "vip") == []
    assert len(diff_prices(before, after, None)) == 1


def test_group_ratio_changes() -> None:
    before = plist({"vip": "1", "svip": "0.8", "gone": "2", "same": "1"})
    after = plist({"vip": "1.5", "svip": "0.80", "same": "1.0", "new": "3"})
    assert diff_group_ratios(before, after) == [
        Change(ChangeType.GROUP_RATIO_CHANGED, "", group="vip", before="1", after="1.5")
    ]
    assert diff_group_ratios(before, after)[0].to_json() == {
        "type": "group_ratio_changed",
        "tokens": [],
        "group": "vip",
        "before": "1",
        "after": "1.5",
    }
    # The ratio moves every price of the group, each once.
    moved = plist({"vip": "1.5"}, m=Price(input=D(2)))
    still = plist({"vip": "1"}, m=Price(input=D(2)))
    assert [c.after for c in diff_prices(still, moved, "vip")] == [(("input", "3"),)]
    assert diff_prices(still, moved, None) == []


# Thresholds ---------------------------------------------------------------------------------


def price_change(before: dict[str, str], after: dict[str, str]) -> Change:
    return Change(
        ChangeType.PRICE_CHANGED, "m", before=tuple(before.items()), after=tuple(after.items())
    )


@pytest.mark.parametrize(
    ("before", "after", "passes"),
    [
        ({"input": "2"}, {"input": "2.1"}, True),  # exactly 5%
        ({"input": "2"}, {"input": "1.9"}, True),  # exactly -5%
        ({"input": "2"}, {"input": "2.0999"}, False),
        ({"input": "2"}, {"input": "1.9001"}, False),
        ({"input": "2", "output": "8"}, {"input": "2.01", "output": "9"}, True),  # any moves
        ({"input": "2", "output": "8"}, {"input": "2.01", "output": "8.01"}, False),
        ({"input": "2"}, {"input": "2", "cache_input": "0.2"}, True),  # appeared
        ({"input": "2", "request": "1"}, {"input": "2"}, True),  # disappeared
        ({"input": "0"}, {"input": "0.0001"}, True),  # from zero
        ({}, {"input": "2"}, True),  # price set
        ({"input": "2"}, {"input": "2.0"}, False),  # no move at all
        ({"input": "1E-30"}, {"input": "1.04E-30"}, False),
        ({"input": "1E-30"}, {"input": "1.05E-30"}, True),
    ],
)
def test_thresholds_pass_moves_of_at_least_the_minimum(
    before: dict[str, str], after: dict[str, str], passes: bool
) -> None:
    assert passes_threshold(price_change(before, after), D(5)) is passes


def test_thresholds_on_group_ratios_and_other_changes() -> None:
    ratio = Change(ChangeType.GROUP_RATIO_CHANGED, "", group="vip", before="1", after="1.04")
    assert not passes_threshold(ratio, D(5))
    assert passes_threshold(ratio, D(4))
    assert passes_threshold(ratio, D(0))
    field = Change(ChangeType.FIELD_CHANGED, "m", field="x", before=1, after=1.0001)
    assert passes_threshold(field, D(5))


def test_percent_moves() -> None:
    change = price_change(
        {"input": "2", "output": "0", "request": "1"}, {"input": "3", "output": "1"}
    )
    assert percent_moves(change) == {"input": D(50), "output": None, "request": None}
    ratio = Change(ChangeType.GROUP_RATIO_CHANGED, "", group="g", before="1.5", after="1")
    assert percent_moves(ratio)["ratio"] == D(-100) / D(3)
    with pytest.raises(ValueError, match="not a price change"):
        percent_moves(Change(ChangeType.ADDED, "m"))


# Lines for people ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("2.5"), "$2.50"),
        (D("10"), "$10.00"),
        (D("0"), "$0.00"),
        (D("0.0375"), "$0.0375"),
        (D("0.10"), "$0.10"),
        (D("1E-7"), "$0.0000001"),
        (D("1234567.891"), "$1234567.891"),
    ],
)
def test_money(value: Decimal, text: str) -> None:
    assert money(value) == text


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            price_change({"input": "2.5", "output": "10"}, {"input": "5", "output": "10"}),
            "m input $2.50 -> $5.00 per 1M tokens (+100%)",
        ),
        (
            price_change({"input": "2.5", "output": "10"}, {"input": "5", "output": "20"}),
            "m input $2.50 -> $5.00, output $10.00 -> $20.00 per 1M tokens (+100%)",
        ),
        (
            price_change({"input": "1", "output": "4"}, {"input": "2", "output": "6"}),
            "m input $1.00 -> $2.00, output $4.00 -> $6.00 per 1M tokens"
            " (input +100%, output +50%)",
        ),
        (
            price_change({"input": "1"}, {"input": "2", "cache_input": "0.0375"}),
            "m input $1.00 -> $2.00, cache_input none -> $0.0375 per 1M tokens (input +100%)",
        ),
        (
            price_change({"input": "0"}, {"input": "0.5"}),
            "m input $0.00 -> $0.50 per 1M tokens",
        ),
        (
            price_change({"request": "0.04"}, {"request": "0.03"}),
            "m request $0.04 -> $0.03 per request (-25%)",
        ),
        (
            price_change({"input": "3"}, {"input": "2"}),
            "m input $3.00 -> $2.00 per 1M tokens (-33.33%)",
        ),
        (
            price_change({"input": "1000000"}, {"input": "1000000.01"}),
            "m input $1000000.00 -> $1000000.01 per 1M tokens (+<0.01%)",
        ),
        (
            price_change({}, {"input": "2.5", "output": "10", "request": "0.01"}),
            "m price set: input $2.50, output $10.00 per 1M tokens, request $0.01 per request",
        ),
        (
            price_change({"request": "0.04"}, {}),
            "m price no longer set (was request $0.04 per request)",
        ),
        (
            Change(
                ChangeType.PRICE_CHANGED,
                "gpt-4o",
                before=(("input", "2.5"),),
                after=(("input", "5"),),
                group="vip",
            ),
            "gpt-4o (group vip) input $2.50 -> $5.00 per 1M tokens (+100%)",
        ),
        (
            Change(ChangeType.GROUP_RATIO_CHANGED, "", group="vip", before="1", after="1.5"),
            "group vip ratio 1 -> 1.5 (+50%)",
        ),
        (
            Change(ChangeType.GROUP_RATIO_CHANGED, "", group="free", before="0", after="1"),
            "group free ratio 0 -> 1",
        ),
    ],
)
def test_describe(change: Change, line: str) -> None:
    assert describe(change) == line


def test_describe_huge_moves_without_exponents() -> None:
    line = describe(price_change({"input": "1E-30"}, {"input": "1"}))
    assert line == (
        "m input $0.000000000000000000000000000001 -> $1.00 per 1M tokens"
        " (+100000000000000000000000000000000%)"  # 28 significant digits
    )


def test_describe_refuses_other_changes() -> None:
    with pytest.raises(ValueError, match="not a price change"):
        describe(Change(ChangeType.REMOVED, "m"))


# OpenRouter -------------------------------------------------------------------------------


def test_openrouter_prices_per_million_tokens() -> None:
    record = OpenRouterFlavor().record(
        "openai/gpt-4o",
        {
            "pricing": {
                "prompt": "0.0000025",
                "completion": "0.00001",
                "input_cache_read": "0.00000125",
                "request": "0",
                "image": "0.003613",
            }
        },
    )
    assert openrouter_price(record.field_map()) == Price(
        input=D("2.5"), output=D("10"), cache_input=D("1.25"), request=D("0")
    )


@pytest.mark.parametrize("value", ["-1", "-0.5", "n/a", None, True, "NaN", "1e999999"])
def test_openrouter_variable_or_unreadable_prices_are_none(value: Any) -> None:
    fields = {"pricing.prompt": value, "pricing.completion": "0.000002"}
    assert openrouter_price(fields) == Price(output=D(2))
    assert openrouter_price({}) == Price.NONE


# Robustness --------------------------------------------------------------------------------

LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff\udbff", "\udfff", "a\udc00b"])
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # nan and the infinities included
    st.decimals(),  # parse_float=Decimal: also NaN, sNaN, huge exponents
    st.text(max_size=10),
    LONE_SURROGATES,
    st.sampled_from(["1", "-1", "37.5", "1e999999", "NaN", " 2.5 ", "0x10", "1_0"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | LONE_SURROGATES, children, max_size=4)
    ),
    max_leaves=20,
)
NUMBERISH = st.one_of(
    RATIOS,
    st.floats(),
    st.integers(-3, 10**45),
    st.sampled_from(
        [None, True, "2.5", "-1", "1e999999", "NaN", "x", D("37.5"), D("-0"), D("sNaN")]
    ),
)
# Near-valid bodies, so that the checks deep inside items run too.
ITEMS = st.fixed_dictionaries(
    {"model_name": st.sampled_from(["a", "b", "\ud800"]) | NAMES},
    optional={
        "quota_type": st.sampled_from([0, 1, 1, 2, None, True, "1", 1.0, D("sNaN")]),
        "model_ratio": NUMBERISH,
        "model_price": NUMBERISH,
        "completion_ratio": NUMBERISH,
        "cache_ratio": NUMBERISH,
        "enable_groups": JSON_VALUES,
    },
)
NEAR_VALID = st.fixed_dictionaries(
    {
        "success": st.sampled_from([True] * 8 + [False, None, "true"]),
        "data": st.lists(ITEMS, max_size=5) | st.lists(ITEMS | JSON_VALUES, max_size=3),
        "group_ratio": st.dictionaries(st.text(max_size=4), NUMBERISH, max_size=3) | JSON_VALUES,
    }
)


def check_robust(value: object) -> PriceList | None:
    """Parse `value`: a price list that survives canonical bytes, or a refusal that says
    why (None). Any other exception fails the test."""
    outcome: PriceList | InvalidResponse
    try:
        outcome = parse_new_api_pricing(value)
    except InvalidResponse as error:
        outcome = error
    if isinstance(outcome, InvalidResponse):
        assert str(outcome), "a refusal says why"
        return None
    listed = outcome
    assert isinstance(listed, PriceList)
    assert from_canonical(canonical_json(listed)) == listed
    return listed


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_any_json_is_a_price_list_or_invalid_response(value: object) -> None:
    check_robust(value)


@settings(max_examples=500, deadline=None)
@given(NEAR_VALID)
def test_near_valid_bodies_are_a_price_list_or_invalid_response(value: object) -> None:
    check_robust(value)


@settings(max_examples=100, deadline=None)
@given(PRICING_ITEMS, st.dictionaries(NAMES, RATIOS, max_size=4))
def test_valid_bodies_parse_and_survive_a_json_round_trip(
    spec: dict[str, tuple[int, Any, Any, Any]], groups: dict[str, Decimal]
) -> None:
    wire = json.dumps(body(*wire_items(spec), groups=groups), default=str)
    listed = check_robust(json.loads(wire, parse_float=Decimal))
    assert listed is not None
    assert set(listed.prices) == set(spec)
