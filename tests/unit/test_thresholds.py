"""Per-source field policy: ignored fields and thresholds for small numeric moves."""

from __future__ import annotations

from monitor.core.records import Change, ChangeType, ModelRecord, percent_change
from monitor.events.guard import GuardState, observe
from monitor.events.thresholds import FieldPolicy

POLICY = FieldPolicy(ignore=("owned_by",), thresholds=(("pricing.*", 0.01),))


def model(prompt: str, owner: str = "openai", context: int = 128000) -> dict[str, ModelRecord]:
    fields = {"pricing.prompt": prompt, "owned_by": owner, "context_window": context}
    return {"m": ModelRecord.build("m", None, fields)}


def test_ignored_fields_are_dropped() -> None:
    (record,) = POLICY.strip(model("0.000003")).values()
    assert "owned_by" not in record.field_map()
    assert record.field_map()["pricing.prompt"] == "0.000003"


def test_small_moves_are_settled_against_what_was_reported() -> None:
    confirmed = POLICY.strip(model("1.000"))
    view = GuardState(confirmed)
    # Three moves of 0.5% each: none alone is worth telling, together they are.
    reported = []
    for price in ("1.005", "1.008", "1.012", "1.012"):
        seen = POLICY.settle(view.confirmed, POLICY.strip(model(price)))
        view, changes = observe(view, seen, 2)
        reported += changes
    (change,) = reported
    assert (change.field, change.before, change.after) == ("pricing.prompt", "1.000", "1.012")
    assert change.to_json()["percent"] == 1.2


def test_fields_without_a_threshold_always_count() -> None:
    confirmed = POLICY.strip(model("1.0", context=128000))
    seen = POLICY.settle(confirmed, POLICY.strip(model("1.0", context=128001)))
    assert seen["m"].field_map()["context_window"] == 128001


def test_owner_changes_are_never_reported_when_ignored() -> None:
    view = GuardState(POLICY.strip(model("1.0", owner="openai")))
    for _ in range(3):
        seen = POLICY.settle(view.confirmed, POLICY.strip(model("1.0", owner="azure")))
        view, changes = observe(view, seen, 1)
        assert changes == []


def test_percent_in_payloads() -> None:
    assert percent_change("0.000003", "0.0000025") == -16.67
    assert percent_change(128000, 200000) == 56.25
    assert percent_change(None, 5) is None
    assert percent_change("0", "1") is None
    change = Change(ChangeType.FIELD_CHANGED, "m", field="display_name", before="A", after="B")
    assert "percent" not in change.to_json()
