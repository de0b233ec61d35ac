"""Probes against the simulator's real call routes, with an injected clock: verdicts once,
behind the flap guard; the budgets as the simulator counts them; nothing skipped probed;
nothing sent unless asked; no secret stored."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from monitor.config import Config
from monitor.core.records import ChangeType, Event
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import Database, open_database
from monitor.store.probes import recent_probes, unavailable_pairs
from tests.support.canary import CANARY, database_contents
from tests.support.clock import Clock

A, B = CANARY, "sk-probe-token-b-1111111111111111"
MODELS = [
    make_model("gpt-4o"),
    make_model("o3-mini"),
    make_model("text-embedding-3-small", ["embeddings"]),
    make_model("claude-sonnet-4-5", ["anthropic"]),
    make_model("dall-e-3", ["image-generation"]),
    make_model("bge-reranker", ["jina-rerank"]),
    make_model("mj-imagine", ["openai"]),  # priced per call below
]


@pytest.fixture
def db(db_url: str):
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock.whole_second()


@pytest.fixture
def gw(gateway: GatewaySimulator) -> GatewaySimulator:
    gateway.set_group("default", MODELS)
    gateway.add_token(A)
    gateway.add_token(B)
    gateway.set_pricing(
        [
            {"model_name": "gpt-4o", "model_ratio": 1.25, "completion_ratio": 4},
            {"model_name": "mj-imagine", "quota_type": 1, "model_price": 0.1},
        ]
    )
    return gateway


def probing(config: Config, **probe: object) -> Config:
    settings: dict[str, object] = {"probe": True, "probe_delay": 0.0, **probe}
    source = replace(config.sources[0], **settings)
    return replace(config, sources=(source,))


def checker(
    gw: GatewaySimulator, db: Database, clock: Clock, concurrency: int = 4, **probe: object
) -> Checker:
    base = sim_config(gw.base_url, {"a": A, "b": B}, concurrency=concurrency)
    return Checker(probing(base, **probe), db, clock=clock)


def changes(check: Checker) -> list[tuple[str, str, tuple[str, ...], dict | None]]:
    """One check; its probe changes as (type, model, tokens, error), payloads validated."""
    found = []
    for report in check.check():
        for event in report.events:
            found += _probe_changes(event)
    return found


def _probe_changes(event: Event) -> list[tuple[str, str, tuple[str, ...], dict | None]]:
    payload = event.to_payload()
    assert payload_errors(payload) == [], payload
    return [
        (c["type"], c["model"], tuple(c["tokens"]), c.get("error"))
        for c in payload["changes"]
        if c["type"] in (ChangeType.UNAVAILABLE, ChangeType.AVAILABLE)
    ]


def test_a_model_without_channel_is_unavailable_once_then_available_once(gw, db, clock) -> None:
    check = checker(gw, db, clock, probe_recheck=600.0)
    gw.set_verdict("gpt-4o", "no_channel")
    said = changes(check)
    assert said == []  # one failure is not yet a verdict (confirm_checks = 2)
    clock.advance(timedelta(minutes=10))
    said = changes(check)
    assert len(said) == 1
    kind, model, tokens, error = said[0]
    assert (kind, model, tokens) == ("unavailable", "gpt-4o", ("a", "b"))  # grouped
    assert error is not None and error["status"] == 503 and error["code"] == "model_not_found"
    assert "gpt-4o" in error["message"] and "request id" not in error["message"]

    with db.reader() as session:
        assert {pair for pair in unavailable_pairs(session)} == {("a", "gpt-4o"), ("b", "gpt-4o")}
    for _ in range(3):  # still failing: said once
        clock.advance(timedelta(minutes=10))
        assert changes(check) == []

    gw.set_verdict("gpt-4o", None)
    said = []
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        said += changes(check)
    assert said == [("available", "gpt-4o", ("a", "b"), None)]
    with db.reader() as session:
        assert unavailable_pairs(session) == {}


def test_a_flip_back_before_confirmation_is_never_reported(gw, db, clock) -> None:
    check = checker(gw, db, clock)
    gw.set_verdict("gpt-4o", "unpriced", token=B)
    assert changes(check) == []
    gw.set_verdict("gpt-4o", None, token=B)
    clock.advance(timedelta(minutes=10))
    assert changes(check) == []
    clock.advance(timedelta(minutes=10))
    assert changes(check) == []
    assert any(c.token == B and c.model == "gpt-4o" for c in gw.calls())


def test_skipped_types_and_per_call_models_are_never_probed(gw, db, clock) -> None:
    check = checker(gw, db, clock, probe_interval=3600.0, probe_budget=500, probe_per_cycle=100)
    for _ in range(6):
        changes(check)
        clock.advance(timedelta(hours=1))
    probed = {call.model for call in gw.calls()}
    assert probed == {"gpt-4o", "o3-mini", "text-embedding-3-small", "claude-sonnet-4-5"}
    # The first check reads the price list after... the probe pass comes after it, so even
    # the first probes know what is priced per call.
    routes = {call.model: call.path for call in gw.calls()}
    assert routes == {
        "gpt-4o": "/v1/chat/completions",
        "o3-mini": "/v1/chat/completions",
        "text-embedding-3-small": "/v1/embeddings",
        "claude-sonnet-4-5": "/v1/messages",
    }
    bodies = {call.model: call.body for call in gw.calls()}
    assert bodies["gpt-4o"]["max_tokens"] == 1
    assert bodies["o3-mini"]["max_completion_tokens"] == 1 and "max_tokens" not in bodies["o3-mini"]
    assert bodies["text-embedding-3-small"]["input"] == "a"
    assert bodies["claude-sonnet-4-5"]["max_tokens"] == 1
    assert all(call.status == 200 for call in gw.calls())


def test_a_named_model_is_probed_although_its_type_is_skipped(gw, db, clock) -> None:
    check = checker(gw, db, clock, probe_models=("dall-e-*",))
    changes(check)
    assert "dall-e-3" in {call.model for call in gw.calls()}


def test_no_token_ever_exceeds_its_budget_nor_a_check_its_cap(gw, db, clock) -> None:
    many = [make_model(f"chat-{i:02}") for i in range(40)]
    gw.set_group("default", many)
    check = checker(gw, db, clock, probe_budget=7, probe_per_cycle=5, probe_interval=3600.0)
    per_check: list[int] = []
    times: dict[str, list] = {A: [], B: []}
    for _ in range(72):  # three days of hourly checks
        before = len(gw.calls())
        changes(check)
        new = gw.calls()[before:]
        per_check.append(len(new))
        for call in new:
            times[call.token].append(clock.now)
        clock.advance(timedelta(hours=1))
    assert max(per_check) <= 5
    for token, sent in times.items():
        for i, start in enumerate(sent):
            window = [t for t in sent[i:] if t < start + timedelta(days=1)]
            assert len(window) <= 7, token
        assert len(sent) >= 14  # the budget is spent, not left idle
    with db.reader() as session:
        assert len(recent_probes(session, limit=10_000)) == len(gw.calls())


def test_probes_are_off_by_default_and_a_token_may_opt_out(gw, db, clock) -> None:
    base = sim_config(gw.base_url, {"a": A, "b": B})
    assert not base.sources[0].probe
    check = Checker(base, db, clock=clock)
    for _ in range(3):
        changes(check)
        clock.advance(timedelta(hours=1))
    assert gw.calls() == []

    config = probing(base)
    config = replace(config, tokens=(config.tokens[0], replace(config.tokens[1], probe=False)))
    check = Checker(config, db, clock=clock)
    changes(check)
    assert {call.token for call in gw.calls()} == {A}


def test_a_token_out_of_quota_stops_and_says_nothing_of_the_models(gw, db, clock) -> None:
    check = checker(gw, db, clock)
    for model in ("gpt-4o", "o3-mini", "text-embedding-3-small", "claude-sonnet-4-5"):
        gw.set_verdict(model, "quota", token=A)
    for _ in range(3):
        assert changes(check) == []
        clock.advance(timedelta(minutes=10))
    calls = Counter(call.token for call in gw.calls())
    assert calls[A] == 3  # one per check: the first answer stops the token
    assert calls[B] >= 4


def test_a_429_stops_the_source_and_is_no_verdict(gw, db, clock) -> None:
    check = checker(gw, db, clock, concurrency=1)
    gw.set_verdict("gpt-4o", "rate_limited")
    for _ in range(4):
        assert changes(check) == []
        clock.advance(timedelta(minutes=10))
    results = {p.result for p in _probes(db)}
    assert "rate_limited" in results and "unavailable" not in results


def test_transient_failures_are_reported_only_after_the_longer_streak(gw, db, clock) -> None:
    check = checker(gw, db, clock)
    gw.set_verdict("claude-sonnet-4-5", "upstream_error")
    said = []
    for _ in range(4):
        said.append(changes(check))
        clock.advance(timedelta(minutes=10))
    assert said[0] == said[1] == []
    assert [c[:2] for c in said[2]] == [("unavailable", "claude-sonnet-4-5")]
    assert said[3] == []


def test_the_secret_never_reaches_the_database(gw, db, db_url, clock) -> None:
    check = checker(gw, db, clock)
    gw.set_verdict("gpt-4o", "forbidden")
    for _ in range(2):
        changes(check)
        clock.advance(timedelta(minutes=10))
    assert any(p.result == "unavailable" for p in _probes(db))
    assert CANARY.encode() not in database_contents(db_url)
    assert CANARY[3:].encode() not in database_contents(db_url)


def _probes(db: Database):
    with db.reader() as session:
        return recent_probes(session, limit=10_000)


def test_the_change_payload_carries_the_error(gw, db, clock) -> None:
    check = checker(gw, db, clock)
    gw.set_verdict("text-embedding-3-small", "unpriced")
    changes(check)
    clock.advance(timedelta(minutes=10))
    said = changes(check)
    assert [c[:2] for c in said] == [("unavailable", "text-embedding-3-small")]
    error = said[0][3]
    assert error["status"] == 400 and error["code"] == "model_price_error"
    json.dumps(error)


def test_the_matrix_marks_a_listed_but_not_callable_cell(gw, db, clock) -> None:
    from monitor.runtime.listener import HealthAnswer, Listener
    from monitor.web.app import StatusPages
    from tests.support.html_check import text_of, validate_html

    check = checker(gw, db, clock)
    gw.set_verdict("gpt-4o", "no_channel", token=B)
    for _ in range(2):
        changes(check)
        clock.advance(timedelta(minutes=10))
    pages = StatusPages(db, check.config)
    with Listener("127.0.0.1:0", health=lambda: HealthAnswer(True, {}), pages=pages) as listener:
        response = requests.get(f"{listener.url}/matrix?source=gw", timeout=10)
    assert response.status_code == 200
    assert CANARY not in response.text
    tree = validate_html(response.text)
    row = next(
        tr
        for tr in tree.iter("tr")
        if tr.find("th") is not None and text_of(tr.find("th")) == "gpt-4o"
    )
    cells = [td for td in row.findall("td") if td.get("class") != "l"]
    assert [(td.get("class") or "", text_of(td)) for td in cells] == [("", "✓"), ("x", "✗")]
    assert "model_not_found" in cells[1].get("title", "")
    assert "listed but not callable" in text_of(tree)


def test_a_model_that_stalls_fails_its_own_probe_and_nothing_else(gw, db, clock) -> None:
    check = checker(gw, db, clock, timeout=0.5)
    gw.set_slow_seconds(3.0)
    gw.set_verdict("o3-mini", "slow", token=A)
    changes(check)
    results = {(p.token, p.model): p.result for p in _probes(db)}
    assert results.pop(("a", "o3-mini")) == "transient"
    assert set(results.values()) == {"ok"} and len(results) == 7  # 4 for b, 3 for a


def test_only_probed_and_fresh_pairs_are_kept_and_the_sweep_moves_over_tokens(
    gateway, db, clock
) -> None:
    from sqlalchemy import func, select

    from monitor.store.schema import ProbeStateRow

    values = {f"t{i}": f"sk-probe-scale-{i:02}-0123456789abcdef" for i in range(5)}
    gateway.set_group("default", [make_model(f"chat-{i:03}") for i in range(200)])
    for value in values.values():
        gateway.add_token(value)
    config = probing(sim_config(gateway.base_url, values, concurrency=5), probe_per_cycle=10)
    check = Checker(config, db, clock=clock)

    def rows() -> int:
        with db.reader() as session:
            return session.scalar(select(func.count()).select_from(ProbeStateRow)) or 0

    changes(check)
    assert len(gateway.calls()) == 10 and rows() == 10  # not 5 x 200
    assert Counter(call.token for call in gateway.calls()) == dict.fromkeys(values.values(), 2)
    gateway.set_group("default", [make_model(f"chat-{i:03}") for i in range(203)])
    clock.advance(timedelta(minutes=10))
    before = len(gateway.calls())
    changes(check)
    new = gateway.calls()[before:]
    # New models first, two per token (the cap of 10 shared by 5 tokens).
    assert {call.model for call in new} <= {"chat-200", "chat-201", "chat-202"}
    assert Counter(call.token for call in new) == dict.fromkeys(values.values(), 2)
    assert rows() == 10 + 15  # the new ones are known, probed or not


def test_unavailable_changes_are_routed_and_silenced_like_any_other(gw, db, clock) -> None:
    from monitor.events.silences import Silence
    from monitor.sim.config import webhook_channel
    from monitor.store.queries import events_since
    from monitor.store.schema import Delivery
    from monitor.store.silences import add_silence

    base = sim_config(
        gw.base_url,
        {"a": A, "b": B},
        channels=[
            webhook_channel("models-team", "http://127.0.0.1:9/a", changes=("added", "removed")),
            webhook_channel("callers", "http://127.0.0.1:9/b", changes=("unavailable",)),
        ],
    )
    check = Checker(probing(base), db, clock=clock)
    with db.session() as session:
        add_silence(
            session,
            Silence(
                "sil_probe",
                clock.now,
                clock.now + timedelta(days=1),
                model="o3-*",
                kind="unavailable",
                comment="known",
            ),
            clock.now,
        )
    gw.set_verdict("gpt-4o", "no_channel")
    gw.set_verdict("o3-mini", "no_channel")
    for _ in range(2):
        changes(check)
        clock.advance(timedelta(minutes=10))
    with db.reader() as session:
        stored = [e for e in events_since(session, clock.now - timedelta(days=1))]
        routed = sorted(session.scalars(select(Delivery.channel)))
    (event,) = [e for e in stored if any(c["type"] == "unavailable" for c in e["changes"])]
    marks = {c["model"]: c.get("silenced") for c in event["changes"]}
    assert marks == {"gpt-4o": None, "o3-mini": "sil_probe"}  # recorded, marked
    assert routed == ["callers"]  # only the channel that takes unavailable changes
