"""The flap guard: additions at once, losses and changes only once confirmed."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.diff import apply_changes, diff_models
from monitor.core.records import Change, ChangeType, ModelRecord
from monitor.events.guard import GuardState, Pending, baseline, observe

R = ModelRecord.build


def models(*records: ModelRecord) -> dict[str, ModelRecord]:
    return {record.id: record for record in records}


def run(
    snapshots: list[dict[str, ModelRecord]], confirm_checks: int
) -> tuple[GuardState, list[list[Change]]]:
    """Baseline on the first snapshot, observe the rest; the changes of each check."""
    view = baseline(snapshots[0])
    reported = []
    for seen in snapshots[1:]:
        view, changes = observe(view, seen, confirm_checks)
        reported.append(changes)
    return view, reported


A = R("a", ["openai"], {"owned_by": "openai"})
B = R("b", ["openai", "anthropic"])
C = R("c", ["embeddings"])


# Unit tests ----------------------------------------------------------------------------


def test_baseline_is_silent_and_confirms_everything() -> None:
    view = baseline(models(A, B))
    assert view.confirmed == models(A, B)
    assert view.pending == {}


def test_new_model_is_reported_at_once() -> None:
    view, [changes] = run([models(A), models(A, C)], confirm_checks=3)
    assert changes == [Change(ChangeType.ADDED, "c", record=C)]
    assert view.confirmed == models(A, C)


def test_removal_needs_confirm_checks_consecutive_absences() -> None:
    view, reported = run([models(A, B), models(A), models(A), models(A)], confirm_checks=3)
    assert reported[:2] == [[], []]
    assert reported[2] == [Change(ChangeType.REMOVED, "b", record=B)]
    assert view.confirmed == models(A)
    assert view.pending == {}


def test_pending_counts_only_consecutive_checks() -> None:
    view, reported = run([models(A, B), models(A), models(A, B), models(A)], confirm_checks=2)
    assert reported == [[], [], []]
    assert view.pending == {"b": Pending(None, 1)}


def test_model_missing_every_other_check_is_never_reported() -> None:
    snaps = [models(A, B) if i % 2 == 0 else models(A) for i in range(20)]
    _, reported = run(snaps, confirm_checks=2)
    assert all(changes == [] for changes in reported)


def test_endpoint_types_empty_for_one_check_is_not_reported() -> None:
    blank = R("b", [])
    _, reported = run([models(A, B), models(A, blank), models(A, B)], confirm_checks=2)
    assert reported == [[], []]


def test_a_change_is_reported_once_seen_the_same_way_twice() -> None:
    b1 = R("b", ["openai", "anthropic"], {"context_window": 1})
    b2 = R("b", ["openai"], {"context_window": 2})
    b3 = R("b", ["openai", "gemini"], {"context_window": 3})
    view, reported = run([models(b1), models(b2), models(b3), models(b3)], confirm_checks=2)
    assert reported[:2] == [[], []]  # b2 and b3 were each seen once: nothing yet
    assert reported[2] == [
        Change(ChangeType.ENDPOINT_TYPES_CHANGED, "b", gained=("gemini",), lost=("anthropic",)),
        Change(ChangeType.FIELD_CHANGED, "b", field="context_window", before=1, after=3),
    ]
    assert view.confirmed == models(b3)


def test_a_real_change_then_one_lying_check_reports_no_lie() -> None:
    b2 = R("b", ["openai"])
    blank = R("b", [])
    for lie in (models(A), models(A, blank)):  # missing once, or types [] once
        _, reported = run(
            [models(A, B), models(A, b2), lie, models(A, b2), models(A, b2)], confirm_checks=2
        )
        assert reported[:3] == [[], [], []]
        assert reported[3] == [Change(ChangeType.ENDPOINT_TYPES_CHANGED, "b", lost=("anthropic",))]


def test_pending_state_round_trips_through_json() -> None:
    for entry in (Pending(None, 2), Pending(B, 1)):
        assert Pending.from_json(entry.to_json()) == entry
    assert Pending.from_json(3) is None  # unreadable: the streak starts again


def test_confirm_checks_one_is_immediate() -> None:
    b2 = R("b", ["openai"])
    _, reported = run([models(A, B), models(b2), models(b2, C)], confirm_checks=1)
    assert reported == [
        [
            Change(ChangeType.REMOVED, "a", record=A),
            Change(ChangeType.ENDPOINT_TYPES_CHANGED, "b", lost=("anthropic",)),
        ],
        [Change(ChangeType.ADDED, "c", record=C)],
    ]


def test_readded_model_after_confirmed_removal_is_added_again() -> None:
    _, reported = run([models(A, B), models(A), models(A, B)], confirm_checks=1)
    assert reported == [
        [Change(ChangeType.REMOVED, "b", record=B)],
        [Change(ChangeType.ADDED, "b", record=B)],
    ]


def test_unchanged_snapshot_returns_the_same_view() -> None:
    view = baseline(models(A, B))
    new_view, changes = observe(view, models(B, A), confirm_checks=2)
    assert changes == []
    assert new_view is view


def test_unchanged_snapshot_clears_pending() -> None:
    view = GuardState(confirmed=models(A, B), pending={"b": Pending(None, 1)})
    new_view, changes = observe(view, models(A, B), confirm_checks=2)
    assert (new_view.pending, changes) == ({}, [])


def test_observe_does_not_mutate_inputs() -> None:
    confirmed, pending, seen = models(A, B), {"b": Pending(None, 1)}, models(C)
    observe(GuardState(confirmed, pending), seen, confirm_checks=2)
    assert (confirmed, pending, seen) == (models(A, B), {"b": Pending(None, 1)}, models(C))


def test_confirm_checks_must_be_positive() -> None:
    with pytest.raises(ValueError, match="confirm_checks"):
        observe(baseline({}), {}, confirm_checks=0)


# Properties ----------------------------------------------------------------------------

IDS = ["gpt-4o", "gpt-5", "claude-3", "gemini-pro", "o1", "embed-3", "plain-1"]
FLAPPY = "flappy"


def _record(model_id: str, types: frozenset[str], fields: dict) -> ModelRecord:
    # None-ness of endpoint types is fixed per id, as the token's flavor fixes it.
    return R(model_id, None if model_id.startswith("plain") else types, fields)


records = st.builds(
    _record,
    st.sampled_from(IDS),
    st.frozensets(st.sampled_from(["openai", "anthropic", "gemini"])),
    st.dictionaries(
        st.sampled_from(["context_window", "owned_by"]),
        st.integers(0, 2) | st.sampled_from(["openai", "claude"]),
        max_size=2,
    ),
)
snapshots = st.lists(records, max_size=len(IDS)).map(lambda rs: {r.id: r for r in rs})
# Few distinct states, so models come back, flap and change in every combination.
histories = st.lists(st.sampled_from(range(4)), min_size=1, max_size=12).flatmap(
    lambda picks: st.lists(snapshots, min_size=4, max_size=4).map(
        lambda states: [states[i] for i in picks]
    )
)


def shuffled(snapshot: dict[str, ModelRecord], rnd: random.Random) -> dict[str, ModelRecord]:
    items = list(snapshot.items())
    rnd.shuffle(items)
    return dict(items)


@settings(max_examples=200, deadline=None)
@given(histories, snapshots, st.integers(1, 4))
def test_a_replay_of_reported_changes_converges_to_the_final_snapshot(
    history: list[dict[str, ModelRecord]], final: dict[str, ModelRecord], confirm_checks: int
) -> None:
    view, reported = run([*history, *[final] * confirm_checks], confirm_checks)
    replay = apply_changes(history[0], [c for changes in reported for c in changes])
    assert replay == final
    assert view.confirmed == final
    assert view.pending == {}


@settings(max_examples=100, deadline=None)
@given(histories, st.integers(1, 3), st.randoms(use_true_random=False))
def test_b_insertion_order_never_produces_a_change(
    history: list[dict[str, ModelRecord]], confirm_checks: int, rnd: random.Random
) -> None:
    # Observing a reordered copy of the confirmed state reports nothing...
    for snapshot in history:
        _, changes = observe(baseline(snapshot), shuffled(snapshot, rnd), confirm_checks)
        assert changes == []
    # ...and reordering every snapshot of a history changes nothing that is reported.
    plain = run(history, confirm_checks)
    reordered = run([shuffled(s, rnd) for s in history], confirm_checks)
    assert reordered[1] == plain[1]
    assert reordered[0].confirmed == plain[0].confirmed
    assert reordered[0].pending == plain[0].pending


@settings(max_examples=100, deadline=None)
@given(
    st.lists(snapshots, min_size=2, max_size=12),
    records.map(lambda r: ModelRecord(FLAPPY, r.endpoint_types, r.fields)),
    st.integers(2, 4),
)
def test_c_a_model_absent_every_other_check_is_never_reported(
    others: list[dict[str, ModelRecord]], flappy: ModelRecord, confirm_checks: int
) -> None:
    history = [
        {**snapshot, FLAPPY: flappy} if i % 2 == 0 else snapshot
        for i, snapshot in enumerate(others)
    ]
    _, reported = run(history, confirm_checks)
    assert [c for changes in reported for c in changes if c.model == FLAPPY] == []


@settings(max_examples=100, deadline=None)
@given(histories)
def test_d_confirm_checks_one_reports_exactly_the_consecutive_diffs(
    history: list[dict[str, ModelRecord]],
) -> None:
    _, reported = run(history, confirm_checks=1)
    expected = [diff_models(a, b) for a, b in itertools.pairwise(history)]
    assert reported == expected
