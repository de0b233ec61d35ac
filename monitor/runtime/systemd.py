"""The systemd notify protocol, without a dependency: one datagram per state change.

With `Type=notify` systemd waits for READY=1 before it calls the service started, and with
`WatchdogSec=` it restarts a service that stops sending WATCHDOG=1. The daemon pings only
while it is healthy (scheduler running, database answering), so a wedged daemon is
restarted instead of silently checking nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("monitor.systemd")


class Notifier:
    """Sends sd_notify messages to $NOTIFY_SOCKET; does nothing when it is not set."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        # A leading "@" names a Linux abstract socket.
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process the watchdog is meant for.
        watchdog = int(usec) if usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog)

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address.lstrip("\0"), exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
