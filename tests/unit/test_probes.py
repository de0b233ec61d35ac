"""Probes without sockets: the request chosen, the answer classified, the verdicts folded
behind the flap guard, and the plan kept within the budgets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.records import CallError, ChangeType, ModelRecord
from monitor.events.probes import (
    NEVER,
    Candidate,
    Outcome,
    ProbeMemory,
    ProbePolicy,
    ProbeResult,
    Verdict,
    plan,
)
from monitor.sources.probes import call_kind, classify, request_body

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = ProbePolicy(
    interval=timedelta(days=1),
    delay=timedelta(minutes=1),
    recheck=timedelta(hours=1),
    confirm_checks=2,
    transient_checks=3,
)
NO_CHANNEL = CallError(503, "model_not_found", "No available channel for model m under group g")


def _error_body(code: str, message: str = "boom (request id: 2026120612000012345)") -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": "new_api_error", "code": code}}
    ).encode()


# -- which request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "kind"),
    [
        (["openai"], "chat"),
        (["anthropic", "openai"], "chat"),
        (["anthropic"], "messages"),
        (["embeddings"], "embeddings"),
        (["image-generation"], None),
        (["openai", "image-generation"], None),
        (["openai-video"], None),
        (["jina-rerank"], None),
        (["openai-response"], None),  # only a route a small call does not use
        (["gemini"], None),
    ],
)
def test_the_request_follows_the_endpoint_types(types: list[str], kind: str | None) -> None:
    assert call_kind(ModelRecord.build("m", types), "bearer") == kind


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("gpt-4o", "chat"),
        ("text-embedding-3-small", "embeddings"),
        ("dall-e-3", None),
        ("gpt-image-1", None),
        ("whisper-1", None),
        ("tts-1-hd", None),
        ("gpt-4o-mini-tts", None),
        ("openai/gpt-4o-audio-preview", None),
        ("bge-reranker-v2", None),
        ("sora-2", None),
    ],
)
def test_without_endpoint_types_the_name_decides(model: str, kind: str | None) -> None:
    assert call_kind(ModelRecord.build(model), "bearer") == kind
    assert call_kind(ModelRecord.build(model, []), "bearer") == kind  # new-api mid-refresh


def test_a_named_model_is_probed_even_where_it_would_be_skipped() -> None:
    assert call_kind(ModelRecord.build("dall-e-3", ["image-generation"]), "bearer") is None
    assert call_kind(ModelRecord.build("dall-e-3", ["image-generation"]), "bearer", named=True)


def test_litellm_modes_and_anthropic_keys() -> None:
    assert call_kind(ModelRecord.build("e", fields={"mode": "embedding"}), "bearer") == "embeddings"
    assert call_kind(ModelRecord.build("i", fields={"mode": "image_generation"}), "bearer") is None
    assert call_kind(ModelRecord.build("claude-sonnet-4-5"), "x-api-key") == "messages"


def test_requests_are_the_smallest_there_are() -> None:
    chat = json.loads(request_body("chat", "gpt-4o"))
    assert chat["max_tokens"] == 1 and "max_completion_tokens" not in chat
    for model in ("o3-mini", "o1", "openai/o4-mini", "gpt-5-nano"):
        body = json.loads(request_body("chat", model))
        assert body["max_completion_tokens"] == 1 and "max_tokens" not in body, model
    assert json.loads(request_body("embeddings", "e"))["input"] == "a"
    messages = json.loads(request_body("messages", "claude"))
    assert messages["max_tokens"] == 1 and len(messages["messages"]) == 1


# -- what an answer means ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"choices": []}', Outcome.OK),
        (200, b"", Outcome.OK),  # any 2xx is callable, even an empty answer
        (503, _error_body("model_not_found"), Outcome.UNAVAILABLE),
        (400, _error_body("model_price_error"), Outcome.UNAVAILABLE),
        (500, _error_body("model_price_error"), Outcome.UNAVAILABLE),  # some versions
        (403, _error_body(""), Outcome.UNAVAILABLE),  # no access to the model
        (403, _error_body("pre_consume_token_quota_failed"), Outcome.TOKEN_QUOTA),
        (429, b"", Outcome.RATE_LIMITED),
        (401, _error_body(""), Outcome.AUTH),
        (502, _error_body("bad_response_status_code"), Outcome.TRANSIENT),
        (503, b"<html>busy</html>", Outcome.TRANSIENT),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"x"}}',
            Outcome.TRANSIENT,
        ),
        (
            404,
            b'{"type":"error","error":{"type":"not_found_error","message":"model: m"}}',
            Outcome.UNAVAILABLE,
        ),
        (404, b"404 page not found", Outcome.INCONCLUSIVE),  # no such route
        (400, _error_body("invalid_request_error"), Outcome.INCONCLUSIVE),
    ],
)
def test_answers_are_classified_by_status_and_code(
    status: int, body: bytes, outcome: Outcome
) -> None:
    assert classify(status, body).outcome is outcome


def test_the_error_keeps_status_code_and_message_without_request_id_or_secret() -> None:
    secret = "sk-canary0123456789abcdef"
    body = _error_body(
        "model_not_found",
        f"No available channel for model m under group g for {secret} (request id: 20261206)",
    )
    result = classify(503, body, secrets=(secret, secret[3:]))
    assert result.error == CallError(
        503, "model_not_found", "No available channel for model m under group g for ***"
    )
    chinese = _error_body("model_not_found", "分组 g 下模型 m 无可用渠道\uff08request id: 1\uff09")
    assert classify(503, chinese).error.message == "分组 g 下模型 m 无可用渠道"  # type: ignore[union-attr]


@given(st.integers(100, 599), st.binary(max_size=200))
def test_any_answer_is_classified_without_raising(status: int, body: bytes) -> None:
    result = classify(status, body)
    assert (result.error is None) == (200 <= status < 300)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=20,
    )
)
def test_any_json_error_body_is_read_without_raising(value: object) -> None:
    body = json.dumps({"error": value}).encode()
    result = classify(400, body)
    assert result.error is not None and isinstance(result.error.message, str)


# -- verdicts behind the flap guard --------------------------------------------------------


def _fold(memory: ProbeMemory, outcome: Outcome, at: datetime) -> tuple[ProbeMemory, object]:
    error = None if outcome is Outcome.OK else NO_CHANNEL
    return POLICY.fold(memory, "m", ProbeResult(outcome, error), at)


def test_working_is_silent_and_unavailable_is_reported_once_confirmed() -> None:
    memory = ProbeMemory(T0)
    memory, change = _fold(memory, Outcome.OK, T0)
    assert change is None and memory.verdict is Verdict.OK
    memory, change = _fold(memory, Outcome.UNAVAILABLE, T0 + timedelta(minutes=10))
    assert change is None and memory.pending is Verdict.UNAVAILABLE
    memory, change = _fold(memory, Outcome.UNAVAILABLE, T0 + timedelta(minutes=20))
    assert change is not None
    assert change.type is ChangeType.UNAVAILABLE and change.error == NO_CHANNEL  # type: ignore[attr-defined]
    memory, change = _fold(memory, Outcome.UNAVAILABLE, T0 + timedelta(minutes=30))
    assert change is None  # said once
    memory, change = _fold(memory, Outcome.OK, T0 + timedelta(minutes=40))
    assert change is None and memory.pending is Verdict.OK
    memory, change = _fold(memory, Outcome.OK, T0 + timedelta(minutes=50))
    assert change is not None and change.type is ChangeType.AVAILABLE  # type: ignore[attr-defined]
    assert memory.verdict is Verdict.OK and memory.error is None


def test_a_flip_back_before_confirmation_is_never_reported() -> None:
    memory = ProbeMemory(T0, verdict=Verdict.OK, probed_at=T0)
    memory, change = _fold(memory, Outcome.UNAVAILABLE, T0 + timedelta(minutes=1))
    memory, change2 = _fold(memory, Outcome.OK, T0 + timedelta(minutes=2))
    assert change is None and change2 is None
    assert memory.pending is None and memory.verdict is Verdict.OK


def test_transient_failures_need_the_longer_streak() -> None:
    memory = ProbeMemory(T0)
    reported = []
    for minute in range(3):
        memory, change = _fold(memory, Outcome.TRANSIENT, T0 + timedelta(minutes=minute))
        reported.append(change)
    assert reported[:2] == [None, None] and reported[2] is not None


@pytest.mark.parametrize(
    "outcome",
    [Outcome.RATE_LIMITED, Outcome.TOKEN_QUOTA, Outcome.AUTH, Outcome.INCONCLUSIVE],
)
def test_answers_about_something_else_leave_the_verdict_alone(outcome: Outcome) -> None:
    memory = ProbeMemory(T0, probed_at=T0, pending=Verdict.UNAVAILABLE, pending_count=1)
    after, change = _fold(memory, outcome, T0 + timedelta(minutes=5))
    assert change is None
    assert (after.pending, after.pending_count, after.verdict) == (Verdict.UNAVAILABLE, 1, None)
    # Only an answer that said something of the pair counts as having probed it.
    assert (after.probed_at == memory.probed_at) == outcome.stops_token


# -- what is due, within the budgets -------------------------------------------------------


def test_a_new_model_waits_for_the_routing_cache() -> None:
    memory = ProbeMemory(T0)
    assert POLICY.due(memory, T0 + timedelta(seconds=59)) is None
    assert POLICY.due(memory, T0 + timedelta(minutes=1)) == (1, T0)


def test_a_changed_model_is_new_again_and_a_never_probed_one_waits_for_the_sweep() -> None:
    memory = ProbeMemory(T0, probed_at=T0 + timedelta(minutes=1), verdict=Verdict.OK)
    later = T0 + timedelta(hours=2)
    assert POLICY.due(memory, later) is None and not memory.awaiting
    changed = memory.changed(later)
    assert changed.awaiting and changed.verdict is Verdict.OK
    assert POLICY.due(changed, later + timedelta(minutes=1)) == (1, later)
    assert POLICY.due(ProbeMemory(), later) == (3, NEVER)  # listed before it was watched


def test_unavailable_models_are_rechecked_sooner_than_the_sweep() -> None:
    probed = T0 + timedelta(minutes=1)
    bad = ProbeMemory(T0, probed_at=probed, verdict=Verdict.UNAVAILABLE)
    good = ProbeMemory(T0, probed_at=probed, verdict=Verdict.OK)
    hour = probed + timedelta(hours=1)
    assert POLICY.due(bad, hour) == (2, probed)
    assert POLICY.due(good, hour) is None
    assert POLICY.due(good, probed + timedelta(days=1)) == (3, probed)


def test_the_plan_keeps_each_token_within_its_budget_and_the_cycle_within_its_cap() -> None:
    now = T0 + timedelta(hours=1)
    candidates = [
        Candidate(token, f"model-{i:02}", ProbeMemory(T0))
        for token in ("a", "b")
        for i in range(30)
    ]
    chosen = plan(candidates, POLICY, now, left={"a": 3, "b": 50}, cap=10)
    assert len(chosen) == 10
    assert sum(c.token == "a" for c in chosen) == 3
    assert plan(candidates, POLICY, now, left={"a": 0, "b": 0}, cap=10) == []


def test_the_plan_confirms_first_then_new_then_rechecks_then_sweeps() -> None:
    now = T0 + timedelta(days=2)
    old = T0 - timedelta(days=1)
    sweep = Candidate("a", "sweep", ProbeMemory(old, probed_at=old, verdict=Verdict.OK))
    recheck = Candidate(
        "a", "recheck", ProbeMemory(old, probed_at=old, verdict=Verdict.UNAVAILABLE)
    )
    new = Candidate("a", "new", ProbeMemory(T0))
    pending = Candidate(
        "a", "pending", ProbeMemory(old, probed_at=now, pending=Verdict.UNAVAILABLE)
    )
    chosen = plan([sweep, recheck, new, pending], POLICY, now, left={"a": 50}, cap=10)
    assert [c.model for c in chosen] == ["pending", "new", "recheck", "sweep"]


def test_new_api_on_its_anthropic_route_loses_the_code_and_is_read_with_care() -> None:
    def claude_shaped(status: int, message: str) -> ProbeResult:
        body = {"type": "error", "error": {"type": "new_api_error", "message": message}}
        return classify(status, json.dumps(body).encode())

    quota = claude_shaped(403, "token quota is not enough (request id: 1)")
    assert quota.outcome is Outcome.TOKEN_QUOTA
    assert quota.error == CallError(403, None, "token quota is not enough")
    assert claude_shaped(400, "model m ratio or price not set").outcome is Outcome.INCONCLUSIVE
    assert claude_shaped(502, "bad response status code 502").outcome is Outcome.TRANSIENT
    # Anthropic's own API keeps its types: they are the code.
    body = b'{"type":"error","error":{"type":"permission_error","message":"no"}}'
    assert classify(403, body).error.code == "permission_error"  # type: ignore[union-attr]


def test_the_cap_is_shared_so_no_token_holds_the_cycle_back() -> None:
    now = T0 + timedelta(hours=1)
    candidates = [Candidate(t, f"m{i}", ProbeMemory(T0)) for t in "abc" for i in range(10)]
    chosen = plan(candidates, POLICY, now, left=dict.fromkeys("abc", 50), cap=9, share=3)
    assert sorted(c.token for c in chosen) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
