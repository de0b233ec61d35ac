"""Loopback ports for servers that cannot bind port 0 themselves, and for "nobody there"."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now: for a server started next (aiosmtpd 1.4.6
    cannot listen on port 0), or as a destination that refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
