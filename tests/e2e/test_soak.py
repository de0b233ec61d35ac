"""Soak test: 200 check cycles against a hostile gateway, judged by what a webhook received.

Acceptance of "Trust under hostile upstreams": a simulator that injects random faults
and random real changes (fixed seed) is checked 200 times; afterwards the received
`models.changed` events replay exactly to the simulator's final truth for every token,
and no event reports a change that did not happen.

Design
- Everything is real and in-process: a `GatewaySimulator` on loopback, a SQLite file,
  a `Checker` with the default detection settings (confirm_checks=2,
  failure_threshold=3, mass_change_share=0.5; `sim_config` only shortens timeouts and
  the re-fetch pause), a `WebhookReceiver` behind a webhook channel, and
  `Dispatcher.run_once()` after every cycle. Assertions read the payloads the receiver
  got, tagged with the cycle whose dispatch delivered them.
- The truth: five tokens of one source, two per group ("alpha", "beta") and one with
  its own allow-list ("solo"), 30 to 80 models each. Before a cycle, real changes may
  be applied (add, remove, change `supported_endpoint_types`, change `owned_by`); the
  truth every token should see is recorded per cycle.
- One seeded `random.Random` drives everything. Before each cycle every token gets a
  plan: clean; a failing fault (HTTP errors, bodies that are not a models list, broken
  connections), which may repeat over consecutive cycles; an expiry spell (401 for a
  few cycles, then renewed); or a lie, a successful but wrong list (empty, most models
  gone, a 90% subset, one model missing, one model's endpoint types `[]`). Lies are
  queued for one or both fetches of a check (the pipeline fetches again when a list
  shrank by more than half); a lie is believed when the check's final fetch served it,
  and no token is served a believed lie in two consecutive successful checks, since
  the product promises resistance to a lie in a single check only. Faults are queued
  per token right before a cycle and cleared right after it, so each check gets
  exactly its plan.
- The checker and the dispatcher share a simulated clock that moves CYCLE_INTERVAL per
  cycle, so a 429's Retry-After is honoured deterministically: a wait longer than a
  cycle must skip the source's next cycles (no request at all), a shorter one must not.
- After the last cycle, faults and changes stop and confirm_checks + 1 clean cycles run
  (not counting cycles skipped because of a 429 in the last hostile cycle).
  Then, per token: replaying the received changes over the baseline must reproduce the
  final truth exactly; every change must agree with the truth of the cycle that
  reported it and must change what was reported before; and token.failing and
  token.recovered must be exactly those the README rules give for the checks that
  failed, hence alternate.

`MODEL_MONITOR_SOAK_SEED` overrides the seed for exploration; a failure message names
the seed, the cycle, the token, what was reported and the truth, with the token's recent
checks and the real changes to that model.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.config import Config
from monitor.delivery.outbox import Dispatcher
from monitor.delivery.registry import build_channels
from monitor.runtime.cycle import Checker, CycleReport
from monitor.sim import Fault, GatewaySimulator, WebhookReceiver, fingerprint, make_model
from monitor.sim.config import sim_config, webhook_channel
from monitor.store.database import Database, open_database
from tests.support.clock import Clock

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("MODEL_MONITOR_SOAK_SEED", "20251126"))
CYCLES = 200
CONFIRM_CHECKS = 2  # the default; the final clean phase runs this + 1 cycles
FAILURE_THRESHOLD = 3  # the default

# token name -> the scope whose models it sees: a group, or its own allow-list
TOKENS: dict[str, str] = {
    "alpha-1": "alpha",
    "alpha-2": "alpha",
    "beta-1": "beta",
    "beta-2": "beta",
    "solo": "solo",
}
OWN_LIST = "solo"
MIN_MODELS, MAX_MODELS = 30, 80
ID_POOL = tuple(f"model-{i:03d}" for i in range(160))  # scopes share ids, not records
ENDPOINT_TYPES = (
    "openai",
    "openai-response",
    "anthropic",
    "gemini",
    "jina-rerank",
    "image-generation",
    "embeddings",
)
OWNERS = ("openai", "anthropic", "google", "deepseek", "custom", "vertex-ai")

# Per token and cycle (all outside an expiry spell and independent of each other).
P_EXPIRE = 0.03
P_FAIL = 0.12
P_FAIL_AGAIN = 0.5  # after a failed check: failures come in streaks
P_LIE = 0.12
P_LIE_BOTH_FETCHES = 0.4
# Per cycle.
P_REAL_CHANGES = 0.4
# The checker's and dispatcher's clock moves this much per cycle; a 429 asking for a
# longer wait makes the next cycles skip the source (no request, no check).
CYCLE_INTERVAL = timedelta(minutes=2)
RETRY_AFTER_CHOICES = (1, 30, 300)  # seconds


def token_value(name: str) -> str:
    return f"sk-soak-{name}-{'0' * 24}"


# -- the truth ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What a token should see of one model (new-api's meaningful attributes)."""

    types: frozenset[str]
    owned_by: str

    def describe(self) -> str:
        return f"types={sorted(self.types)} owned_by={self.owned_by}"


Truth = dict[str, Spec]  # model id -> spec


def random_spec(rng: random.Random) -> Spec:
    types = frozenset(rng.sample(ENDPOINT_TYPES, rng.randint(1, 3)))
    return Spec(types, rng.choice(OWNERS))


def initial_truth(rng: random.Random) -> dict[str, Truth]:
    return {
        scope: {model: random_spec(rng) for model in rng.sample(ID_POOL, rng.randint(40, 70))}
        for scope in sorted(set(TOKENS.values()))
    }


def wire(truth: Mapping[str, Spec]) -> list[dict[str, Any]]:
    """The models in new-api's wire format (the simulator shuffles them per request)."""
    return [make_model(m, sorted(s.types), s.owned_by) for m, s in sorted(truth.items())]


@dataclass(frozen=True)
class RealChange:
    cycle: int
    scope: str
    model: str
    what: str


def mutate(rng: random.Random, scope: str, truth: Truth, cycle: int) -> RealChange:
    """Apply one random real change to `truth` (in place)."""
    roll = rng.random()
    absent = [m for m in ID_POOL if m not in truth]
    if (roll < 0.3 or len(truth) <= MIN_MODELS) and absent and len(truth) < MAX_MODELS:
        model = rng.choice(absent)  # may be one removed earlier: a re-addition
        truth[model] = random_spec(rng)
        return RealChange(cycle, scope, model, f"added ({truth[model].describe()})")
    model = rng.choice(sorted(truth))
    old = truth[model]
    if roll < 0.55 and len(truth) > MIN_MODELS:
        del truth[model]
        return RealChange(cycle, scope, model, "removed")
    if roll < 0.8:
        size = 0 if rng.random() < 0.1 else rng.randint(1, 3)
        types = frozenset(rng.sample(ENDPOINT_TYPES, size))
        while types == old.types:
            types = frozenset(rng.sample(ENDPOINT_TYPES, rng.randint(1, 3)))
        truth[model] = Spec(types, old.owned_by)
        return RealChange(cycle, scope, model, f"types {sorted(old.types)} -> {sorted(types)}")
    owner = rng.choice([o for o in OWNERS if o != old.owned_by])
    truth[model] = Spec(old.types, owner)
    return RealChange(cycle, scope, model, f"owned_by {old.owned_by} -> {owner}")


# -- plans: what each check of each token is served -------------------------------------


@dataclass(frozen=True)
class Plan:
    """One token's treatment in one cycle. `expect` is the check outcome it must give."""

    kind: str  # "clean", "fail", "expired" or "lie"
    label: str
    expect: str = "ok"  # "ok" or an ErrorKind value
    fault: Fault | None = None
    times: int = 1
    wait: float | None = None  # a 429's Retry-After, seconds


CLEAN = Plan("clean", "clean")

FAILURES: tuple[tuple[str, Callable[[], Fault], str], ...] = (
    ("500-panic", Fault.panic, "server"),
    ("502-html", lambda: Fault.html(502), "server"),
    ("503-error", lambda: Fault.http(503), "server"),
    ("success-false", Fault.success_false, "invalid_response"),
    ("error-body", Fault.error_body, "invalid_response"),
    ("truncated", lambda: Fault.truncated(40), "network"),
    ("invalid-utf8", Fault.invalid_utf8, "invalid_response"),
    ("data-null", lambda: Fault.data(None), "invalid_response"),
    ("html-200", lambda: Fault.html(200), "invalid_response"),
    ("disconnect", Fault.disconnect, "network"),
)


def failing_plan(rng: random.Random) -> Plan:
    if rng.random() < 1 / (len(FAILURES) + 1):
        wait = rng.choice(RETRY_AFTER_CHOICES)
        return Plan(
            "fail", f"429 retry-after {wait}s", "rate_limited", Fault.rate_limited(wait), wait=wait
        )
    label, make, kind = rng.choice(FAILURES)
    return Plan("fail", label, kind, make())


def lie_plan(rng: random.Random, truth: Truth) -> Plan:
    """A successful answer with a wrong list, for one or both fetches of the check."""
    ids = sorted(truth)
    label = rng.choice(("empty", "most-gone", "subset-90", "missing-one", "types-blank"))
    shown: dict[str, Spec] = dict(truth)
    if label == "empty":
        shown = {}
    elif label == "most-gone":
        shown = {m: truth[m] for m in rng.sample(ids, len(ids) * 3 // 10)}
    elif label == "subset-90":
        shown = {m: truth[m] for m in rng.sample(ids, len(ids) * 9 // 10)}
    elif label == "missing-one":
        del shown[rng.choice(ids)]
    else:
        candidates = [m for m in ids if truth[m].types] or ids
        model = rng.choice(candidates)
        shown[model] = Spec(frozenset(), truth[model].owned_by)
        label = f"types-blank:{model}"
    times = 2 if rng.random() < P_LIE_BOTH_FETCHES else 1
    return Plan("lie", f"lie {label} x{times}", fault=Fault.data(wire(shown)), times=times)


@dataclass
class TokenTrack:
    """What the harness remembers of one token between cycles."""

    expiry_left: int = 0
    failed_last: bool = False
    lied_last_ok: bool = False  # its latest successful check was a believed lie
    failures: int = 0  # consecutive failed checks (the README's health rules)
    failing: bool = False


def choose_plan(rng: random.Random, track: TokenTrack, truth: Truth) -> Plan:
    expired = Plan("expired", "expired", "auth")
    if track.expiry_left:
        track.expiry_left -= 1
        return expired
    roll = rng.random()
    p_fail = P_FAIL_AGAIN if track.failed_last else P_FAIL
    if roll < P_EXPIRE:
        track.expiry_left = rng.randint(1, 3)
        return expired
    roll -= P_EXPIRE
    if roll < p_fail:
        return failing_plan(rng)
    roll -= p_fail
    if roll < P_LIE and not track.lied_last_ok:
        return lie_plan(rng, truth)
    return CLEAN


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckLog:
    cycle: int
    plan: Plan
    outcome: str
    requests: int  # to /v1/models
    believed_lie: bool


@dataclass(frozen=True)
class Delivered:
    cycle: int
    payload: dict[str, Any]


@dataclass
class Soak:
    """The world under test and everything observed while it runs."""

    rng: random.Random
    clock: Clock  # the checker's and the dispatcher's: one cycle every CYCLE_INTERVAL
    gateway: GatewaySimulator
    receiver: WebhookReceiver
    checker: Checker
    dispatcher: Dispatcher
    scopes: dict[str, Truth]
    history: list[dict[str, Truth]] = field(default_factory=list)  # cycle -> token -> truth
    real_changes: list[RealChange] = field(default_factory=list)
    checks: dict[str, list[CheckLog]] = field(default_factory=dict)
    delivered: list[Delivered] = field(default_factory=list)
    expected_health: list[tuple[int, str, str]] = field(default_factory=list)
    harness_problems: list[str] = field(default_factory=list)
    tracks: dict[str, TokenTrack] = field(default_factory=dict)
    backoff_until: datetime | None = None  # what the last 429s asked for
    skipped: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tracks = {name: TokenTrack() for name in TOKENS}
        self.checks = {name: [] for name in TOKENS}
        for name, scope in TOKENS.items():
            self.gateway.add_token(token_value(name), group=scope)
        self.publish()

    def publish(self) -> None:
        for scope, truth in self.scopes.items():
            if scope == OWN_LIST:
                for name in (n for n, s in TOKENS.items() if s == scope):
                    self.gateway.set_models(token_value(name), wire(truth))
            else:
                self.gateway.set_group(scope, wire(truth))

    def apply_real_changes(self, cycle: int) -> None:
        if self.rng.random() >= P_REAL_CHANGES:
            return
        for _ in range(self.rng.randint(1, 3)):
            scope = self.rng.choice(sorted(self.scopes))
            self.real_changes.append(mutate(self.rng, scope, self.scopes[scope], cycle))
        self.publish()

    def truth_of(self, token: str) -> Truth:
        return self.scopes[TOKENS[token]]

    def cycle(self, cycle: int, *, hostile: bool) -> bool:
        """Run one cycle and dispatch its events; False if the source was skipped."""
        self.clock.advance(CYCLE_INTERVAL)
        if hostile:
            self.apply_real_changes(cycle)
        self.history.append({name: dict(self.truth_of(name)) for name in TOKENS})
        plans = {
            name: choose_plan(self.rng, self.tracks[name], self.truth_of(name))
            if hostile
            else CLEAN
            for name in TOKENS
        }
        self.gateway.reset_requests()
        for name, plan in plans.items():
            value = token_value(name)
            if plan.kind == "expired":
                self.gateway.expire_token(value)
            else:
                self.gateway.renew_token(value)
            if plan.fault is not None:
                self.gateway.inject(plan.fault, token=value, times=plan.times)
        try:
            (report,) = self.checker.check()
        finally:
            self.gateway.clear_faults()
        skipped = self.backoff_until is not None and self.backoff_until > self.clock.now
        if skipped:
            self.record_skip(cycle, report)
        else:
            self.record(cycle, plans, report)
        self.dispatch(cycle, report)
        return not skipped

    def models_requests(self, name: str) -> int:
        fp = fingerprint(token_value(name))
        return sum(
            1 for r in self.gateway.requests if r.token == fp and r.path.startswith("/v1/models")
        )

    def record_skip(self, cycle: int, report: CycleReport) -> None:
        """The source asked to wait: no token may have been asked anything."""
        self.skipped.append(cycle)
        for token_report in report.tokens:
            asked = self.models_requests(token_report.token)
            if token_report.outcome != "skipped" or asked:
                self.harness_problems.append(
                    f"cycle {cycle} token {token_report.token}: a 429 asked to wait until"
                    f" {self.backoff_until}, yet the check gave {token_report.outcome}"
                    f" after {asked} request(s)"
                )

    def record(self, cycle: int, plans: Mapping[str, Plan], report: CycleReport) -> None:
        waits = []
        for token_report in report.tokens:
            name = token_report.token
            plan = plans[name]
            requests = self.models_requests(name)
            believed = plan.kind == "lie" and (plan.times == 2 or requests == 1)
            self.checks[name].append(
                CheckLog(cycle, plan, token_report.outcome, requests, believed)
            )
            if token_report.outcome != plan.expect:
                self.harness_problems.append(
                    f"cycle {cycle} token {name}: plan {plan.label} should give"
                    f" {plan.expect}, the check gave {token_report.outcome}"
                )
            if plan.wait is not None:
                waits.append(plan.wait)
            self.follow_health(cycle, name, token_report.outcome)
            track = self.tracks[name]
            track.failed_last = token_report.outcome != "ok"
            if token_report.outcome == "ok":
                track.lied_last_ok = believed
        self.backoff_until = self.clock.now + timedelta(seconds=max(waits)) if waits else None

    def follow_health(self, cycle: int, name: str, outcome: str) -> None:
        """The README's rules: failing once per spell (at once for 401/403, else after
        failure_threshold failures in a row), recovered once when it works again."""
        track = self.tracks[name]
        if outcome == "ok":
            if track.failing:
                self.expected_health.append((cycle, "token.recovered", name))
            track.failures, track.failing = 0, False
            return
        track.failures += 1
        if not track.failing and (
            outcome in ("auth", "forbidden") or track.failures >= FAILURE_THRESHOLD
        ):
            track.failing = True
            self.expected_health.append((cycle, "token.failing", name))

    def dispatch(self, cycle: int, report: CycleReport) -> None:
        before = len(self.receiver.received)
        outcome = self.dispatcher.run_once()
        if outcome.retried or outcome.dead:
            self.harness_problems.append(f"cycle {cycle}: dispatch {outcome}")
        payloads = [r.json() for r in self.receiver.received[before:]]
        if sorted(p["id"] for p in payloads) != sorted(e.id for e in report.events):
            self.harness_problems.append(
                f"cycle {cycle}: the receiver got {[p['type'] for p in payloads]},"
                f" the cycle made {[str(e.type) for e in report.events]}"
            )
        self.delivered += [Delivered(cycle, p) for p in payloads]

    def recent(self, token: str, cycle: int, model: str) -> str:
        """Diagnostics: the token's last checks up to `cycle` and the real changes to `model`."""
        checks = [c for c in self.checks[token] if cycle - 3 <= c.cycle <= cycle]
        lines = [
            f"    cycle {c.cycle}: {c.plan.label} -> {c.outcome}, {c.requests} request(s)"
            + (" [lie believed]" if c.believed_lie else "")
            for c in checks
        ]
        scope = TOKENS[token]
        touched = [
            f"    cycle {r.cycle}: {r.what}"
            for r in self.real_changes
            if r.scope == scope and r.model == model and r.cycle <= cycle
        ][-4:]
        return "\n".join(
            ["  recent checks:", *lines, f"  real changes to {model} in {scope}:", *touched]
        )


@pytest.fixture
def soak(db_url: str) -> Iterator[Soak]:
    rng = random.Random(SEED)
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    with GatewaySimulator(seed=SEED) as gateway, WebhookReceiver() as receiver:
        config: Config = sim_config(
            gateway.base_url,
            {name: token_value(name) for name in TOKENS},
            channels=[webhook_channel("hook", receiver.url)],
        )
        assert config.monitor.confirm_checks == CONFIRM_CHECKS
        assert config.monitor.failure_threshold == FAILURE_THRESHOLD
        assert config.monitor.mass_change_share == 0.5
        db: Database = open_database(db_url)
        channels = build_channels(config)
        try:
            yield Soak(
                rng=rng,
                clock=clock,
                gateway=gateway,
                receiver=receiver,
                checker=Checker(config, db, clock=clock),
                dispatcher=Dispatcher(config, db, channels, clock=clock),
                scopes=initial_truth(rng),
            )
        finally:
            for channel in channels.values():
                channel.close()
            db.close()


# -- judging what was received -------------------------------------------------------------


def spec_after(change: Mapping[str, Any]) -> Spec:
    after = change["after"]
    return Spec(frozenset(after.get("endpoint_types", ())), after.get("owned_by"))


def apply_change(state: Truth, change: Mapping[str, Any]) -> str | None:
    """Replay one received change over what the token was told; why it does not fit, if so."""
    kind, model = change["type"], change["model"]
    old = state.get(model)
    if kind == "added":
        if old is not None:
            return "added, but it was already reported present"
        state[model] = spec_after(change)
        return None
    if old is None:
        return f"{kind}, but it was not reported present"
    if kind == "removed":
        del state[model]
        return None
    if kind == "endpoint_types_changed":
        gained, lost = frozenset(change["gained"]), frozenset(change["lost"])
        if not gained and not lost:
            return "endpoint types changed with nothing gained or lost"
        if gained & old.types or not lost <= old.types:
            return f"gained {sorted(gained)} / lost {sorted(lost)} does not fit {old.describe()}"
        state[model] = Spec((old.types - lost) | gained, old.owned_by)
        return None
    if kind == "field_changed" and change["field"] == "owned_by":
        if change["before"] != old.owned_by or change["after"] == old.owned_by:
            return f"owned_by {change['before']} -> {change['after']} from {old.owned_by}"
        state[model] = Spec(old.types, change["after"])
        return None
    return f"unexpected change {kind} {change.get('field')}"


def disagreement(reported: Spec | None, real: Spec | None, kind: str) -> str | None:
    """How the reported state of a model, just updated by a change of `kind`, contradicts
    the truth on what that change is about (None: it agrees)."""
    if kind == "removed":
        agrees = real is None
    elif kind == "added":
        agrees = reported == real
    elif reported is None or real is None:
        agrees = False
    elif kind == "endpoint_types_changed":
        agrees = reported.types == real.types
    else:
        agrees = reported.owned_by == real.owned_by
    if agrees:
        return None
    said = "absent" if reported is None else reported.describe()
    was = "absent" if real is None else real.describe()
    return f"now reported {said}, but the truth was {was}"


def replay(soak: Soak) -> tuple[dict[str, Truth], list[str]]:
    """Each token's state told by the received events, and every change that was wrong."""
    state = {name: dict(soak.history[0][name]) for name in TOKENS}
    problems: list[str] = []
    for item in soak.delivered:
        if item.payload["type"] != "models.changed":
            continue
        for change in item.payload["changes"]:
            for token in change["tokens"]:
                where = f"seed={SEED} cycle={item.cycle} token={token} {change['model']}"
                misfit = apply_change(state[token], change)
                if misfit is None:
                    model, truth = change["model"], soak.history[item.cycle][token]
                    misfit = disagreement(state[token].get(model), truth.get(model), change["type"])
                if misfit is not None:
                    problems.append(
                        f"{where}: {_short(change)}: {misfit}\n"
                        + soak.recent(token, item.cycle, change["model"])
                    )
    return state, problems


def _short(change: Mapping[str, Any]) -> str:
    details = {k: v for k, v in change.items() if k not in ("model", "tokens", "type")}
    return f"{change['type']} {details}"


def final_mismatches(state: Mapping[str, Truth], final: Mapping[str, Truth]) -> list[str]:
    problems = []
    for token in TOKENS:
        told, truth = state[token], final[token]
        for model in sorted(told.keys() | truth.keys()):
            if told.get(model) != truth.get(model):
                said = told[model].describe() if model in told else "absent"
                real = truth[model].describe() if model in truth else "absent"
                problems.append(f"seed={SEED} token={token} {model}: replay {said}, truth {real}")
    return problems


def received_health(soak: Soak) -> list[tuple[int, str, str]]:
    return sorted(
        (item.cycle, item.payload["type"], token)
        for item in soak.delivered
        if item.payload["type"] in ("token.failing", "token.recovered")
        for token in item.payload["tokens"]
    )


def not_alternating(health: list[tuple[int, str, str]]) -> list[str]:
    problems = []
    for token in TOKENS:
        kinds = [kind for _, kind, name in health if name == token]
        expected = ["token.failing", "token.recovered"] * len(kinds)
        if kinds != expected[: len(kinds)]:
            problems.append(f"seed={SEED} token={token}: {kinds}")
    return problems


def summary(soak: Soak, elapsed: float) -> str:
    checks = [c for logs in soak.checks.values() for c in logs]
    outcomes = Counter(c.outcome for c in checks)
    lies = Counter(c.plan.label.split(":")[0] for c in checks if c.plan.kind == "lie")
    believed = sum(c.believed_lie for c in checks)
    events = Counter(d.payload["type"] for d in soak.delivered)
    reported = Counter(
        change["type"]
        for d in soak.delivered
        if d.payload["type"] == "models.changed"
        for change in d.payload["changes"]
    )
    real = Counter(r.what.split(" ")[0] for r in soak.real_changes)
    skipped = f", {len(soak.skipped)} skipped after a 429" if soak.skipped else ""
    sizes = {name: len(truth) for name, truth in soak.history[-1].items()}
    return (
        f"\nsoak seed={SEED}: {len(soak.history)} cycles, {len(checks)} checks"
        f"{skipped} in {elapsed:.1f} s"
        f"\n  final models per token: {sizes}"
        f"\n  check outcomes: {dict(outcomes)}"
        f"\n  lies served: {dict(lies)} ({believed} believed by a check)"
        f"\n  real changes: {dict(real)}"
        f"\n  events received: {dict(events)}"
        f"\n  changes reported: {dict(reported)}"
    )


def _listing(problems: list[str], limit: int = 12) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n".join(problems[:limit]) + more


# -- the test -----------------------------------------------------------------------------


def test_soak_hostile_gateway_replays_to_the_truth(soak: Soak) -> None:
    started = time.monotonic()
    soak.cycle(0, hostile=False)  # the silent baseline
    for cycle in range(1, CYCLES + 1):
        soak.cycle(cycle, hostile=True)
    cycle, clean = CYCLES, 0
    while clean < CONFIRM_CHECKS + 1:  # cycles skipped after a 429 do not count
        cycle += 1
        clean += soak.cycle(cycle, hostile=False)
    elapsed = time.monotonic() - started
    print(summary(soak, elapsed))

    assert not soak.harness_problems, _listing(soak.harness_problems)
    assert all(c.cycle != 0 for c in soak.delivered), "the baseline must be silent"
    per_cycle = Counter(d.cycle for d in soak.delivered if d.payload["type"] == "models.changed")
    assert max(per_cycle.values(), default=0) <= 1, "one models.changed per source cycle"

    health = received_health(soak)  # sorted: the order within one cycle is free
    assert health == sorted(soak.expected_health), (
        f"seed={SEED}: token health events differ from the README's rules"
        f"\nreceived: {health}\nexpected: {soak.expected_health}"
    )
    assert not not_alternating(health), _listing(not_alternating(health))

    state, false_reports = replay(soak)
    mismatches = final_mismatches(state, soak.history[-1])
    assert not mismatches, f"the replay differs from the final truth:\n{_listing(mismatches)}"
    assert not false_reports, (
        f"{len(false_reports)} received change(s) did not happen:\n{_listing(false_reports)}"
    )
    assert_plausible(soak)


def assert_plausible(soak: Soak) -> None:
    """The run exercised what it claims to: every fault kind, believed lies, every change."""
    checks = [c for logs in soak.checks.values() for c in logs]
    outcomes = {c.outcome for c in checks}
    assert outcomes >= {kind for _, _, kind in FAILURES} | {"ok", "auth", "rate_limited"}
    assert sum(c.believed_lie for c in checks) >= 20
    assert sum(c.plan.kind == "lie" and not c.believed_lie for c in checks) >= 10
    assert {r.what.split(" ")[0] for r in soak.real_changes} == {
        "added",
        "removed",
        "types",
        "owned_by",
    }
    reported = {
        change["type"]
        for d in soak.delivered
        if d.payload["type"] == "models.changed"
        for change in d.payload["changes"]
    }
    assert reported == {"added", "removed", "endpoint_types_changed", "field_changed"}
