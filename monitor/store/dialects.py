"""The INSERT that knows ON CONFLICT, for the database a session is bound to.

SQLAlchemy has one per dialect; each dialect package costs ~15 ms to import, so only
the one in use is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from monitor.store.schema import Base


def upsert_insert(session: Session) -> Callable[[type[Base]], postgresql.Insert | sqlite.Insert]:
    """`insert` of the session's dialect (`postgresql.insert` or `sqlite.insert`), whose
    statements have `on_conflict_do_nothing()`."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
