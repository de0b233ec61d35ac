"""OpenRouter's price fields become price changes in the common unit; other fields and
price fields without a common unit stay field changes."""

from __future__ import annotations

from monitor.core.diff import diff_models
from monitor.core.records import ChangeType, ModelRecord
from monitor.events.prices import fields_as_prices

R = ModelRecord.build


def changes(before: dict[str, object], after: dict[str, object]) -> list[dict]:
    old, new = {"m": R("m", None, before)}, {"m": R("m", None, after)}
    return [c.to_json() for c in fields_as_prices(diff_models(old, new), old)]


def test_price_fields_fold_into_one_price_change_per_model() -> None:
    before = {"pricing.prompt": "0.0000025", "pricing.completion": "0.00001", "context": 128000}
    after = {"pricing.prompt": "0.000005", "pricing.completion": "0.00002", "context": 200000}
    found = changes(before, after)
    assert [c["type"] for c in found] == ["field_changed", "price_changed"]
    assert found[1]["before"] == {"input": "2.5", "output": "10"}
    assert found[1]["after"] == {"input": "5", "output": "20"}
    assert found[0]["field"] == "context"


def test_a_price_that_appears_or_goes_and_the_request_price() -> None:
    (gone,) = changes({"pricing.prompt": "0.000001", "pricing.request": "0.01"}, {})
    assert (gone["type"], gone["before"], gone["after"]) == (
        "price_changed",
        {"input": "1", "request": "0.01"},
        {},
    )


def test_fields_without_a_common_unit_stay_field_changes() -> None:
    (image,) = changes({"pricing.image": "0.001"}, {"pricing.image": "0.002"})
    assert image["type"] == "field_changed"
    (varies,) = changes({"pricing.prompt": "-1"}, {"pricing.prompt": "-1.0"})
    assert varies["type"] == "field_changed"  # both "varies": no price to compare


def test_nothing_to_fold_returns_the_changes_as_they_were() -> None:
    old = {"m": R("m", ["openai"])}
    new = {"m": R("m", ["openai", "openai-response"])}
    found = fields_as_prices(diff_models(old, new), old)
    assert [c.type for c in found] == [ChangeType.ENDPOINT_TYPES_CHANGED]
