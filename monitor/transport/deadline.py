"""One wall-clock deadline per exchange, enforced by closing the exchange's sockets.

A socket timeout bounds each read, not the exchange: a peer sending one byte every
second keeps a read with a 3-second timeout alive forever. So every outbound exchange
(models lists, lookups, webhooks, Slack, SMTP) runs inside `within(seconds)`, and the
connections it opens register their sockets with that deadline (see
`monitor.transport.session`). One watchdog thread shuts those sockets down when the
deadline passes; the blocked read returns at once, and the caller, seeing
`Deadline.expired`, reports a timeout instead of whatever the broken read raised.

`abort_all()` expires every deadline under way: the daemon calls it on SIGTERM so that
no peer, however slow, holds the shutdown.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Deadline:
    """The end of one exchange, and the sockets to shut when it comes."""

    __slots__ = ("_expired", "_finished", "_owned", "_sockets", "at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []  # duplicates made by watch_new
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
        with _lock:
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
        with _lock:
            finished, shut_now = self._finished, self._expired
            if not finished:
                self._owned.append(duplicate)
                self._sockets.append(duplicate)
        if finished:
            duplicate.close()
        elif shut_now:
            _shut(duplicate)

    def _expire(self) -> None:
        with _lock:
            if self._finished or self._expired:
                return
            self._expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def _finish(self) -> None:
        with _lock:
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


_lock = threading.Lock()
_local = threading.local()


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
    _watchdog.add(deadline)
    try:
        yield deadline
    finally:
        deadline._finish()
        _local.deadline = outer


def abort_all() -> None:
    """Expire every deadline under way now (shutdown)."""
    _watchdog.abort_all()


class _Watchdog:
    """One thread for every deadline of the process, started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._wake = threading.Condition(_lock)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="exchange-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()

    def abort_all(self) -> None:
        with self._wake:
            pending = [entry[2] for entry in self._heap]
        for deadline in pending:
            deadline._expire()

    def _run(self) -> None:
        while True:
            due: list[Deadline] = []
            with self._wake:
                while self._heap and self._heap[0][2]._finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait(30.0)
                    continue
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._wake.wait(self._heap[0][0] - now)
                    continue
            for deadline in due:
                deadline._expire()


_watchdog = _Watchdog()
