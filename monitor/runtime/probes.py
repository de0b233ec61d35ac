"""The probe pass: after a source's models are checked, call the listed models that are due.

Only for a source with `probe = true`, and only its tokens whose check just succeeded
(a failing token's probes would only repeat its failure) and that do not say
`probe = false`. Three steps, so no transaction is open while calls are out:

1. plan (one transaction, `_Planner`): the check's own changes mark what appeared or
   changed (and forget what went); the pairs that may be due are read, with the
   never-probed models of the few tokens the sweep visits, minus those not probed
   (priced per call, media types; monitor.sources.probes.call_kind);
   `monitor.events.probes.plan` picks the due ones within each token's budget for the
   last 24 hours, its share of the cycle's cap and the cap;
2. send: tokens at once (up to `concurrency`), each token's probes one after another; a
   token stops at an answer about itself (its quota, a 401), and every token stops at a
   429, which is the gateway's limiter, not a verdict;
3. record (one transaction): every probe sent goes to the log (the budget counts it,
   `model-monitor probes` lists it), verdicts are folded behind the flap guard, and the
   changes are grouped across tokens, routed and silenced like any other.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor.config import Config, SourceConfig, TokenConfig
from monitor.core.clock import rfc3339
from monitor.core.ids import new_id
from monitor.core.records import Change, ChangeType, Event, ModelRecord, SourceRef
from monitor.delivery.routing import enqueue
from monitor.events.grouping import CheckOutcome, build_events
from monitor.events.probes import Candidate, Outcome, ProbeMemory, ProbePolicy, ProbeResult, plan
from monitor.sources.base import Flavor
from monitor.sources.probes import CallKind, call_kind, named, send_probe
from monitor.sources.side_routes import ProbeAuth
from monitor.store.database import Database
from monitor.store.prices import load_price_list, price_states
from monitor.store.probes import (
    BUDGET_WINDOW,
    due_memories,
    forget,
    forget_tokens,
    known_models,
    mark_swept,
    memories_of,
    record_probe,
    remembers,
    save_memories,
    save_memory,
    sent_since,
    swept,
)
from monitor.store.queries import last_snapshot_ids
from monitor.store.snapshots import SnapshotStore

log = logging.getLogger("monitor.probes")

Sender = Callable[[SourceConfig, TokenConfig, str, CallKind, ProbeAuth, float], ProbeResult]


class ProbePass:
    def __init__(
        self,
        config: Config,
        db: Database,
        snapshots: SnapshotStore,
        clock: Callable[[], datetime],
        *,
        send: Sender = send_probe,
        cancelled: threading.Event | None = None,
        counted: Callable[[str, Outcome], None] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.snapshots = snapshots
        self._clock = clock
        self._send = send
        self._cancelled = cancelled or threading.Event()
        self._counted = counted  # each probe's result, for the metrics
        # Per source: (confirmed price list id, its models priced per request). A list
        # changes rarely; decoding 1,000 prices on every check would not.
        self._per_call: dict[str, tuple[int, frozenset[str]]] = {}

    def policy(self, source: SourceConfig) -> ProbePolicy:
        settings = self.config.monitor
        return ProbePolicy(
            interval=timedelta(seconds=source.probe_interval),
            delay=timedelta(seconds=source.probe_delay),
            recheck=timedelta(seconds=source.probe_recheck),
            confirm_checks=settings.confirm_checks,
            transient_checks=settings.failure_threshold,
        )

    def run(
        self,
        source: SourceConfig,
        tokens: Sequence[TokenConfig],
        flavor: type[Flavor] | None,
        *,
        changes: Mapping[str, Sequence[Change]] | None = None,
    ) -> tuple[Event, ...]:
        """Probe what is due of `tokens`' listed models; returns the events enqueued.
        `changes` are each token's changes of this check: what appeared or changed is
        probed after the delay, what went away is forgotten."""
        off = [t.name for t in tokens if not (source.probe and t.probe)]
        if off:
            with self.db.reader() as session:
                known = remembers(session, off)
            if known:
                with self.db.session() as session:
                    forget_tokens(session, off)
        auth = flavor.probe_auth if flavor is not None else None
        tokens = [t for t in tokens if source.probe and t.probe]
        if auth is None or not tokens:
            return ()
        policy = self.policy(source)
        now = self._clock()
        with self.db.session() as session:
            planner = _Planner(
                session,
                source,
                self.snapshots,
                auth,
                self.config.monitor.concurrency,
                self._priced_per_call(session, source.name),
            )
            planner.note(changes or {}, {t.name for t in tokens}, now)
            chosen, kinds = planner.plan([t.name for t in tokens], policy, now)
        if not chosen:
            return ()
        sent = self._send_all(source, {t.name: t for t in tokens}, chosen, kinds, auth)
        with self.db.session() as session:
            return self._record(session, source, sent, policy)

    def _priced_per_call(self, session: Session, source: str) -> frozenset[str]:
        """The source's models priced per request, from its last confirmed price list."""
        state = price_states(session, [source]).get(source)
        if state is None or state.confirmed_id is None:
            return frozenset()
        known = self._per_call.get(source)
        if known is not None and known[0] == state.confirmed_id:
            return known[1]
        prices = load_price_list(session, state.confirmed_id).prices
        found = frozenset(model for model, price in prices.items() if price.request is not None)
        self._per_call[source] = (state.confirmed_id, found)
        return found

    # -- 2. send ---------------------------------------------------------------------------

    def _send_all(
        self,
        source: SourceConfig,
        tokens: Mapping[str, TokenConfig],
        chosen: Sequence[Candidate],
        kinds: Mapping[tuple[str, str], CallKind],
        auth: ProbeAuth,
    ) -> list[tuple[Candidate, ProbeResult, datetime]]:
        by_token: dict[str, list[Candidate]] = defaultdict(list)
        for candidate in chosen:
            by_token[candidate.token].append(candidate)
        timeout = source.timeout or self.config.monitor.timeout
        limited = threading.Event()  # a 429: the gateway's limiter, for every token

        def probe_token(name: str) -> list[tuple[Candidate, ProbeResult, datetime]]:
            done = []
            for candidate in by_token[name]:
                if limited.is_set() or self._cancelled.is_set():
                    break
                kind = kinds[name, candidate.model]
                try:
                    result = self._send(source, tokens[name], candidate.model, kind, auth, timeout)
                except Exception:  # one probe's failure is its own
                    log.exception("probe of %s for token %s failed", candidate.model, name)
                    continue
                done.append((candidate, result, self._clock()))
                _log_probe(source.name, name, candidate.model, result)
                if result.outcome is Outcome.RATE_LIMITED:
                    limited.set()
                if result.outcome.stops_token:
                    break
            return done

        workers = max(1, min(self.config.monitor.concurrency, len(by_token)))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"probe-{source.name}") as pool:
            batches = list(pool.map(probe_token, list(by_token)))
        return [entry for batch in batches for entry in batch]

    # -- 3. record -------------------------------------------------------------------------

    def _record(
        self,
        session: Session,
        source: SourceConfig,
        sent: Sequence[tuple[Candidate, ProbeResult, datetime]],
        policy: ProbePolicy,
    ) -> tuple[Event, ...]:
        changes: dict[str, list[Change]] = defaultdict(list)
        for candidate, result, at in sent:
            record_probe(session, source.name, candidate.token, candidate.model, at, result)
            memory, change = policy.fold(candidate.memory, candidate.model, result, at)
            if memory != candidate.memory:
                save_memory(session, source.name, candidate.token, candidate.model, memory)
            if change is not None:
                changes[candidate.token].append(change)
            if self._counted is not None:
                self._counted(source.name, result.outcome)
        if not changes:
            return ()
        now = self._clock()
        outcomes = [CheckOutcome(token, tuple(found)) for token, found in changes.items()]
        ref = SourceRef(source.name, source.base_url)
        events = build_events(ref, outcomes, rfc3339(now), lambda: new_id("evt"))
        for event in events:
            enqueue(session, self.config, event, now)
        return tuple(events)


class _Planner:
    """Step 1 in one transaction: what is known of the source's pairs, brought up to date
    with the check's changes, and the probes due. Reads only the pairs that may be due (the
    awaiting ones and the stalest few) and, for the sweep, the lists of the tokens that
    have models never probed, least spent first, until there are enough."""

    def __init__(
        self,
        session: Session,
        source: SourceConfig,
        snapshots: SnapshotStore,
        auth: ProbeAuth,
        concurrency: int,
        per_call: frozenset[str],
    ) -> None:
        self.session = session
        self.concurrency = max(1, concurrency)
        self.source = source
        self.snapshots = snapshots
        self.auth = auth
        self.snapshot_ids = last_snapshot_ids(session, source.name)
        self.per_call = per_call
        self._lists: dict[str, Mapping[str, ModelRecord]] = {}
        self._kinds: dict[int, tuple[ModelRecord, CallKind | None]] = {}

    def listed(self, token: str) -> Mapping[str, ModelRecord]:
        """The models the token listed at its last successful check."""
        if token not in self._lists:
            snapshot = self.snapshot_ids.get(token)
            self._lists[token] = (
                {} if snapshot is None else self.snapshots.load(self.session, snapshot)
            )
        return self._lists[token]

    def kind(self, record: ModelRecord) -> CallKind | None:
        """The request that probes `record` (None: not probed), once per record object:
        tokens share the records of one list."""
        cached = self._kinds.get(id(record))
        if cached is not None and cached[0] is record:
            return cached[1]
        source = self.source
        explicit = named(record.id, source.probe_models)
        if record.id in self.per_call and not explicit:
            kind = None  # priced per call: a probe would cost a whole call's price
        else:
            kind = call_kind(record, self.auth, named=explicit)
        self._kinds[id(record)] = (record, kind)
        return kind

    def note(
        self, changes: Mapping[str, Sequence[Change]], tokens: set[str], now: datetime
    ) -> None:
        """What the check saw appear or change is probed after the delay; what it saw go
        is forgotten."""
        gone: list[tuple[str, str]] = []
        fresh: list[tuple[str, str]] = []
        for token, found in changes.items():
            if token not in tokens:
                continue
            for change in found:
                pair = (token, change.model)
                if change.type is ChangeType.REMOVED:
                    gone.append(pair)
                elif change.type in _FRESH:
                    record = self.listed(token).get(change.model)
                    probed = record is not None and self.kind(record) is not None
                    (fresh if probed else gone).append(pair)
        forget(self.session, gone)
        known = memories_of(self.session, fresh)
        changed = {pair: known.get(pair, ProbeMemory()).changed(now) for pair in fresh}
        save_memories(self.session, self.source.name, changed)
        self.session.flush()

    def plan(
        self, tokens: Sequence[str], policy: ProbePolicy, now: datetime
    ) -> tuple[list[Candidate], dict[tuple[str, str], CallKind]]:
        source, session = self.source, self.session
        cap = source.probe_per_cycle
        spent = sent_since(session, tokens, now - BUDGET_WINDOW)
        left = {name: source.probe_budget - spent.get(name, 0) for name in tokens}
        able = [name for name in tokens if left[name] > 0]
        if not able:
            return [], {}
        # A token's probes go one after another, tokens at once: the cap is spread over
        # as many tokens as are probed together, so no one token holds the cycle back.
        share = -(-cap // min(len(able), self.concurrency))
        candidates: list[Candidate] = []
        kinds: dict[tuple[str, str], CallKind] = {}
        stored = due_memories(session, source.name, able, now - policy.interval, 4 * cap)
        for (token, model), memory in stored.items():
            record = self.listed(token).get(model)
            kind = None if record is None else self.kind(record)
            if kind is None:  # no longer listed, or no longer probed
                forget(session, [(token, model)])
                continue
            kinds[token, model] = kind
            candidates.append(Candidate(token, model, memory))
        wanted = cap
        marks = swept(session, source.name)
        for token in sorted(able, key=lambda name: (spent.get(name, 0), name)):
            snapshot = self.snapshot_ids.get(token)
            if wanted <= 0:
                break
            if snapshot is None or marks.get(token) == snapshot:
                continue
            known = known_models(session, token)
            listed = self.listed(token)
            never = [
                (model, kind)
                for model in sorted(listed)
                if model not in known and (kind := self.kind(listed[model])) is not None
            ]
            if not never:
                mark_swept(session, source.name, token, snapshot)
                continue
            take = min(left[token], share, wanted)
            for model, kind in never[:take]:
                kinds[token, model] = kind
                candidates.append(Candidate(token, model, ProbeMemory()))
            wanted -= min(take, len(never))
        return plan(candidates, policy, now, left=left, cap=cap, share=share), kinds


# Changes after which a model is probed again, as a new one.
_FRESH = frozenset({ChangeType.ADDED, ChangeType.ENDPOINT_TYPES_CHANGED, ChangeType.FIELD_CHANGED})


def _log_probe(source: str, token: str, model: str, result: ProbeResult) -> None:
    error = result.error
    what = str(result.outcome) if error is None else f"{result.outcome} ({error.text()})"
    log.info("probe of %s on %s for token %s: %s", model, source, token, what)
