"""One wall-clock deadline per exchange, enforced by closing the exchange's sockets.

A socket timeout bounds each read, not the exchange: a peer sending one byte every
second keeps a read with a 3-second timeout alive forever. So every outbound exchange
(models lists, lookups, webhooks, Slack, SMTP) runs inside `within(seconds)`, and the
connections it opens register their sockets with that deadline (see
`monitor.transport.connections`). One watchdog thread shuts those sockets down when the
deadline passes; the blocked read returns at once, and the caller, seeing
`Deadline.expired`, reports a timeout instead of whatever the broken read raised.

The exchanges under way are a set the watchdog looks over every few hundredths of a
second while it is not empty; starting and ending an exchange takes no shared lock, so
a thousand concurrent polls do not queue on one. Each deadline has a lock of its own,
so the watchdog never shuts a socket after its exchange has ended (it may already serve
the next exchange from the connection pool).

`abort_all()` expires every deadline under way: the daemon calls it on SIGTERM so that
no peer, however slow, holds the shutdown.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# How often the watchdog looks while exchanges are under way: a deadline is enforced
# within this much of its time.
RESOLUTION = 0.05


class Deadline:
    """The end of one exchange, and the sockets to shut when it comes."""

    __slots__ = ("_expired", "_finished", "_lock", "_owned", "_sockets", "at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []  # duplicates made by watch_new
        self._lock = threading.Lock()
        self._expired = False
        self._finished = False

    def remaining(self) -> float:
        """Seconds left (at least a millisecond, so it can serve as a socket timeout)."""
        return max(self.at - time.monotonic(), 0.001)

    @property
    def expired(self) -> bool:
        """True once the deadline has passed (or was aborted), whether or not the watchdog
        has acted yet."""
        return self._expired or time.monotonic() >= self.at

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` down when the deadline passes (at once if it already has)."""
        if sock is None:
            return
        with self._lock:
            if self._finished:
                return
            if not any(s is sock for s in self._sockets):
                self._sockets.append(sock)
            shut_now = self._expired
        if shut_now:
            _shut(sock)

    def watch_new(self, sock: socket.socket) -> None:
        """Watch a socket just connected, through a duplicate of its descriptor.

        Wrapping a socket in TLS detaches the original object, so it could no longer
        be shut; shutdown acts on the connection, not the descriptor, so the duplicate
        also cuts a handshake that drips. The duplicate is closed with the deadline.
        """
        duplicate = sock.dup()
        with self._lock:
            finished, shut_now = self._finished, self._expired
            if not finished:
                self._owned.append(duplicate)
                self._sockets.append(duplicate)
        if finished:
            duplicate.close()
        elif shut_now:
            _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            if self._finished or self._expired:
                return
            self._expired = True
            # Shut while holding the lock: the exchange cannot end (and hand its
            # connection to another) in between.
            for sock in self._sockets:
                _shut(sock)

    def _finish(self) -> None:
        with self._lock:
            self._finished = True
            self._sockets.clear()
            owned, self._owned = self._owned, []
        for duplicate in owned:
            duplicate.close()


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS sockets: it wakes a read blocked in
    # another thread without touching the TLS object that thread is using.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_local = threading.local()
_active: set[Deadline] = set()  # the exchanges under way (set.add/discard hold the GIL)
_wake = threading.Event()  # set when the first exchange starts, so an idle watchdog sleeps
_started = threading.Lock()
_thread: threading.Thread | None = None


def current() -> Deadline | None:
    """The deadline of the exchange this thread is in, if any."""
    return getattr(_local, "deadline", None)


@contextmanager
def within(seconds: float) -> Iterator[Deadline]:
    """Run an exchange that must end `seconds` from now; nested calls keep the earlier end."""
    outer = current()
    deadline = Deadline(seconds)
    if outer is not None and outer.at < deadline.at:
        deadline.at = outer.at
    _local.deadline = deadline
    _active.add(deadline)
    if not _wake.is_set():
        _start_watchdog()
        _wake.set()
    try:
        yield deadline
    finally:
        _active.discard(deadline)
        deadline._finish()
        _local.deadline = outer


def abort_all() -> None:
    """Expire every deadline under way now (shutdown)."""
    for deadline in tuple(_active):
        deadline._expire()


def _start_watchdog() -> None:
    global _thread
    with _started:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_watch_over, name="exchange-deadlines", daemon=True)
            _thread.start()


def _watch_over() -> None:
    while True:
        _wake.wait()
        if not _active:
            _wake.clear()
            if _active:  # an exchange started meanwhile and saw the flag still set
                _wake.set()
            continue
        now = time.monotonic()
        nearest = now + RESOLUTION
        for deadline in tuple(_active):
            if deadline.at <= now:
                deadline._expire()
            elif deadline.at < nearest:
                nearest = deadline.at
        time.sleep(max(nearest - now, 0.001))
