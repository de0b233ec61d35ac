"""The INSERT that knows ON CONFLICT, for the database a session is bound to.

SQLAlchemy has one per dialect; each dialect package costs ~15 ms to import, so only
the one in use is loaded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def upsert_insert(session: Session) -> Any:
    """`insert` of the session's dialect (`postgresql.insert` or `sqlite.insert`), whose
    statements have `on_conflict_do_nothing()`."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
