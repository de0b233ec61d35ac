"""The anthropic flavor over loopback: walks of every page against the simulator, failures
mid-walk, keys that never leak, and checks through the pipeline into a database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.config.model import SourceConfig
from monitor.core.records import (
    ChangeType,
    ErrorKind,
    EventType,
    FetchError,
    FetchOk,
    FetchResult,
)
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.sources.anthropic import AnthropicFlavor
from monitor.sources.caches import ParseCaches
from monitor.store.database import open_database
from monitor.store.schema import Snapshot
from tests.support import fetching

SIM_KEY = "sk-ant-api03-sim-test-key-7d2c9e4b1a"
CANARY = "sk-ant-api03-canary-3f9a6c1e8b2d5f7a0c4e"
PAGE_SIZE = 3
# Eight models, three to a page: three pages, newest first.
SIM_MODELS = [
    make_model(
        f"claude-sim-{i}",
        None,
        created=1_760_000_000 + i * 86_400,
        display_name=f"Claude Sim {i}",
        context_window=200_000,
        max_output_tokens=64_000 if i % 2 else 32_000,
        capabilities=["batch", "image_input"] + (["thinking"] if i >= 4 else []),
    )
    for i in range(8)
]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", PAGE_SIZE)


@pytest.fixture
def sim(small_pages: None) -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="anthropic", seed=3) as gateway:
        gateway.set_group("default", SIM_MODELS)
        gateway.add_token(SIM_KEY)
        gateway.add_token(CANARY)
        yield gateway


def fetch(base_url: str, token: str = SIM_KEY, **settings: Any) -> FetchResult:
    return fetching.fetch(
        base_url, flavor="anthropic", token=token, source="claude", token_name="team", **settings
    )


def fetch_error(base_url: str, **kwargs: Any) -> FetchError:
    return fetching.failed(fetch(base_url, **kwargs))


def test_walks_every_page(sim: GatewaySimulator) -> None:
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert sorted(result.models) == sorted(m["id"] for m in SIM_MODELS)
    assert sim.requests_count(SIM_KEY) == 3  # 3 + 3 + 2
    record = result.models["claude-sim-5"].field_map()
    assert record["display_name"] == "Claude Sim 5"
    assert record["context_window"] == 200_000
    assert record["max_output_tokens"] == 64_000
    assert {"batch", "image_input", "thinking"} <= set(record["capabilities"])
    assert "thinking" not in result.models["claude-sim-1"].field_map()["capabilities"]
    assert all(r.endpoint_types is None for r in result.models.values())


def test_the_default_page_size_reads_a_long_list_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AnthropicFlavor, "page_size", 1000)
    with GatewaySimulator(flavor="anthropic") as gateway:
        gateway.set_group("default", [make_model(f"m-{i:04d}", None) for i in range(1200)])
        gateway.add_token(SIM_KEY)
        # About 1 KB per model, capability matrix included.
        result = fetch(gateway.base_url, max_response_bytes=8_000_000)
        assert isinstance(result, FetchOk), result
        assert gateway.requests_count(SIM_KEY) == 2
    assert len(result.models) == 1200


def test_deprecation_dates_from_the_simulator(sim: GatewaySimulator) -> None:
    old = make_model(
        "claude-3-opus-20240229",
        None,
        created=1_709_164_800,
        deprecation_date="2025-06-30",
        retirement_date="2026-01-05",
    )
    sim.set_group("default", [*SIM_MODELS, old])
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    fields = result.models["claude-3-opus-20240229"].field_map()
    assert fields["deprecation_date"].startswith("2025-06-30")
    assert fields["retirement_date"].startswith("2026-01-05")
    assert "deprecation_date" not in result.models["claude-sim-0"].field_map()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.http(500), ErrorKind.SERVER),
        (Fault.overloaded(), ErrorKind.SERVER),
        (Fault.http(429), ErrorKind.RATE_LIMITED),
        (Fault.disconnect(), ErrorKind.NETWORK),
        (Fault.truncated(after=30), ErrorKind.NETWORK),
        (Fault.html(200), ErrorKind.INVALID_RESPONSE),
        (Fault(status=200, body={"data": None, "has_more": False}), ErrorKind.INVALID_RESPONSE),
    ],
    ids=["500", "529", "429", "disconnect", "truncated", "html-200", "data-null"],
)
def test_a_failing_middle_page_fails_the_whole_check(
    sim: GatewaySimulator, fault: Fault, kind: ErrorKind
) -> None:
    sim.inject(fault, skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is kind
    assert sim.requests_count(SIM_KEY) == 2  # the third page is never asked for
    # The next check reads the whole list again.
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert len(result.models) == 8


def test_overloaded_message(sim: GatewaySimulator) -> None:
    sim.inject(Fault.overloaded(), skip=1)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.SERVER, 529)
    assert error.message == "HTTP 529: overloaded_error: Overloaded"


def test_has_more_without_last_id_fails_the_check(sim: GatewaySimulator) -> None:
    page = {"data": [{"id": "x"}], "has_more": True, "first_id": "x", "last_id": None}
    sim.inject(Fault(status=200, body=page), skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "has_more is true but the page has no last_id to continue from"


def test_a_cursor_pointing_back_is_a_loop(sim: GatewaySimulator) -> None:
    first = fetch(sim.base_url)
    assert isinstance(first, FetchOk)
    # Page 2 claims to end where page 1 ended: the walk would ask for page 2 again.
    newest = sorted(SIM_MODELS, key=lambda m: -m["created"])
    back = {"data": [{"id": "x"}], "has_more": True, "last_id": newest[PAGE_SIZE - 1]["id"]}
    sim.inject(Fault(status=200, body=back), skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "pagination loops back to a page already read"


def test_a_model_on_two_pages_fails_the_check(sim: GatewaySimulator) -> None:
    newest = sorted(SIM_MODELS, key=lambda m: -m["created"])
    again = {"data": [{"id": newest[0]["id"]}], "has_more": False}
    sim.inject(Fault(status=200, body=again), skip=1)
    error = fetch_error(sim.base_url)
    assert error.message == f"model id {newest[0]['id']!r} appears on two pages"


@pytest.mark.parametrize("token", ["sk-ant-api03-unknown", "expired"])
def test_a_bad_key_is_auth(sim: GatewaySimulator, token: str) -> None:
    if token == "expired":
        token = SIM_KEY
        sim.expire_token(SIM_KEY)
    error = fetch_error(sim.base_url, token=token)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert error.message == "HTTP 401: authentication_error: invalid x-api-key"


def test_a_key_that_loses_access_midway_is_auth(sim: GatewaySimulator) -> None:
    sim.inject(Fault.http(401, message="invalid x-api-key"), skip=2)
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert sim.requests_count(SIM_KEY) == 3


def test_canary_key_never_leaks(sim: GatewaySimulator, caplog: pytest.LogCaptureFixture) -> None:
    bare = CANARY.removeprefix("sk-")
    echo = f"invalid x-api-key {CANARY} ({bare})"
    faults = [
        (Fault.http(401, message=echo), 0),
        (Fault.http(403, message=echo), 0),
        (Fault.http(500, message=echo), 1),
        (Fault.http(529, message=echo), 1),
        (Fault(status=404, body=echo, content_type="text/plain"), 1),
        (Fault(status=302, headers={"Location": f"https://x.example/?key={CANARY}"}), 1),
        (Fault(status=200, body={"type": "error", "error": {"type": "x", "message": echo}}), 1),
        (Fault(status=200, body={"data": [{"id": CANARY}, {"id": CANARY}]}), 1),
        (Fault(status=200, body={"data": [{"id": CANARY, "max_tokens": CANARY}]}), 1),
        (Fault(status=200, body=f"not json {CANARY}", content_type="text/plain"), 2),
        (Fault.truncated(), 1),
    ]
    caplog.set_level(logging.DEBUG)
    errors = []
    for fault, skip in faults:
        sim.inject(fault, skip=skip)
        errors.append(fetch_error(sim.base_url, token=CANARY))
    sim.expire_token(CANARY)
    errors.append(fetch_error(sim.base_url, token=CANARY))
    assert len({e.kind for e in errors}) >= 6
    for error in errors:
        for text in (error.message, repr(error), str(error.to_json())):
            assert CANARY not in text
            assert bare not in text
    assert "***" in errors[0].message
    assert caplog.records
    for record in caplog.records:
        assert bare not in record.getMessage()


# -- end to end: checks, snapshots, events --------------------------------------------------


def count_snapshots(db: Any) -> int:
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(Snapshot)) or 0


def changes(report: Any) -> list[tuple[str, str]]:
    (token,) = report.tokens
    return [(str(c.type), c.model) for c in token.changes]


def test_checks_through_the_pipeline(sim: GatewaySimulator, db_url: str) -> None:
    base = sim_config(sim.base_url, {"claude": SIM_KEY}, source="anthropic", failure_threshold=99)
    source = SourceConfig(name="anthropic", base_url=sim.base_url, flavor="anthropic")
    config = replace(base, sources=(source,))
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        (report,) = checker.check()
        assert report.tokens[0].baseline and report.tokens[0].model_count == 8
        assert report.events == ()

        # One model added, one gone (on the last page): the addition is reported at
        # once, the removal once the flap guard has seen it twice.
        added = make_model("claude-sim-new", None, created=1_800_000_000, display_name="New")
        sim.set_group("default", [added, *SIM_MODELS[1:]])
        (report,) = checker.check()
        assert changes(report) == [("added", "claude-sim-new")]
        (event,) = report.events
        assert event.type is EventType.MODELS_CHANGED
        assert event.changes[0].record is not None
        assert event.changes[0].record.field_map()["display_name"] == "New"
        (report,) = checker.check()
        assert changes(report) == [("removed", "claude-sim-0")]
        snapshots = count_snapshots(db)

        # A failing middle page: the check fails; pages 1 and 3 never become a
        # snapshot and the models of the missing pages are never "removed".
        for _ in range(3):
            sim.inject(Fault.http(500), skip=1)
            (report,) = checker.check()
            assert [t.outcome for t in report.tokens] == ["server"]
            assert report.tokens[0].model_count is None
            assert not report.changed
            assert report.events == ()
        assert count_snapshots(db) == snapshots

        (report,) = checker.check()
        assert report.tokens[0].outcome == "ok"
        assert not report.changed

        # A changed limit is a field change once confirmed.
        raised = [
            dict(m, max_output_tokens=128_000) if m["id"] == "claude-sim-3" else m
            for m in [added, *SIM_MODELS[1:]]
        ]
        sim.set_group("default", raised)
        reports = [checker.check()[0] for _ in range(2)]
        found = [c for r in reports for c in r.tokens[0].changes]
        (change,) = found
        assert change.type is ChangeType.FIELD_CHANGED
        assert (change.model, change.field) == ("claude-sim-3", "max_output_tokens")
        assert (change.before, change.after) == (64_000, 128_000)
    finally:
        db.close()


def test_a_reused_page_asks_for_the_next_one_with_its_own_token(sim: GatewaySimulator) -> None:
    # The second token's pages are byte for byte the first token's, so they come from the
    # parsed-page cache; each next-page request must still carry the token of its walk.
    caches = ParseCaches()
    first = fetch(sim.base_url, SIM_KEY, caches=caches)
    second = fetch(sim.base_url, CANARY, caches=caches)
    assert isinstance(first, FetchOk) and isinstance(second, FetchOk)
    assert first.models == second.models
    assert caches.pages.hits == 3
    assert sim.requests_count(SIM_KEY) == 3
    assert sim.requests_count(CANARY) == 3
    assert all(entry.status == 200 for entry in sim.requests)
