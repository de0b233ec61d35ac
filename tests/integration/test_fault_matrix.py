"""The fault matrix: trust under hostile upstreams (docs/detection.md, README "What counts
as a change").

Every row is one way a gateway misbehaves, played by the real simulator on loopback,
checked by the real pipeline into a real database, and delivered by the real
dispatcher to a real webhook receiver, so the assertions are about what was SENT.

The scene of every row: two tokens on one new-api source, `a` in group "default" and
`b` in group "vip" (about 50 models each, most shared), with the default detection
settings (confirm_checks=2, failure_threshold=3, mass_change_share=0.5) unless a row
must shrink a timeout or a size cap. Cycle 0 is the silent baseline, cycles 1..N carry
the row's fault (for one token or both; by default four cycles, one past the failure
threshold; a few rows fail from cycle 0, before a token ever had a good check), then the
fault clears and two clean cycles follow. After every cycle the test checks:

1. each check's outcome ("ok" or an ErrorKind value), and for failed checks the stored
   HTTP status and a non-empty message that holds no token;
2. the stored state: a cycle of failed checks adds no snapshot, failed Check rows have
   no snapshot, TokenState.failing / consecutive_failures follow the rules, and the
   final number of snapshots is what the row's lists imply;
3. the events that reached the receiver, against an oracle of the health rules:
   `token.failing` at once for auth/forbidden and at the failure threshold otherwise,
   once per spell, one `token.recovered` on the first success after it; and no
   `models.changed` content except the real changes the row lists, each sent once.
   Every payload received validates against the published schema.

Cycles run an hour apart on an injected clock shared by the checker and the dispatcher
(`Row.gap`), far past any Retry-After: a 429 row here is about classification and health,
not about the per-source backoff. The whole matrix runs on SQLite; rows marked
`postgres=True` run on PostgreSQL too when MODEL_MONITOR_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.config import Config, MonitorSettings
from monitor.core.records import ErrorKind, FetchError
from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.events import payload_errors
from monitor.runtime.cycle import Checker
from monitor.sim import Fault, GatewaySimulator, WebhookReceiver, fingerprint, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from monitor.store.schema import Check, Snapshot, TokenState
from tests.support.canary import CANARY, database_contents
from tests.support.clock import Clock
from tests.support.ports import free_port

OK = "ok"
BOTH = ("a", "b")
VALUES = {"a": CANARY, "b": "sk-canary-b-2c4e6a8f0b1d3f5a7c9e1b3d5f7a9c0e"}
# The spellings of a token a server (or a bug) could leak: as sent, and without "sk-".
SECRETS = tuple(form for value in VALUES.values() for form in (value, value[3:]))
GROUP_OF = {"a": "default", "b": "vip"}
DEFAULTS = MonitorSettings()
CYCLE_GAP = timedelta(hours=1)
UNCHECKED = -1  # a Row.status / Row.retry_after that is not asserted
MODELS_PATHS = frozenset({"/v1/models", "/v1/models/"})

_TYPES = (
    ("openai",),
    ("openai", "openai-response"),
    ("anthropic", "openai"),
    ("gemini", "openai"),
    ("embeddings",),
)
_OWNERS = ("openai", "claude", "google gemini", "custom")


def catalog(common: int = 45, vip_only: int = 5) -> dict[str, list[dict[str, Any]]]:
    """The two groups: `common` shared models plus each group's own (3 and `vip_only`)."""
    shared = [
        make_model(f"common-{i:05d}", _TYPES[i % len(_TYPES)], _OWNERS[i % len(_OWNERS)])
        for i in range(common)
    ]
    return {
        "default": [*shared, *(make_model(f"a-only-{i}") for i in range(3))],
        "vip": [
            *shared,
            *(make_model(f"b-only-{i:05d}", ("openai", "anthropic")) for i in range(vip_only)),
        ],
    }


# -- the scene a row acts on --------------------------------------------------------------


class Stage:
    """The gateway as a row sees it: tokens by name, the groups' lists, fault injection."""

    def __init__(self, gateway: GatewaySimulator, row: Row) -> None:
        self.gateway = gateway
        self.row = row
        self.baseline = catalog(vip_only=row.vip_only)
        self.groups = {name: list(models) for name, models in self.baseline.items()}

    @classmethod
    def open(cls, gateway: GatewaySimulator, row: Row) -> Stage:
        """The baseline scene: both groups served, both tokens valid."""
        stage = cls(gateway, row)
        stage.set_groups(stage.baseline)
        for name, value in VALUES.items():
            gateway.add_token(value, group=GROUP_OF[name])
        return stage

    def inject(self, fault: Fault, token: str, times: int = 1) -> None:
        self.gateway.inject(fault, token=VALUES[token], times=times)

    def visible(self, token: str) -> list[dict[str, Any]]:
        return self.gateway.visible_models(VALUES[token])

    def set_groups(self, groups: Mapping[str, list[dict[str, Any]]]) -> None:
        for name, models in groups.items():
            self.groups[name] = list(models)
            self.gateway.set_group(name, models)

    def edit(self, fn: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        """Apply `fn` to every model of every group (None drops the model): a real change."""
        edited = {}
        for name, models in self.groups.items():
            edited[name] = [m for m in (fn(dict(model)) for model in models) if m is not None]
        self.set_groups(edited)

    def heal(self) -> None:
        """The fault clears: no queued faults, tokens valid, the gateway up."""
        self.gateway.clear_faults()
        for value in VALUES.values():
            self.gateway.renew_token(value)
        if not self.gateway.running:
            self.gateway.start()
        if self.row.restore:
            self.set_groups(self.baseline)


Arrange = Callable[[Stage, int], None]
Schedule = Callable[[int, str], str]
# A real change that must be sent exactly once: (cycle, type, model, tokens); cycle None
# when more than one cycle would honour the rules (it must then come once, in any cycle).
Sent = tuple[int | None, str, str, tuple[str, ...]]


@dataclass(frozen=True)
class Row:
    """One hostile upstream and what must (and must not) come of it."""

    id: str
    arrange: Arrange  # called before each faulty cycle
    kind: str = OK  # the outcome of an affected check: an ErrorKind value or "ok"
    tokens: tuple[str, ...] = BOTH  # the affected tokens; the others stay healthy
    cycles: int = 4  # faulty cycles: one past the failure threshold, to see no repeat
    first: int = 1  # the first faulty cycle (0: the token has never had a good check)
    schedule: Schedule | None = None  # (cycle, token) -> outcome, when it varies
    status: int | None = UNCHECKED  # the HTTP status stored with each failed check
    retry_after: float | None = UNCHECKED
    settings: Mapping[str, object] = field(default_factory=dict)
    url: Callable[[GatewaySimulator], str] | None = None  # the source's URL while faulty
    requests_per_check: int | None = 1  # /v1/models requests per affected faulty check
    changes: tuple[Sent, ...] = ()
    snapshots: int = 2  # snapshots stored at the end (the baseline: one per group)
    vip_only: int = 5  # models only token b sees (on top of the 45 both see)
    clean: int = 2  # clean cycles after the fault clears
    restore: bool = True  # put the baseline lists back when healing (False: the change was real)
    postgres: bool = False  # also run on PostgreSQL (a representative subset)
    gap: timedelta = CYCLE_GAP  # time between two cycles on the injected clock
    bug: str | None = None  # a known product bug makes this row fail (strict xfail)

    @property
    def faulty(self) -> range:
        return range(self.first, self.first + self.cycles)

    @property
    def total(self) -> int:
        return self.first + self.cycles + self.clean

    def outcome(self, cycle: int, token: str) -> str:
        if cycle not in self.faulty:
            return OK
        if self.schedule is not None:
            return self.schedule(cycle, token)
        return self.kind if token in self.tokens else OK


def each(make: Fault | Callable[[Stage, str], Fault], times: int = 1) -> Arrange:
    """Queue the fault for each affected token's next `times` requests, every faulty cycle."""

    def arrange(stage: Stage, cycle: int) -> None:
        for token in stage.row.tokens:
            fault = make if isinstance(make, Fault) else make(stage, token)
            stage.inject(fault, token, times)

    return arrange


def nothing(stage: Stage, cycle: int) -> None:
    """The gateway behaves; the row is about what it serves anyway (random order)."""


def failing(
    id: str,
    make: Fault | Callable[[Stage, str], Fault],
    kind: ErrorKind,
    status: int | None = UNCHECKED,
    **options: Any,
) -> Row:
    return Row(id=id, arrange=each(make), kind=str(kind), status=status, **options)


def at_url(id: str, url: Callable[[GatewaySimulator], str], **options: Any) -> Row:
    """A network failure made by the source's address itself (it is fixed when healing)."""
    return Row(
        id=id,
        arrange=nothing,
        kind=str(ErrorKind.NETWORK),
        status=None,
        url=url,
        requests_per_check=0,
        **options,
    )


# -- row helpers -----------------------------------------------------------------------------


def dead_port(_: GatewaySimulator) -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def without_id(stage: Stage, token: str) -> Fault:
    models = stage.visible(token)
    del models[7]["id"]
    return Fault.data(models)


def duplicated(stage: Stage, token: str) -> Fault:
    models = stage.visible(token)
    return Fault.data([*models, dict(models[3])])


def keep_tenth(stage: Stage, token: str) -> Fault:
    models = stage.visible(token)
    return Fault.data(models[: len(models) // 10])


def no_endpoint_types(stage: Stage, token: str) -> Fault:
    return Fault.data([{**m, "supported_endpoint_types": []} for m in stage.visible(token)])


def tenth_then_panic(stage: Stage, cycle: int) -> None:
    """A list that lost 90%, and the confirming second fetch hits a panic."""
    for token in stage.row.tokens:
        stage.inject(keep_tenth(stage, token), token)
        stage.inject(Fault.panic(), token)


def split_statuses(stage: Stage, cycle: int) -> None:
    """One outage, two faces: two token.failing events (one per kind and status)."""
    stage.inject(Fault.html(502), "a")
    stage.inject(Fault.html(503), "b")


def gateway_down(stage: Stage, cycle: int) -> None:
    stage.gateway.stop()  # same port when it comes back: connection refused meanwhile


def flap(stage: Stage, cycle: int) -> None:
    """common-00004 vanishes on odd cycles and is back on even ones (a channel auto-disabled)."""
    stage.set_groups(stage.baseline)
    if cycle % 2:
        stage.edit(lambda m: None if m["id"] == "common-00004" else m)


def new_model_flickers(stage: Stage, cycle: int) -> None:
    """A model that was never there shows up on odd cycles only (and is there at the end)."""
    stage.set_groups(stage.baseline)
    if cycle % 2:
        extra = make_model("flicker-1", ("openai",))
        stage.set_groups({name: [*models, extra] for name, models in stage.groups.items()})


def removed_amid_500s(stage: Stage, cycle: int) -> None:
    if cycle == 1:
        stage.edit(lambda m: None if m["id"] == "common-00007" else m)
    if cycle % 2:
        for token in BOTH:
            stage.inject(Fault.panic(), token)


def removed_staggered(stage: Stage, cycle: int) -> None:
    """The removal is real; a and b take turns answering with a CDN's 502."""
    if cycle == 1:
        stage.edit(lambda m: None if m["id"] == "common-00011" else m)
    stage.inject(Fault.html(502), "a" if cycle % 2 else "b")


def add_gpt5(stage: Stage) -> None:
    """A real addition, to every group."""
    gpt5 = make_model("gpt-5", ("openai", "openai-response"))
    stage.set_groups({name: [*models, gpt5] for name, models in stage.groups.items()})


def added_during_outage(stage: Stage, cycle: int) -> None:
    """gpt-5 arrives while token a is down: b reports it now, a when it is back."""
    if cycle == 1:
        add_gpt5(stage)
    stage.inject(Fault.panic(), "a")


def types_changed_amid_disconnects(stage: Stage, cycle: int) -> None:
    if cycle == 1:
        stage.edit(
            lambda m: (
                {**m, "supported_endpoint_types": ["openai", "openai-response-compact"]}
                if m["id"] == "common-00010"
                else m
            )
        )
    if cycle % 2:
        for token in BOTH:
            stage.inject(Fault.disconnect(), token)


def missing_for_one_check(stage: Stage, token: str, model: str) -> None:
    stage.inject(Fault.data([m for m in stage.visible(token) if m["id"] != model]), token)


def types_changed_then_missing_once(stage: Stage, cycle: int) -> None:
    """A real endpoint-types change, then the model is missing from one check."""
    if cycle == 1:
        stage.edit(
            lambda m: (
                {**m, "supported_endpoint_types": ["jina-rerank"]}
                if m["id"] == "common-00010"
                else m
            )
        )
    else:
        for token in BOTH:
            missing_for_one_check(stage, token, "common-00010")


def missing_then_blank_types(stage: Stage, cycle: int) -> None:
    """Two different one-check hiccups back to back: a model missing (its channel was
    auto-disabled), then every endpoint-types list empty (a cache refresh)."""
    for token in BOTH:
        if cycle == 1:
            missing_for_one_check(stage, token, "common-00010")
        else:
            stage.inject(no_endpoint_types(stage, token), token)


def mixed_spell(stage: Stage, cycle: int) -> None:
    """One outage, changing shape: 502 page, dropped connection, panic, then a 401."""
    fault = {1: Fault.html(502), 2: Fault.disconnect(), 3: Fault.panic(), 4: Fault.http(401)}
    stage.inject(fault[cycle], "b")


MIXED = {1: ErrorKind.SERVER, 2: ErrorKind.NETWORK, 3: ErrorKind.SERVER, 4: ErrorKind.AUTH}


def broken_streaks(stage: Stage, cycle: int) -> None:
    if cycle != 3:
        stage.inject(Fault.http(503), "a")


def addition_in_a_big_list(stage: Stage, cycle: int) -> None:
    """Cycle 1: the same 50,000 models in a new order; cycle 2: gpt-5 arrives."""
    if cycle == 2:
        add_gpt5(stage)


SERVER, INVALID = ErrorKind.SERVER, ErrorKind.INVALID_RESPONSE
TINY_CAP = {"max_response_bytes": 20_000}

ROWS: tuple[Row, ...] = (
    # -- credentials: token.failing at once
    Row(
        id="401-expired-token",
        arrange=lambda stage, cycle: stage.gateway.expire_token(VALUES["a"]),
        kind=str(ErrorKind.AUTH),
        tokens=("a",),
        status=401,
        postgres=True,
    ),
    failing(
        "401-for-a-single-check",
        Fault.http(401, message="Invalid token"),
        ErrorKind.AUTH,
        401,
        tokens=("a",),
        cycles=1,
    ),
    failing(
        "401-invalid-token-both", Fault.http(401, message="Invalid token"), ErrorKind.AUTH, 401
    ),
    failing(
        "401-before-any-good-check",
        Fault.http(401, message="Invalid token"),
        ErrorKind.AUTH,
        401,
        tokens=("b",),
        first=0,
    ),
    failing(
        "403-access-denied",
        Fault.http(403, message="IP not allowed", code="access_denied"),
        ErrorKind.FORBIDDEN,
        403,
        tokens=("b",),
    ),
    # -- other HTTP errors: token.failing at the threshold
    failing(
        "302-redirect",
        Fault(status=302, headers={"Location": "https://elsewhere.example/v1/models"}),
        ErrorKind.CLIENT_ERROR,
        302,
    ),
    failing("404-wrong-path", Fault.http(404), ErrorKind.CLIENT_ERROR, 404),
    failing(
        "429-retry-after", Fault.rate_limited(30), ErrorKind.RATE_LIMITED, 429, retry_after=30.0
    ),
    failing("429-bare", Fault.rate_limited(), ErrorKind.RATE_LIMITED, 429, retry_after=None),
    failing("500-new-api-panic", Fault.panic(), SERVER, 500, postgres=True),
    failing("500-empty-body", Fault(status=500, body=b""), SERVER, 500),
    failing("502-html", Fault.html(502), SERVER, 502, tokens=("a",)),
    failing("503-html", Fault.html(503), SERVER, 503),
    failing("504-html", Fault.html(504), SERVER, 504),
    # -- HTTP 200 that is not a models list
    failing("200-success-false", Fault.success_false(), INVALID, 200),
    failing("200-error-body", Fault.error_body("no available channel"), INVALID, 200),
    failing("200-html-page", Fault.html(200), INVALID, 200),
    failing(
        "200-plain-text", Fault(status=200, body=b"OK", content_type="text/plain"), INVALID, 200
    ),
    failing(
        "200-top-level-list",
        lambda stage, t: Fault(status=200, body=stage.visible(t)),
        INVALID,
        200,
    ),
    failing("200-invalid-utf8", Fault.invalid_utf8(), INVALID, 200),
    failing("200-data-null", Fault.data(None), INVALID, 200, tokens=("b",)),
    failing("200-data-object", Fault.data({"common-00001": {"id": "common-00001"}}), INVALID, 200),
    failing("200-model-without-id", without_id, INVALID, 200),
    failing("200-duplicate-ids", duplicated, INVALID, 200),
    # -- transport
    failing("truncated-json", Fault.truncated(200), ErrorKind.NETWORK, 200),
    failing("disconnect-without-answer", Fault.disconnect(), ErrorKind.NETWORK, None),
    failing(
        "drip-1-byte-per-second",
        Fault.drip(1.0),
        ErrorKind.TIMEOUT,
        200,
        settings={"timeout": 0.5},
    ),
    failing(
        "slow-headers",
        Fault.slow(1.0),
        ErrorKind.TIMEOUT,
        None,
        settings={"timeout": 0.3},
        requests_per_check=None,  # the simulator logs a delayed request only once it answers
    ),
    failing(
        "over-size-cap-declared",
        Fault.oversize(40_000),
        ErrorKind.TOO_LARGE,
        200,
        settings=TINY_CAP,
    ),
    failing(
        "over-size-cap-chunked",
        Fault.oversize(40_000, chunked=True),
        ErrorKind.TOO_LARGE,
        200,
        settings=TINY_CAP,
    ),
    at_url("connection-refused", dead_port),
    at_url("dns-failure", lambda _: "http://gateway.invalid/v1"),
    at_url("tls-to-plain-http", lambda gw: gw.base_url.replace("http://", "https://")),
    Row(
        id="gateway-down-then-back",
        arrange=gateway_down,
        kind=str(ErrorKind.NETWORK),
        status=None,
        requests_per_check=0,
    ),
    # -- health rules across a spell
    failing("500-before-any-good-check", Fault.panic(), SERVER, 500, first=0, postgres=True),
    Row(
        id="502-for-a-503-for-b",
        arrange=split_statuses,
        kind=str(SERVER),
    ),
    Row(
        id="error-kind-changes-within-one-spell",
        arrange=mixed_spell,
        cycles=4,
        schedule=lambda cycle, token: str(MIXED[cycle]) if token == "b" else OK,
    ),
    Row(
        id="streak-broken-by-one-success",
        arrange=broken_streaks,
        cycles=5,
        schedule=lambda cycle, token: OK if token == "b" or cycle == 3 else str(SERVER),
    ),
    # -- lists that are valid but not to be believed at once
    Row(
        id="empty-list-for-one-check",
        arrange=each(Fault.data([]), times=2),
        kind=OK,
        cycles=1,
        requests_per_check=2,
        snapshots=3,  # the empty list, once for both tokens
        postgres=True,
    ),
    Row(
        id="empty-list-once-refetch-sees-all",
        arrange=each(Fault.data([]), times=1),
        kind=OK,
        cycles=1,
        requests_per_check=2,
    ),
    Row(
        id="loses-90-percent-for-one-check",
        arrange=each(keep_tenth, times=2),
        kind=OK,
        cycles=1,
        requests_per_check=2,
        snapshots=4,
    ),
    Row(
        id="loses-90-percent-then-refetch-panics",
        arrange=tenth_then_panic,
        kind=str(SERVER),
        status=500,
        requests_per_check=2,
    ),
    Row(
        id="model-flaps-every-other-check",
        arrange=flap,
        kind=OK,
        cycles=8,
        requests_per_check=None,
        snapshots=4,
        postgres=True,
    ),
    Row(
        id="new-model-flickers-in-every-other-check",
        arrange=new_model_flickers,
        cycles=7,
        changes=((1, "added", "flicker-1", BOTH),),
        snapshots=4,
        restore=False,
    ),
    Row(
        id="endpoint-types-empty-for-one-check",
        arrange=each(no_endpoint_types),
        kind=OK,
        cycles=1,
        snapshots=4,
    ),
    Row(id="order-shuffled-every-check", arrange=nothing, kind=OK, cycles=4),
    # -- real changes, reported once, after the guard
    Row(
        id="real-removal-amid-500s",
        arrange=removed_amid_500s,
        cycles=5,
        schedule=lambda cycle, token: str(SERVER) if cycle % 2 else OK,
        changes=((4, "removed", "common-00007", BOTH),),
        snapshots=4,
        restore=False,
        postgres=True,
    ),
    Row(
        id="real-removal-tokens-failing-in-turn",
        arrange=removed_staggered,
        cycles=5,
        schedule=lambda cycle, token: str(SERVER) if (token == "a") == bool(cycle % 2) else OK,
        changes=((3, "removed", "common-00011", ("b",)), (4, "removed", "common-00011", ("a",))),
        snapshots=4,
        restore=False,
    ),
    Row(
        id="real-addition-during-an-outage",
        arrange=added_during_outage,
        kind=str(SERVER),
        tokens=("a",),
        cycles=4,
        changes=((1, "added", "gpt-5", ("b",)), (5, "added", "gpt-5", ("a",))),
        snapshots=4,
        restore=False,
        postgres=True,
    ),
    Row(
        id="real-endpoint-types-change-amid-disconnects",
        arrange=types_changed_amid_disconnects,
        cycles=5,
        schedule=lambda cycle, token: str(ErrorKind.NETWORK) if cycle % 2 else OK,
        changes=((4, "endpoint_types_changed", "common-00010", BOTH),),
        snapshots=4,
        restore=False,
    ),
    # -- one-check hiccups of different kinds, back to back: still nothing to report
    Row(
        id="types-change-then-missing-for-one-check",
        arrange=types_changed_then_missing_once,
        cycles=2,
        changes=((None, "endpoint_types_changed", "common-00010", BOTH),),
        snapshots=6,
        restore=False,
    ),
    Row(
        id="missing-then-empty-endpoint-types",
        arrange=missing_then_blank_types,
        cycles=2,
        snapshots=6,
    ),
    # 50,000 models cost the product about a second per check on a 2-core machine (parse,
    # canonical JSON, and one snapshot load when something changed): so b alone sees them,
    # and the row runs baseline, unchanged, the addition, and one clean check.
    Row(
        id="50000-models-one-real-addition",
        arrange=addition_in_a_big_list,
        cycles=2,
        vip_only=50_000 - 45,
        changes=((2, "added", "gpt-5", BOTH),),
        snapshots=4,
        clean=1,
        restore=False,
    ),
)


def _cases() -> Iterator[Any]:
    for row in ROWS:
        marks = [pytest.mark.xfail(strict=True, reason=row.bug)] if row.bug else []
        yield pytest.param(row, "sqlite", id=f"{row.id}-sqlite", marks=marks)
        if row.postgres:
            marks = [*marks, pytest.mark.postgres]
            yield pytest.param(row, "postgresql", id=f"{row.id}-postgresql", marks=marks)


# -- the oracle --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the health rules say after one cycle, for one token."""

    failures: int
    failing: bool
    event: str | None  # "token.failing", "token.recovered" or None
    kind: str | None  # the error kind a token.failing carries


def oracle(row: Row, token: str, cycles: int) -> list[Expected]:
    """The token health rules of docs/detection.md, written out independently of
    monitor.events.health."""
    out: list[Expected] = []
    failures, is_failing = 0, False
    for cycle in range(cycles):
        outcome = row.outcome(cycle, token)
        if outcome == OK:
            out.append(Expected(0, False, "token.recovered" if is_failing else None, None))
            failures, is_failing = 0, False
            continue
        failures += 1
        immediate = outcome in (ErrorKind.AUTH, ErrorKind.FORBIDDEN)
        starts = not is_failing and (immediate or failures >= DEFAULTS.failure_threshold)
        is_failing = is_failing or starts
        out.append(Expected(failures, is_failing, "token.failing" if starts else None, outcome))
    return out


# -- the harness -------------------------------------------------------------------------


@dataclass
class Cycle:
    index: int
    outcomes: dict[str, str]
    payloads: list[dict[str, Any]]
    checks: list[Check]
    states: dict[str, TokenState]
    snapshots_before: int
    snapshots_after: int
    models_requests: dict[str, int]
    errors: dict[str, FetchError | None]
    event_ids: list[str]  # in the order the cycle built them


class Harness:
    def __init__(
        self, row: Row, gateway: GatewaySimulator, receiver: WebhookReceiver, db: Database
    ) -> None:
        self.row = row
        self.gateway = gateway
        self.receiver = receiver
        self.db = db
        self.clock = Clock.whole_second()  # one clock for checker and dispatcher
        self.config = sim_config(
            gateway.base_url,
            VALUES,
            channels=[webhook_channel("hook", receiver.url)],
            **row.settings,
        )
        self.dispatcher = Dispatcher(self.config, db, build_channels(self.config), clock=self.clock)
        self.checker = Checker(self.config, db, clock=self.clock)
        self.faulty = self.checker
        if row.url is not None:
            source = replace(self.config.sources[0], base_url=row.url(gateway))
            config = Config(
                path=None,
                monitor=self.config.monitor,
                sources=(source,),
                tokens=self.config.tokens,
                channels=self.config.channels,
            )
            self.faulty = Checker(config, db, clock=self.clock)
        self.last_check_id = 0

    def count(self, model: type) -> int:
        with self.db.reader() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def models_requests(self) -> Counter[str]:
        names = {fingerprint(value): name for name, value in VALUES.items()}
        return Counter(
            names[r.token]
            for r in self.gateway.requests
            if r.path in MODELS_PATHS and r.token in names
        )

    def run(self, index: int, checker: Checker) -> Cycle:
        self.clock.advance(self.row.gap)
        snapshots_before = self.count(Snapshot)
        requests_before = self.models_requests()
        received_before = len(self.receiver.received)
        (report,) = checker.check()
        dispatched = self.dispatcher.run_once()
        assert (dispatched.retried, dispatched.dead) == (0, 0), dispatched
        received = self.receiver.received[received_before:]
        assert len(received) == len(report.events)
        for message in received:
            for secret in SECRETS:
                assert secret.encode() not in message.body
        payloads = [message.json() for message in received]
        # Everything the cycle enqueued went out in the same cycle. (In which order is
        # test_events_of_one_cycle_are_sent_in_their_order's business.)
        assert sorted(p["id"] for p in payloads) == sorted(e.id for e in report.events)
        with self.db.reader() as session:
            checks = list(
                session.scalars(
                    select(Check).where(Check.id > self.last_check_id).order_by(Check.id)
                )
            )
            states = {s.token: s for s in session.scalars(select(TokenState))}
        self.last_check_id = max(c.id for c in checks)
        requests_after = self.models_requests()
        return Cycle(
            index=index,
            outcomes={t.token: t.outcome for t in report.tokens},
            payloads=payloads,
            checks=checks,
            states=states,
            snapshots_before=snapshots_before,
            snapshots_after=self.count(Snapshot),
            models_requests={t: requests_after[t] - requests_before[t] for t in BOTH},
            errors={t.token: t.error for t in report.tokens},
            event_ids=[e.id for e in report.events],
        )


def assert_cycle(
    row: Row, cycle: Cycle, expected: Mapping[str, Expected], first_ok: set[str]
) -> None:
    """`first_ok`: the tokens whose first successful check is this one (their baseline)."""
    where = f"{row.id}, cycle {cycle.index}"
    outcomes = {token: row.outcome(cycle.index, token) for token in BOTH}

    # (1) what each check found
    assert cycle.outcomes == outcomes, where
    assert sorted(c.token for c in cycle.checks) == sorted(BOTH), where
    for check in cycle.checks:
        assert check.outcome == outcomes[check.token], where
        if check.outcome == OK:
            assert check.snapshot_id is not None and check.message is None, where
            assert check.baseline == (check.token in first_ok), where
            continue
        error = cycle.errors[check.token]
        assert error is not None and str(error.kind) == check.outcome, where
        if row.status != UNCHECKED:
            assert check.http_status == row.status, where
        if row.retry_after != UNCHECKED:
            assert error.retry_after == row.retry_after, where
        assert check.message, where
        assert not any(s in check.message for s in SECRETS), where
        # (2) a failed check never becomes a snapshot
        assert (check.snapshot_id, check.model_count) == (None, None), where

    # (2) stored state
    if all(outcome != OK for outcome in outcomes.values()):
        assert cycle.snapshots_after == cycle.snapshots_before, where
    for token, state in cycle.states.items():
        want = expected[token]
        got = (state.consecutive_failures, state.failing, state.last_outcome)
        assert got == (want.failures, want.failing, outcomes[token]), f"{where}, {token}"
        if state.last_error is not None:
            assert not any(s in state.last_error for s in SECRETS), where

    # requests: failed checks are not retried; suspicious lists are fetched twice
    if cycle.index in row.faulty and row.requests_per_check is not None:
        for token in row.tokens:
            assert cycle.models_requests[token] == row.requests_per_check, f"{where}, {token}"

    # (3) what was sent
    for payload in cycle.payloads:
        assert payload_errors(payload) == [], (where, payload)
    health = Counter(
        (p["type"], token)
        for p in cycle.payloads
        if p["type"] != "models.changed"
        for token in p["tokens"]
    )
    want_health = Counter((e.event, token) for token, e in expected.items() if e.event is not None)
    assert health == want_health, where
    failing_events = [p for p in cycle.payloads if p["type"] == "token.failing"]
    for payload in failing_events:
        for token in payload["tokens"]:
            assert payload["error"]["kind"] == expected[token].kind, where
            assert payload["error"]["message"], where
    kinds = {(p["error"]["kind"], p["error"]["status"]) for p in failing_events}
    assert len(failing_events) == len(kinds), f"{where}: one token.failing per kind and status"
    assert sum(p["type"] == "token.recovered" for p in cycle.payloads) <= 1, where
    changed = [p for p in cycle.payloads if p["type"] == "models.changed"]
    assert len(changed) <= 1, f"{where}: at most one models.changed per cycle of a source"
    floating = {change[1:] for change in row.changes if change[0] is None}
    sent = sorted(
        (cycle.index, c["type"], c["model"], tuple(c["tokens"]))
        for p in changed
        for c in p["changes"]
        if (c["type"], c["model"], tuple(c["tokens"])) not in floating
    )
    assert sent == sorted(c for c in row.changes if c[0] == cycle.index), where


def assert_nothing_stored_leaks(db: Database) -> None:
    stored = database_contents(db.url.render_as_string(hide_password=False))
    assert not any(s.encode() in stored for s in SECRETS)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.close()


@pytest.mark.parametrize(("row", "db_url"), list(_cases()), indirect=["db_url"])
def test_fault_matrix(
    row: Row, gateway: GatewaySimulator, receiver: WebhookReceiver, db: Database
) -> None:
    # Default detection settings: only timeouts and size caps may be shrunk by a row.
    assert set(row.settings) <= {"timeout", "max_response_bytes"}, row.id
    stage = Stage.open(gateway, row)
    harness = Harness(row, gateway, receiver, db)
    expected = {token: oracle(row, token, row.total) for token in BOTH}

    cycles: list[Cycle] = []
    for index in range(row.total):
        if index in row.faulty:
            row.arrange(stage, index)
            cycles.append(harness.run(index, harness.faulty))
            continue
        if index == row.faulty.stop:
            stage.heal()
        cycles.append(harness.run(index, harness.checker))

    had_ok: set[str] = set()
    for cycle in cycles:
        ok_now = {token for token, outcome in cycle.outcomes.items() if outcome == OK}
        assert_cycle(row, cycle, {t: expected[t][cycle.index] for t in BOTH}, ok_now - had_ok)
        had_ok |= ok_now

    # Over the whole run: every real change once, one recovery per failing spell.
    sent = Counter(
        (c["type"], c["model"], token)
        for cycle in cycles
        for p in cycle.payloads
        if p["type"] == "models.changed"
        for c in p["changes"]
        for token in c["tokens"]
    )
    assert all(n == 1 for n in sent.values()), sent
    for _, kind, model, tokens in row.changes:
        assert all(sent[kind, model, token] == 1 for token in tokens), (kind, model, tokens)
    health = Counter(
        (p["type"], token)
        for cycle in cycles
        for p in cycle.payloads
        if p["type"] != "models.changed"
        for token in p["tokens"]
    )
    for token in BOTH:
        assert health["token.failing", token] == health["token.recovered", token], token
    assert harness.count(Snapshot) == row.snapshots
    assert_nothing_stored_leaks(db)


def test_events_of_one_cycle_are_sent_in_their_order(
    gateway: GatewaySimulator,
    receiver: WebhookReceiver,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """monitor.events.grouping fixes the order of a cycle's events (health first, so a
    receiver reading in order knows who came back before it reads what they saw); the
    receiver must get them in that order.

    Ids are pinned to one millisecond with falling random bits: what happens by chance
    about every other time two events of a cycle are created in the same millisecond.
    """
    counter = iter(range(2**32, 0, -1))
    one_millisecond = SimpleNamespace(time_ns=lambda: 1_800_000_000_000_000_000)
    falling = SimpleNamespace(token_hex=lambda n: f"{next(counter):016x}")
    monkeypatch.setattr("monitor.core.ids.time", one_millisecond)
    monkeypatch.setattr("monitor.core.ids.secrets", falling)
    row = next(r for r in ROWS if r.id == "real-addition-during-an-outage")
    stage = Stage.open(gateway, row)
    db = open_database(db_url)
    try:
        harness = Harness(row, gateway, receiver, db)
        harness.run(0, harness.checker)
        for index in row.faulty:
            row.arrange(stage, index)
            harness.run(index, harness.faulty)
        stage.heal()
        cycle = harness.run(row.faulty.stop, harness.checker)
    finally:
        db.close()
    types = [p["type"] for p in cycle.payloads]
    assert sorted(types) == ["models.changed", "token.recovered"]
    assert types == ["token.recovered", "models.changed"]
