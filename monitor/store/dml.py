"""INSERT, UPDATE and DELETE statements whose answer is how many rows they changed."""

from __future__ import annotations

from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable


def affected_rows(session: Session, statement: Executable) -> int:
    """Run `statement` (an INSERT, UPDATE or DELETE without RETURNING): the rows it matched.

    `Session.execute` answers such a statement with a `CursorResult`, the one kind of
    result that has a `rowcount`; its declared type is the general `Result`.
    """
    result = session.execute(statement)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} has no rowcount: not an INSERT, UPDATE or DELETE")
    return result.rowcount
