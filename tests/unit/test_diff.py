"""diff_models / diff_record / apply_changes: set semantics, order, and exact replay."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.diff import apply_changes, diff_models, diff_record, sort_changes
from monitor.core.records import Change, ChangeType, Encodings, ModelRecord, canonical_json

R = ModelRecord.build


def models(*records: ModelRecord) -> dict[str, ModelRecord]:
    return {record.id: record for record in records}


# Unit tests ----------------------------------------------------------------------------


def test_identical_lists_in_any_order_have_no_changes() -> None:
    records = [R(f"m{i}", ["openai", "anthropic"], {"owned_by": "x"}) for i in range(50)]
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    assert diff_models(models(*records), models(*shuffled)) == []


def test_endpoint_type_order_is_meaningless() -> None:
    before = models(R("gpt-4o", ["openai", "openai-response"]))
    after = models(R("gpt-4o", ["openai-response", "openai"]))
    assert diff_models(before, after) == []


def test_added_and_removed_carry_their_records() -> None:
    old, new = R("gpt-3.5", ["openai"]), R("gpt-5", ["openai"], {"owned_by": "openai"})
    assert diff_models(models(old), models(new)) == [
        Change(ChangeType.REMOVED, "gpt-3.5", record=old),
        Change(ChangeType.ADDED, "gpt-5", record=new),
    ]


def test_endpoint_types_gained_and_lost_are_sorted() -> None:
    before = R("m", ["openai", "gemini", "anthropic"])
    after = R("m", ["openai", "openai-response", "embeddings"])
    assert diff_record(before, after) == [
        Change(
            ChangeType.ENDPOINT_TYPES_CHANGED,
            "m",
            gained=("embeddings", "openai-response"),
            lost=("anthropic", "gemini"),
        )
    ]


def test_one_field_change_per_differing_field_absent_side_is_none() -> None:
    before = R("m", None, {"context_window": 128000, "owned_by": "openai", "dropped": "x"})
    after = R("m", None, {"context_window": 200000, "owned_by": "openai", "new": [1, 2]})
    assert diff_record(before, after) == [
        Change(ChangeType.FIELD_CHANGED, "m", field="context_window", before=128000, after=200000),
        Change(ChangeType.FIELD_CHANGED, "m", field="dropped", before="x", after=None),
        Change(ChangeType.FIELD_CHANGED, "m", field="new", before=None, after=(1, 2)),
    ]


def test_output_is_sorted_by_model_then_type_then_field() -> None:
    before = models(R("b", ["x"], {"f2": 1, "f1": 1}), R("c"), R("a0", ["x"]))
    after = models(R("b", ["y"], {"f2": 2, "f1": 2}), R("a"), R("d"), R("a0", ["x"]))
    changes = diff_models(before, after)
    assert [(c.model, c.type, c.field) for c in changes] == [
        ("a", ChangeType.ADDED, None),
        ("b", ChangeType.ENDPOINT_TYPES_CHANGED, None),
        ("b", ChangeType.FIELD_CHANGED, "f1"),
        ("b", ChangeType.FIELD_CHANGED, "f2"),
        ("c", ChangeType.REMOVED, None),
        ("d", ChangeType.ADDED, None),
    ]
    assert sort_changes(reversed(changes)) == changes


def test_none_endpoint_types_count_as_empty_set() -> None:
    [change] = diff_record(R("m", None), R("m", ["openai"]))
    assert (change.gained, change.lost) == (("openai",), ())
    [change] = diff_record(R("m", ["openai"]), R("m", None))
    assert (change.gained, change.lost) == ((), ("openai",))
    # None and [] both say "no endpoint types": not a change.
    assert diff_record(R("m", None), R("m", [])) == []
    assert diff_record(R("m", []), R("m", None)) == []


def test_switch_between_none_and_a_set_replays_exactly_but_stays_out_of_payloads() -> None:
    for old, new in [(R("m", None), R("m", ["a"])), (R("m", ["a", "b"]), R("m", None))]:
        changes = diff_models(models(old), models(new))
        assert apply_changes(models(old), changes) == models(new)
        payload = changes[0].to_json()
        assert set(payload) == {"type", "model", "tokens", "gained", "lost"}


def test_ordinary_endpoint_changes_group_regardless_of_prior_set() -> None:
    # Two tokens with different prior sets gaining the same type: the same change.
    a = diff_record(R("m", ["openai"]), R("m", ["openai", "openai-response"]))
    b = diff_record(R("m", ["openai", "gemini"]), R("m", ["openai", "gemini", "openai-response"]))
    assert [c.key() for c in a] == [c.key() for c in b]


def test_field_present_as_none_equals_absent() -> None:
    assert diff_record(R("m", None, {"x": None}), R("m", None, {})) == []


def test_apply_changes_is_strict() -> None:
    base = models(R("a"))
    with pytest.raises(ValueError, match="already present"):
        apply_changes(base, [Change(ChangeType.ADDED, "a", record=R("a"))])
    with pytest.raises(ValueError, match="not present"):
        apply_changes(base, [Change(ChangeType.REMOVED, "b", record=R("b"))])
    with pytest.raises(ValueError, match="not present"):
        apply_changes(base, [Change(ChangeType.FIELD_CHANGED, "b", field="x", after=1)])


def test_apply_changes_does_not_mutate_its_input() -> None:
    base = models(R("a", ["x"], {"f": 1}))
    snapshot = dict(base)
    apply_changes(base, diff_models(base, models(R("b"))))
    assert base == snapshot


def test_same_object_short_cut() -> None:
    base = models(R("a"))
    assert diff_models(base, base) == []


# Properties ----------------------------------------------------------------------------

IDS = ["gpt-4o", "gpt-5", "claude-3", "gemini-pro", "o1", "embed-3", "plain-1", "plain-2"]
FIELD_NAMES = ["context_window", "owned_by", "pricing", "max_output"]
# Field values as flavors produce them: never None (None and absent mean the same).
field_values = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["openai", "claude", ""]),
    st.booleans(),
    st.lists(st.integers(0, 2), max_size=2),
    st.fixed_dictionaries({"input": st.integers(0, 2)}),
)
type_sets = st.frozensets(st.sampled_from(["openai", "anthropic", "gemini", "embeddings"]))


def _record(
    model_id: str, types: frozenset[str] | None, fields: dict, free_none: bool
) -> ModelRecord:
    if not free_none:  # None-ness fixed per id, as a flavor fixes it
        types = None if model_id.startswith("plain") else (types or frozenset())
    return R(model_id, types, fields)


def records(free_none: bool = False) -> st.SearchStrategy[ModelRecord]:
    return st.builds(
        _record,
        st.sampled_from(IDS),
        st.none() | type_sets,
        st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=3),
        st.just(free_none),
    )


def snapshots(free_none: bool = False) -> st.SearchStrategy[dict[str, ModelRecord]]:
    """Up to eight models; ids collide often across snapshots, so every change type shows."""
    return st.lists(records(free_none), max_size=len(IDS)).map(
        lambda rs: {record.id: record for record in rs}
    )


def _without_spelling_only_switches(
    before: dict[str, ModelRecord], after: dict[str, ModelRecord]
) -> dict[str, ModelRecord]:
    """Replace None <-> empty-set switches (no change by design) by the before spelling."""
    out = dict(after)
    for model_id, new in after.items():
        old = before.get(model_id)
        if old is None or (old.endpoint_types is None) == (new.endpoint_types is None):
            continue
        if not (old.endpoint_types or new.endpoint_types):
            out[model_id] = ModelRecord(model_id, old.endpoint_types, new.fields)
    return out


@settings(max_examples=200, deadline=None)
@given(snapshots(free_none=True), snapshots(free_none=True))
def test_replaying_the_diff_reproduces_after_exactly(
    before: dict[str, ModelRecord], after: dict[str, ModelRecord]
) -> None:
    after = _without_spelling_only_switches(before, after)
    changes = diff_models(before, after)
    assert apply_changes(before, changes) == after
    assert changes == sort_changes(changes)
    assert (changes == []) == (before == after)


@settings(max_examples=100, deadline=None)
@given(snapshots(), snapshots(), st.randoms(use_true_random=False))
def test_diff_ignores_insertion_order(
    before: dict[str, ModelRecord], after: dict[str, ModelRecord], rnd: random.Random
) -> None:
    items = list(after.items())
    rnd.shuffle(items)
    assert diff_models(before, dict(items)) == diff_models(before, after)


@settings(max_examples=100, deadline=None)
@given(snapshots(), snapshots())
def test_changes_are_unique_per_model_type_field(
    before: dict[str, ModelRecord], after: dict[str, ModelRecord]
) -> None:
    keys = [(c.model, c.type, c.field) for c in diff_models(before, after)]
    assert len(keys) == len(set(keys))


@settings(max_examples=200, deadline=None)
@given(snapshots(free_none=True), snapshots(free_none=True))
def test_canonical_json_is_the_plain_encoding_of_the_sorted_list(
    first: dict[str, ModelRecord], second: dict[str, ModelRecord]
) -> None:
    # Per-record encodings are cached by identity; with 1 == 1.0 == True among the field
    # values, equal records must never borrow each other's bytes.
    encodings = Encodings(limit=5)  # small: the table also starts again on the way
    for snapshot in (first, second, first, {**first, **second}):
        expected = json.dumps(
            [snapshot[key].to_json() for key in sorted(snapshot)],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        assert canonical_json(snapshot) == expected
        assert canonical_json(snapshot, encodings) == expected
