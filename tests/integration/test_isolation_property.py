"""One token's answer, whatever it holds, fails that token and nothing else.

Hypothesis writes arbitrary bodies (any JSON value, lone surrogates, nesting near and
past the limits, huge exponents, NaN and Infinity, control characters, wrong types,
broken JSON) for token `a`, served by a plain standard-library HTTP server; token `b`
always gets a valid list. Two cycles run through the real fetch-to-record path (so the
second diffs two arbitrary lists) into a real SQLite file. No exception may escape,
every cycle must commit, `b` must be recorded as ok every time, and everything stored
for people to read must be strict JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from monitor.config import ChannelConfig
from monitor.core.records import ErrorKind
from monitor.runtime.cycle import Checker
from monitor.sim.config import sim_config
from monitor.store.database import open_database
from monitor.store.schema import Check, EventRow, TokenState
from tests.support.json_check import strict
from tests.support.misbehaving import BodyServer, serving_bodies

A, B = "sk-prop-token-a-0000000000000", "sk-prop-token-b-1111111111111"
VALID = json.dumps(
    {"success": True, "data": [{"id": f"m-{i}", "owned_by": "x"} for i in range(5)]}
).encode()


@pytest.fixture(scope="module")
def gateway() -> Iterator[BodyServer]:
    with serving_bodies() as server:
        server.body = VALID
        yield server


# Strings with everything a terminal, a database or an encoder may choke on.
hostile_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=12
) | st.sampled_from(["\ud800x", "\udfff", "\x1b[2J", "a\x00b", "line\nFAKE: ok", "\u202e", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=12,
)
# Raw number literals JSON allows but floats cannot hold.
raw_numbers = st.sampled_from(
    ["1e999999999", "-1e999", "1e-999999", "123456789012345678901234567890", "1e308", "-0.0"]
)


@st.composite
def model_items(draw: st.DrawFn) -> object:
    """A models-list item: usually shaped like new-api's, with hostile values in it."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    item: dict[str, object] = {"id": draw(hostile_text | st.sampled_from(["gpt-4o", "m-1"]))}
    if draw(st.booleans()):
        item["owned_by"] = draw(json_values)
    if draw(st.booleans()):
        item["supported_endpoint_types"] = draw(st.lists(hostile_text, max_size=3) | json_values)
    return item


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # any JSON document at all
        return json.dumps(draw(json_values)).encode()
    if kind == 1:  # not JSON, or broken bytes
        return draw(st.binary(max_size=40))
    items = draw(st.lists(model_items(), max_size=6))
    text = json.dumps({"success": True, "data": items})  # NaN/Infinity as literals
    if kind == 2:  # a placeholder swapped for a raw literal or deep nesting
        literal = draw(raw_numbers | st.sampled_from([_nested(d) for d in (31, 33, 250, 900)]))
        text = json.dumps({"success": True, "data": [{"id": "deep", "owned_by": "@@"}]})
        text = text.replace('"@@"', literal)
    if kind == 3:  # a token echoed back as a model id
        text = json.dumps({"success": True, "data": [{"id": A, "owned_by": A[3:]}]})
    return text.encode()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=bodies(), second=bodies())
def test_any_answer_fails_only_its_own_token(
    gateway: BodyServer, tmp_path_factory: pytest.TempPathFactory, first: bytes, second: bytes
) -> None:
    path: Path = tmp_path_factory.mktemp("prop") / "monitor.db"
    db = open_database(f"sqlite:///{path}")
    hook = ChannelConfig(
        name="hook", type="webhook", options={"url": "http://127.0.0.1:9/"}
    )  # enqueued only: the payloads are read back from the database
    config = sim_config(gateway.base_url, {"a": A, "b": B}, channels=[hook])
    checker = Checker(config, db)
    try:
        for body in (first, second):
            gateway.bodies[A] = body
            (report,) = checker.check()
            outcomes = {t.token: t for t in report.tokens}
            assert outcomes["b"].outcome == "ok"
            a = outcomes["a"]
            assert a.outcome == "ok" or a.outcome == str(ErrorKind.INVALID_RESPONSE), a
        with db.reader() as session:
            checks = session.execute(select(Check.token, Check.outcome, Check.message)).all()
            states = {s.token: s for s in session.scalars(select(TokenState))}
            payloads = session.scalars(select(EventRow.payload)).all()
            stored_messages = [m for _, _, m in checks if m]
        assert sorted(t for t, _, _ in checks) == ["a", "a", "b", "b"]  # both cycles committed
        assert states["b"].last_outcome == "ok"
        for payload in payloads:
            strict(payload)
        for text in [*payloads, *stored_messages]:
            assert A not in text and A[3:] not in text
    finally:
        db.close()
