"""What goes wrong with a database, as the command line reports it (no SQLAlchemy here)."""

from __future__ import annotations


class DatabaseError(Exception):
    """The database cannot be opened, read or migrated; the message says which and why."""


class DatabaseUrlError(DatabaseError):
    """The URL is not usable at all (malformed, unknown backend, driver not installed):
    a configuration mistake rather than a database in trouble."""
