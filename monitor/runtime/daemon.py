"""The daemon: APScheduler runs one job per source; a delivery thread drains the outbox.

Jobs are rebuilt from the config in memory at every start (no persistent job store:
it would pickle job arguments, tokens included). The main thread is the supervisor:
signal handlers only set an Event, and the main thread shuts the scheduler down,
waiting for running checks so none is cut in half.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, ConfigError, MonitorSettings
from monitor.config.durations import cron_trigger, format_duration
from monitor.core.clock import rfc3339, utcnow
from monitor.delivery.outbox import Dispatcher
from monitor.runtime.cycle import Checker
from monitor.runtime.listener import BasicAuth, CycleWatch, Listener
from monitor.runtime.metrics import Metrics
from monitor.runtime.systemd import Notifier
from monitor.store.queries import answers, prune, prune_poll_slots
from monitor.transport.deadline import abort_all

log = logging.getLogger("monitor.daemon")


class _ScheduledTime:
    """A job as `run_job` sees it, with the time it was scheduled for as `scheduled`."""

    def __init__(self, job: Job, scheduled: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "scheduled": scheduled}

    def __getattr__(self, name: str) -> object:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class _SlotExecutor(ThreadPoolExecutor):
    """APScheduler 3 does not tell a job when it was scheduled to run; check jobs need
    it to name their poll slot, so this executor hands it over."""

    def _do_submit_job(self, job: Job, run_times: Sequence[datetime]) -> None:
        if job.id.startswith("check:") and run_times:
            job = _ScheduledTime(job, run_times[-1])
        super()._do_submit_job(job, run_times)


def poll_slot(settings: MonitorSettings, scheduled: datetime) -> str:
    """The name of the scheduled poll that fired at `scheduled` (jitter included).

    interval: floor(scheduled / interval). APScheduler 3 counts each next fire from the
    previous (jittered) one, so one daemon's fires are at least an interval apart and
    land in distinct slots; daemons firing within the same interval share one.
    cron: the unjittered fire time (the last cron time at or before `scheduled` within
    the jitter window), so every daemon names the same slot.
    """
    if settings.cron:
        window = timedelta(seconds=settings.jitter or 0) + timedelta(microseconds=1)
        exact = cron_trigger(settings.cron).get_next_fire_time(None, scheduled - window)
        if exact is None or exact > scheduled:
            exact = scheduled
        return f"c:{rfc3339(exact.replace(microsecond=0))}"
    assert settings.interval is not None  # the config sets either cron or interval
    n = math.floor(scheduled.timestamp() / settings.interval)
    return f"i{settings.interval:g}:{n}"


class Daemon:
    """`model-monitor run`."""

    def __init__(
        self,
        config: Config,
        checker: Checker,
        dispatcher: Dispatcher,
        *,
        stop: threading.Event | None = None,
        on_cycle: Callable[[], None] | None = None,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.checker = checker
        self.dispatcher = dispatcher
        # [monitor] listen: /healthz reads `cycles`, /metrics serves `metrics` (runtime.listener).
        self.cycles = CycleWatch(config)
        self.metrics = metrics or (Metrics(checker.db) if config.monitor.listen else None)
        if self.metrics is not None:
            checker.metrics = checker.metrics or self.metrics
            dispatcher.metrics = dispatcher.metrics or self.metrics
        self.stop = stop or threading.Event()
        self.notifier = notifier or Notifier.from_environ()
        self._wakes = {c.name: threading.Event() for c in config.channels}
        self._on_cycle = on_cycle
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": _SlotExecutor()},
            job_defaults={
                "coalesce": True,  # after a pause, run once, not once per missed slot
                "max_instances": 1,
                "misfire_grace_time": None,  # late is better than silently skipped
            },
        )

    def _schedule(self) -> None:
        settings = self.config.monitor
        start = utcnow()
        # Always: poll-slot claims are pruned even when history is kept forever.
        self.scheduler.add_job(
            self._prune,
            IntervalTrigger(hours=24, timezone=UTC),
            id="prune",
            name="prune history",
            next_run_time=start + timedelta(minutes=1),
        )
        for index, source in enumerate(self.config.sources):
            if settings.cron:
                trigger = cron_trigger(settings.cron, settings.jitter or None)
                first = None
            else:
                trigger = IntervalTrigger(
                    seconds=settings.interval, jitter=settings.jitter or None, timezone=UTC
                )
                # Check at start, sources a little apart so they do not all fire at once.
                first = start + timedelta(seconds=0.2 * index)
            self.scheduler.add_job(
                self._check_source,
                trigger,
                args=[source.name],
                id=f"check:{source.name}",
                name=f"check {source.name}",
                next_run_time=first
                if first is not None
                else trigger.get_next_fire_time(None, start),
            )

    def _check_source(self, name: str, scheduled: datetime | None = None) -> None:
        # Several daemons may share the database: each scheduled poll is claimed per
        # token (`Checker._claim`), so it runs once whichever daemons are alive.
        slot = poll_slot(self.config.monitor, scheduled or utcnow())
        try:
            report = self.checker.check_source(self.config.source(name), slot=slot)
        except Exception as exc:
            log.exception("check cycle of source %s failed; will try again next time", name)
            self.cycles.failed(name, type(exc).__name__)
            if self.metrics is not None:
                self.metrics.record_cycle_failure(name)
            return
        self.cycles.completed(name)
        if report.events:
            self._wake_all()
        if self._on_cycle is not None:
            self._on_cycle()

    def _deliver_loop(self, channel: str, wake: threading.Event) -> None:
        """Send one channel's deliveries as they come due; it waits for nobody else."""
        while not self.stop.is_set():
            try:
                self.dispatcher.run_once(channels=[channel])
                due = self.dispatcher.next_due(channel)
            except Exception:
                log.exception("delivery pass for channel %s failed; retrying shortly", channel)
                due = None
            wait = 5.0
            if due is not None:
                wait = min(wait, max(0.05, (due - utcnow()).total_seconds()))
            wake.wait(wait)
            wake.clear()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            log.info(
                "received %s, stopping after running checks finish", signal.Signals(signum).name
            )
            self.stop.set()
            self._wake_all()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        """Block until `stop` is set, then shut down cleanly."""
        listener = self._start_listener()
        self.cycles.begin()
        self._schedule()
        deliverers = [
            threading.Thread(
                target=self._deliver_loop, args=(name, wake), name=f"deliver-{name}", daemon=True
            )
            for name, wake in self._wakes.items()
        ]
        self.scheduler.start()
        for thread in deliverers:
            thread.start()
        log.info(
            "daemon started: %d source(s), %d token(s), %d channel(s)",
            len(self.config.sources),
            len(self.config.tokens),
            len(self.config.channels),
        )
        self.notifier.ready(f"watching {len(self.config.tokens)} token(s)")
        interval = self.notifier.watchdog_interval
        tick = min(1.0, interval or 1.0)
        last_ping = time.monotonic()
        try:
            while not self.stop.wait(tick):
                if interval and time.monotonic() - last_ping >= interval - tick / 2:
                    if self.healthy():
                        self.notifier.watchdog()
                    last_ping = time.monotonic()
        finally:
            self.notifier.stopping()
            # No peer holds the shutdown: checks and deliveries under way are cut off
            # (and those about to start are too, until everything has stopped).
            self.checker.cancelled.set()
            stopped = threading.Event()
            threading.Thread(
                target=_abort_until, args=(stopped,), name="abort-exchanges", daemon=True
            ).start()
            try:
                self.scheduler.shutdown(wait=True)
                if listener is not None:
                    listener.stop()
                self._wake_all()
                for thread in deliverers:
                    thread.join(timeout=STOP_PATIENCE)
            finally:
                stopped.set()
            log.info("daemon stopped")

    def _start_listener(self) -> Listener | None:
        """[monitor] listen: serve /healthz, /metrics and the status pages until shutdown
        (monitor.runtime.listener, monitor.web)."""
        address = self.config.monitor.listen
        if not address:
            return None
        from monitor.web.app import StatusPages  # Jinja2 and the templates only when serving

        if self.metrics is not None:
            try:
                self.metrics.restore(self.checker.db, self.config)
            except Exception:
                log.warning("metrics: cannot read the last known token state", exc_info=True)
        listener = Listener(
            address,
            health=lambda: self.cycles.report(self.scheduler.running),
            metrics=self.metrics,
            pages=StatusPages(self.checker.db, self.config),
            auth=BasicAuth.from_settings(self.config.monitor),
        )
        try:
            return listener.start()
        except OSError as exc:
            raise ConfigError([f"[monitor] listen: cannot listen on {address}: {exc}"]) from exc

    def healthy(self) -> bool:
        """The scheduler runs and the database answers: what the systemd watchdog vouches for."""
        if not self.scheduler.running:
            return False
        try:
            with self.checker.db.reader() as session:
                answers(session)
        except Exception:
            log.warning("database does not answer; withholding the watchdog ping", exc_info=True)
            return False
        return True

    def _prune(self) -> None:
        retention = self.config.monitor.retention
        if retention is None:
            try:
                with self.checker.db.session() as session:
                    prune_poll_slots(session)
            except Exception:
                log.exception("pruning poll slots failed; will try again tomorrow")
            return
        try:
            with self.checker.db.session() as session:
                report = prune(session, utcnow() - timedelta(seconds=retention))
        except Exception:
            log.exception("pruning history failed; will try again tomorrow")
            return
        log.info(
            "pruned history older than %s: %d checks, %d events, %d snapshots, %d probes",
            format_duration(retention),
            report.checks,
            report.events,
            report.snapshots,
            report.probes,
        )

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()


# Seconds a delivery loop may take to finish its attempt after SIGTERM; an attempt it
# has not finished is retried after the restart (at-least-once, same delivery id).
STOP_PATIENCE = 3.0


def _abort_until(stopped: threading.Event) -> None:
    abort_all()
    while not stopped.wait(0.2):
        abort_all()
