"""The gemini flavor over loopback: walks of every page against the simulator, failures
mid-walk, keys that never leak, and checks through the pipeline into a database."""

from __future__ import annotations

import json
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
    ModelRecord,
)
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.sources.gemini import GeminiFlavor
from monitor.store.database import open_database
from monitor.store.schema import Snapshot
from tests.support import fetching
from tests.support.fixtures import load

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
# What the API answers for a wrong key: HTTP 400, not 401.
API_KEY_INVALID = load("gemini-api-key-invalid.json")
SIM_KEY = "AIzaSySimTestKey-4b7e1d9c2a5f8e3b6d0"
CANARY = "AIzaSyCanary-9e2b7d4a1c6f3e8b5d0a2c"
PAGE_SIZE = 3
CHAT = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
# Eight models, three to a page: three pages (the simulator pages in name order).
SIM_MODELS = [
    make_model(
        f"gemini-sim-{i}",
        None,
        display_name=f"Gemini Sim {i}",
        context_window=1_048_576,
        max_output_tokens=65_536 if i % 2 else 8_192,
        version="001",
        generation_methods=["embedContent", "countTextTokens"] if i == 7 else CHAT,
        description=f"Model number {i}",
    )
    for i in range(8)
]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GeminiFlavor, "page_size", PAGE_SIZE)


@pytest.fixture
def sim(small_pages: None) -> Iterator[GatewaySimulator]:
    with GatewaySimulator(flavor="gemini", seed=5) as gateway:
        gateway.set_group("default", SIM_MODELS)
        gateway.add_token(SIM_KEY)
        gateway.add_token(CANARY)
        yield gateway


def fetch(base_url: str, token: str = SIM_KEY, **settings: Any) -> FetchResult:
    return fetching.fetch(
        base_url, flavor="gemini", token=token, source="google", token_name="team", **settings
    )


def fetch_error(base_url: str, **kwargs: Any) -> FetchError:
    return fetching.failed(fetch(base_url, **kwargs))


def test_walks_every_page(sim: GatewaySimulator) -> None:
    assert sim.base_url.endswith("/v1beta")
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert sorted(result.models) == [f"gemini-sim-{i}" for i in range(8)]  # prefix stripped
    assert sim.requests_count(SIM_KEY) == 3  # 3 + 3 + 2
    assert result.models["gemini-sim-1"] == ModelRecord.build(
        "gemini-sim-1",
        CHAT,
        {
            "display_name": "Gemini Sim 1",
            "context_window": 1_048_576,
            "max_output_tokens": 65_536,
            "version": "001",
        },
    )
    assert result.models["gemini-sim-7"].endpoint_types == {"embedContent", "countTextTokens"}


def test_page_size_is_always_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API's default page is 50; asking for 1000 gets these 120 in one answer.
    monkeypatch.setattr(GeminiFlavor, "page_size", 1000)
    with GatewaySimulator(flavor="gemini") as gateway:
        gateway.set_group("default", [make_model(f"m-{i:03d}", None) for i in range(120)])
        gateway.add_token(SIM_KEY)
        result = fetch(gateway.base_url)
        assert gateway.requests_count(SIM_KEY) == 1
    assert isinstance(result, FetchOk)
    assert len(result.models) == 120


def test_an_empty_list_is_an_empty_object(sim: GatewaySimulator) -> None:
    sim.set_group("default", [])
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert result.models == {}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.http(500), ErrorKind.SERVER),
        (Fault.http(503, message="The model is overloaded."), ErrorKind.SERVER),
        (Fault.http(429, message="Resource has been exhausted"), ErrorKind.RATE_LIMITED),
        (Fault.http(400, message="Invalid page token."), ErrorKind.CLIENT_ERROR),
        (Fault.disconnect(), ErrorKind.NETWORK),
        (Fault.truncated(after=30), ErrorKind.NETWORK),
        (Fault(status=200, body={"models": {}}), ErrorKind.INVALID_RESPONSE),
        (Fault(status=200, body={"data": []}), ErrorKind.INVALID_RESPONSE),
    ],
    ids=["500", "503", "429", "400", "disconnect", "truncated", "models-object", "no-models"],
)
def test_a_failing_middle_page_fails_the_whole_check(
    sim: GatewaySimulator, fault: Fault, kind: ErrorKind
) -> None:
    sim.inject(fault, skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is kind
    assert sim.requests_count(SIM_KEY) == 2  # the third page is never asked for
    result = fetch(sim.base_url)
    assert isinstance(result, FetchOk)
    assert len(result.models) == 8


def test_a_repeated_page_token_is_a_loop(sim: GatewaySimulator) -> None:
    first = {"models": [{"name": "models/a"}], "nextPageToken": "same"}
    second = {"models": [{"name": "models/b"}], "nextPageToken": "same"}
    sim.inject(Fault(status=200, body=first))
    sim.inject(Fault(status=200, body=second), skip=1)
    error = fetch_error(sim.base_url)
    assert error.kind is ErrorKind.INVALID_RESPONSE
    assert error.message == "pagination loops back to a page already read"
    assert sim.requests_count(SIM_KEY) == 2


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("AIzaSyUnknown", "HTTP 400: API key not valid. Please pass a valid API key."),
        ("expired", "HTTP 400: API key expired. Please renew the API key."),
    ],
)
def test_a_bad_key_is_auth_despite_http_400(
    sim: GatewaySimulator, token: str, message: str
) -> None:
    if token == "expired":
        token = SIM_KEY
        sim.expire_token(SIM_KEY)
    error = fetch_error(sim.base_url, token=token)
    assert (error.kind, error.status) == (ErrorKind.AUTH, 400)
    assert error.message == f"{message} (API_KEY_INVALID)"


def test_a_failing_error_kind_falls_back_to_the_status(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: GeminiFlavor, status: int, body: object) -> ErrorKind | None:
        raise KeyError(SIM_KEY)

    monkeypatch.setattr(GeminiFlavor, "error_kind", broken)
    error = fetch_error(sim.base_url, token="AIzaSyUnknown")
    assert (error.kind, error.status) == (ErrorKind.CLIENT_ERROR, 400)
    assert "could not classify an error" in caplog.text
    assert SIM_KEY not in caplog.text


def test_forbidden_stays_forbidden(sim: GatewaySimulator) -> None:
    sim.inject(Fault.http(403, message="Permission denied: Consumer has been suspended."))
    error = fetch_error(sim.base_url)
    assert (error.kind, error.status) == (ErrorKind.FORBIDDEN, 403)
    assert error.message.endswith("(PERMISSION_DENIED)")


def test_canary_key_never_leaks(sim: GatewaySimulator, caplog: pytest.LogCaptureFixture) -> None:
    echo = f"API key not valid: {CANARY}"
    invalid = json.loads(json.dumps(API_KEY_INVALID))
    invalid["error"]["message"] = echo
    invalid["error"]["details"][0]["metadata"]["key"] = CANARY
    faults = [
        (Fault(status=400, body=invalid), 0),
        (Fault(status=400, body=[invalid]), 1),
        (Fault.http(403, message=echo), 0),
        (Fault.http(500, message=echo), 1),
        (Fault(status=404, body=echo, content_type="text/plain"), 1),
        (Fault(status=302, headers={"Location": f"{BASE_URL}/models?key={CANARY}"}), 1),
        (Fault(status=200, body={"error": {"code": 400, "message": echo}}), 1),
        (Fault(status=200, body={"models": [{"name": f"models/{CANARY}"}] * 2}), 1),
        (Fault(status=200, body=f"not json {CANARY}", content_type="text/plain"), 2),
        (Fault.truncated(), 1),
    ]
    caplog.set_level(logging.DEBUG)
    errors = []
    for fault, skip in faults:
        sim.reset_requests()
        sim.clear_faults()
        sim.inject(fault, skip=skip)
        errors.append(fetch_error(sim.base_url, token=CANARY))
    sim.expire_token(CANARY)
    errors.append(fetch_error(sim.base_url, token=CANARY))
    assert errors[0].kind is ErrorKind.AUTH
    assert len({e.kind for e in errors}) >= 6
    for error in errors:
        for text in (error.message, repr(error), str(error.to_json())):
            assert CANARY not in text
    assert "***" in errors[0].message
    gets = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET ")]
    assert gets and all("pageSize=3" in line for line in gets)
    for record in caplog.records:
        assert CANARY not in record.getMessage()

    # A server that sends the key back as a page token: the echo is masked in the answer
    # before it is parsed, so the key never reaches the next URL, a log line or an error.
    caplog.clear()
    sim.renew_token(CANARY)
    sim.inject(Fault(status=200, body={"models": [], "nextPageToken": CANARY}), skip=1)
    error = fetch_error(sim.base_url, token=CANARY)
    assert CANARY not in error.message
    assert all(CANARY not in r.path for r in sim.requests)
    logged = [r.getMessage() for r in caplog.records]
    assert any("pageToken=%2A%2A%2A" in line for line in logged)
    assert all(CANARY not in line for line in logged)


# -- end to end: checks, snapshots, events --------------------------------------------------


def count_snapshots(db: Any) -> int:
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(Snapshot)) or 0


def changes(report: Any) -> list[tuple[str, str]]:
    (token,) = report.tokens
    return [(str(c.type), c.model) for c in token.changes]


def test_checks_through_the_pipeline(sim: GatewaySimulator, db_url: str) -> None:
    base = sim_config(sim.base_url, {"google": SIM_KEY}, source="gemini", failure_threshold=99)
    source = SourceConfig(name="gemini", base_url=sim.base_url, flavor="gemini")
    config = replace(base, sources=(source,))
    db = open_database(db_url)
    try:
        checker = Checker(config, db)
        (report,) = checker.check()
        assert report.tokens[0].baseline and report.tokens[0].model_count == 8
        assert report.events == ()

        # One model added (page 1), one gone (page 3): the addition is reported at
        # once, the removal once the flap guard has seen it twice.
        added = make_model("gemini-new", None, display_name="Gemini New", generation_methods=CHAT)
        models = [added, *SIM_MODELS[:-1]]
        sim.set_group("default", models)
        (report,) = checker.check()
        assert changes(report) == [("added", "gemini-new")]
        (event,) = report.events
        assert event.type is EventType.MODELS_CHANGED
        (report,) = checker.check()
        assert changes(report) == [("removed", "gemini-sim-7")]
        snapshots = count_snapshots(db)

        # A failing middle page: the check fails; pages 1 and 3 never become a
        # snapshot and the models of page 2 are never "removed".
        for _ in range(3):
            sim.inject(Fault.http(503, message="The service is currently unavailable."), skip=1)
            (report,) = checker.check()
            assert [t.outcome for t in report.tokens] == ["server"]
            assert report.tokens[0].model_count is None
            assert not report.changed
            assert report.events == ()
        assert count_snapshots(db) == snapshots
        (report,) = checker.check()
        assert report.tokens[0].outcome == "ok"
        assert not report.changed

        # A generation method gained is an endpoint-type change, once confirmed.
        batch = [
            dict(m, generation_methods=[*CHAT, "predict"]) if m["id"] == "gemini-sim-2" else m
            for m in models
        ]
        sim.set_group("default", batch)
        found = [c for _ in range(2) for c in checker.check()[0].tokens[0].changes]
        (change,) = found
        assert change.type is ChangeType.ENDPOINT_TYPES_CHANGED
        assert change.model == "gemini-sim-2"
        assert (change.gained, change.lost) == (("predict",), ())

        # A new description or sampling default is not a change at all.
        reworded = [dict(m, description="Reworded") for m in batch]
        sim.set_group("default", reworded)
        for _ in range(2):
            assert not checker.check()[0].changed
    finally:
        db.close()
