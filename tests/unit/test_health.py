"""Token health: one failing alert per spell, one recovery after it, no spam."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.records import ErrorKind, EventType, FetchError, FetchOk, FetchResult
from monitor.events.health import Health, Transition, next_health

OK = FetchOk(models={})
AUTH = FetchError(ErrorKind.AUTH, "Invalid token", status=401)
FORBIDDEN = FetchError(ErrorKind.FORBIDDEN, "access_denied", status=403)
SERVER = FetchError(ErrorKind.SERVER, "bad gateway", status=502)
TIMEOUT = FetchError(ErrorKind.TIMEOUT, "read timed out")


def feed(
    results: list[FetchResult], threshold: int = 3, health: Health | None = None
) -> tuple[Health, list[Transition | None]]:
    health = health or Health()
    transitions = []
    for i, result in enumerate(results):
        health, transition = next_health(health, result, f"2026-11-26T10:{i:02d}:00Z", threshold)
        transitions.append(transition)
    return health, transitions


def test_transition_values_are_event_types() -> None:
    assert Transition.FAILING.event_type is EventType.TOKEN_FAILING
    assert Transition.RECOVERED.event_type is EventType.TOKEN_RECOVERED
    assert Transition.FAILING == "token.failing"


def test_success_keeps_a_healthy_token_healthy() -> None:
    health, transitions = feed([OK, OK])
    assert health == Health()
    assert transitions == [None, None]


@pytest.mark.parametrize("error", [AUTH, FORBIDDEN])
def test_credential_failures_are_failing_at_once(error: FetchError) -> None:
    health, transitions = feed([error], threshold=5)
    assert transitions == [Transition.FAILING]
    assert health == Health(1, True, "2026-11-26T10:00:00Z", error)


def test_transient_failures_wait_for_the_threshold() -> None:
    health, transitions = feed([SERVER, TIMEOUT, SERVER], threshold=3)
    assert transitions == [None, None, Transition.FAILING]
    assert health.failing
    assert health.consecutive_failures == 3
    assert health.last_error == SERVER
    # The spell began with the first failure, not when the threshold was crossed.
    assert health.failing_since == "2026-11-26T10:00:00Z"


def test_failing_since_is_set_from_the_first_failure_of_a_streak() -> None:
    health, _ = feed([SERVER])
    assert (health.failing, health.failing_since) == (False, "2026-11-26T10:00:00Z")


def test_a_success_resets_the_count() -> None:
    health, transitions = feed([SERVER, SERVER, OK, SERVER, SERVER], threshold=3)
    assert transitions == [None] * 5
    assert health.consecutive_failures == 2
    assert health.failing_since == "2026-11-26T10:03:00Z"


def test_no_repeats_while_failing_even_if_the_error_changes() -> None:
    health, transitions = feed([AUTH, SERVER, TIMEOUT, FORBIDDEN, AUTH], threshold=1)
    assert transitions == [Transition.FAILING, None, None, None, None]
    assert health.last_error == AUTH
    assert health.consecutive_failures == 5
    assert health.failing_since == "2026-11-26T10:00:00Z"


def test_recovered_exactly_once_then_healthy() -> None:
    health, transitions = feed([AUTH, AUTH, OK, OK])
    assert transitions == [Transition.FAILING, None, Transition.RECOVERED, None]
    assert health == Health()


def test_recovery_without_failing_state_is_silent() -> None:
    _, transitions = feed([SERVER, SERVER, OK], threshold=3)
    assert transitions == [None, None, None]


def test_a_new_spell_alerts_again() -> None:
    _, transitions = feed([AUTH, OK, SERVER, SERVER], threshold=2)
    assert transitions == [Transition.FAILING, Transition.RECOVERED, None, Transition.FAILING]


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        next_health(Health(), SERVER, "2026-11-26T10:00:00Z", 0)


results = st.sampled_from([OK, AUTH, FORBIDDEN, SERVER, TIMEOUT])


@settings(max_examples=200, deadline=None)
@given(st.lists(results, max_size=40), st.integers(1, 5))
def test_failing_and_recovered_strictly_alternate_starting_with_failing(
    sequence: list[FetchResult], threshold: int
) -> None:
    health, transitions = feed(sequence, threshold)
    fired = [t for t in transitions if t is not None]
    expected = [Transition.FAILING, Transition.RECOVERED] * len(fired)
    assert fired == expected[: len(fired)]
    # The state agrees with the last transition.
    assert health.failing == (bool(fired) and fired[-1] is Transition.FAILING)


@settings(max_examples=200, deadline=None)
@given(st.lists(results, max_size=40), st.integers(1, 5))
def test_failing_fires_exactly_when_the_rules_say(
    sequence: list[FetchResult], threshold: int
) -> None:
    """A brute-force restatement: failing after `threshold` failures in a row, or a
    credential failure, unless already failing; recovered on the first success after."""
    _, transitions = feed(sequence, threshold)
    failing, streak = False, 0
    for result, transition in zip(sequence, transitions, strict=True):
        if isinstance(result, FetchOk):
            assert transition is (Transition.RECOVERED if failing else None)
            failing, streak = False, 0
            continue
        streak += 1
        fires = not failing and (result.kind.immediate or streak >= threshold)
        assert transition is (Transition.FAILING if fires else None)
        failing = failing or fires
