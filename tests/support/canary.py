"""A token value planted in tests, and everywhere it must never end up.

Tests configure CANARY as a token (or a URL's secret part) and then look for it in logs,
payloads, pages and, with `database_contents`, in everything a database holds.
"""

from __future__ import annotations

import zlib
from contextlib import suppress
from pathlib import Path

from sqlalchemy import MetaData, create_engine, make_url, select

CANARY = "sk-canary-7f3e9b1c5d2a4e6f8a0b9c1d3e5f7a9b"


def database_contents(url: str) -> bytes:
    """Everything a database holds, to grep for secrets: a SQLite database's files
    (free pages, journal and WAL included), or every row of every PostgreSQL table as
    text, compressed columns inflated."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        chunks: list[bytes] = []
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            raw = bytes(value)
                            with suppress(zlib.error):
                                raw = zlib.decompress(raw)
                            chunks.append(raw)
                        else:
                            chunks.append(str(value).encode())
        return b"\n".join(chunks)
    finally:
        engine.dispose()
