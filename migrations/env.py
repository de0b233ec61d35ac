"""Alembic environment.

The program passes its live connection in `config.attributes["connection"]`; a
developer running the `alembic` command gives a URL with `-x url=...` instead.
`fileConfig` is deliberately not called: it would silence the program's loggers.
"""

from alembic import context
from sqlalchemy import create_engine

from monitor.store.schema import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("alembic: pass the database with -x url=sqlite:///path/to/monitor.db")
    with create_engine(url).begin() as conn:
        _run(conn)
