"""The database tables. Alembic migrations in `migrations/` must match this file exactly
(tests/integration/test_migrations.py compares them).

No column ever holds a token value: tokens are identified by name and fingerprint.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.core.records import DeliveryState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite so it stays the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones; storing naive UTC and re-attaching UTC on the way
    out keeps comparisons and arithmetic correct everywhere.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Snapshot(Base):
    """A normalized models list, stored once per distinct content (sha256 of canonical JSON)."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # The column keeps its first name: renaming it would break an older instance that
    # shares the database during an upgrade.
    content_hash: Mapped[str] = mapped_column("digest", String(64), unique=True)
    model_count: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(canonical JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Check(Base):
    """One poll of one token, successful or not."""

    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_token_started_at", "token", "started_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))  # "ok" or an ErrorKind value
    http_status: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"), index=True)
    model_count: Mapped[int | None] = mapped_column(Integer)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)


class TokenState(Base):
    """What we know about a token between checks: the flap guard and health state."""

    __tablename__ = "token_state"

    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(16))
    # What people have been told (the flap guard's confirmed view).
    confirmed_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    # What the last successful check saw.
    last_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    pending: Mapped[str] = mapped_column(Text, default="{}")  # JSON {model id: streak}
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)  # JSON FetchError.to_json()
    last_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    # The wire format the last successful check was read as (what `flavor = "auto"` chose).
    flavor: Mapped[str | None] = mapped_column(String(32))


class BudgetCheck(Base):
    """One read of one token's budget (quota and expiry), successful or not: history, and
    what a source's budget reads are counted by against the gateway's rate limit."""

    __tablename__ = "budget_checks"
    __table_args__ = (Index("ix_budget_checks_source_checked_at", "source", "checked_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(32))  # "ok" or an ErrorKind value
    http_status: Mapped[int | None] = mapped_column(Integer)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a 429's wait
    # US dollars as exact decimal text; None where the gateway did not say.
    granted: Mapped[str | None] = mapped_column(String(64))
    used: Mapped[str | None] = mapped_column(String(64))
    remaining: Mapped[str | None] = mapped_column(String(64))
    unlimited: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TokenBudget(Base):
    """A token's last budget read and what its warnings have said (monitor.events.budget)."""

    __tablename__ = "token_budget"

    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the last read, ok or not
    ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: no good read yet
    last_error: Mapped[str | None] = mapped_column(Text)
    granted: Mapped[str | None] = mapped_column(String(64))
    used: Mapped[str | None] = mapped_column(String(64))
    remaining: Mapped[str | None] = mapped_column(String(64))
    unlimited: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The marks: which expiry was warned about, down to which threshold; quota warned.
    warned_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_warned: Mapped[int | None] = mapped_column(Integer)  # seconds
    quota_warned: Mapped[bool] = mapped_column(Boolean, default=False)


class PriceSnapshot(Base):
    """A source's price list (monitor.core.prices), stored once per distinct content."""

    __tablename__ = "price_lists"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model_count: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(canonical JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SourcePrices(Base):
    """What is known of a source's prices: the last read, what people were told, and a
    different list waiting to be confirmed (the flap guard)."""

    __tablename__ = "source_prices"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the last read
    ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "ok", "hidden" (the page answered 401/403) or an ErrorKind value.
    outcome: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    confirmed_id: Mapped[int | None] = mapped_column(ForeignKey("price_lists.id"))
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("price_lists.id"))
    pending_count: Mapped[int] = mapped_column(Integer, default=0)


class SilenceRow(Base):
    """A silence (monitor.events.silences): stored, so every daemon sharing the database
    honours it at once."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(500))
    kind: Mapped[str | None] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProbeStateRow(Base):
    """What probes know of one model for one token (monitor.events.probes.ProbeMemory).

    A pair has a row once it was probed or appeared or changed while probes were on;
    `awaiting` marks the few due sooner than the sweep, so a cycle reads those and the
    stalest few, never every pair."""

    __tablename__ = "probe_state"
    __table_args__ = (
        Index("ix_probe_state_source_awaiting", "source", "awaiting"),
        Index("ix_probe_state_source_probed_at", "source", "probed_at"),
    )

    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # appeared or changed
    probed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verdict: Mapped[str | None] = mapped_column(String(16))  # "ok", "unavailable", None
    pending: Mapped[str | None] = mapped_column(String(16))
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # CallError as JSON
    awaiting: Mapped[bool] = mapped_column(Boolean, default=False)


class ProbeSweep(Base):
    """A token whose every probed-for model of snapshot `snapshot_id` has a `probe_state`
    row: the sweep need not look at its list again until the list changes."""

    __tablename__ = "probe_sweeps"

    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    snapshot_id: Mapped[int] = mapped_column(Id)


class ProbeRow(Base):
    """One probe sent: counted against the token's daily budget, and listed by `probes`."""

    __tablename__ = "probes"
    __table_args__ = (Index("ix_probes_token_sent_at", "token", "sent_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))  # chat, embeddings, messages
    result: Mapped[str] = mapped_column(String(16))  # monitor.events.probes.Outcome
    http_status: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(100))
    duration: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """An event as it was built: the version-1 payload, verbatim."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_occurred_at", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One event to one channel: the outbox row the dispatcher works from."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # webhook-id
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The payload as this channel sees it, when routing narrowed the event's payload.
    payload: Mapped[str | None] = mapped_column(Text)
    # For a batched delivery: the digest event that carried it.
    digest_id: Mapped[str | None] = mapped_column(String(40))


class DeliveryAttempt(Base):
    """Every try of every delivery, for `deliveries --id` and post-mortems."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class SourceState(Base):
    """A source asked us to slow down (HTTP 429): its polls are skipped until then."""

    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    backoff_until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)


class ChannelState(Base):
    """A channel switched off because its destination is gone (HTTP 410, Slack's 404)."""

    __tablename__ = "channel_state"

    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    disabled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)


class PollSlot(Base):
    """One scheduled poll of one token, claimed by the daemon that runs it.

    Several daemons may share one database: each inserts (token, slot) with
    ON CONFLICT DO NOTHING before fetching, and only the one whose row went in polls
    (`Checker._claim`). Manual `check` runs claim nothing. Rows older than a day are
    pruned (`monitor.store.queries.prune`).
    """

    __tablename__ = "poll_slots"
    __table_args__ = (UniqueConstraint("token", "slot"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(200))
    slot: Mapped[str] = mapped_column(String(64))  # "i<interval>:<n>" or "c:<fire time>"
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    instance: Mapped[str] = mapped_column(String(255))  # hostname:pid


class Installation(Base):
    """Who this database is: one row, written by the migration that made the table.

    Its UUID names the installation where something must stay the same for as long as
    the history does and differ from every other installation's: the Atom feed's id
    (monitor.web.feed). It lives with the history, so moving the database to another
    machine, renaming the host or putting a proxy in front changes nothing, and daemons
    sharing one database serve one feed.
    """

    __tablename__ = "installation"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as text
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
