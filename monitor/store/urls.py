"""Database URLs checked and shown without loading SQLAlchemy.

`config check`, `--version` and every error message need to know whether a URL can be
used and how to print it; importing SQLAlchemy for that would cost a third of a second
before anything runs. The backends are the two the monitor's schema and statements are
written for: SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import re
from urllib.parse import urlsplit

URL_EXAMPLES = (
    "expected e.g. sqlite:////var/lib/model-monitor/monitor.db (four slashes for an "
    "absolute path) or postgresql+psycopg://user@host/dbname"
)

_SCHEME = re.compile(r"(?P<backend>[A-Za-z][A-Za-z0-9]*)(?:\+(?P<driver>[A-Za-z0-9_]+))?")
# backend -> its drivers -> the module each needs
_DRIVERS: dict[str, dict[str, str]] = {
    "sqlite": {"pysqlite": "sqlite3"},
    "postgresql": {"psycopg": "psycopg", "psycopg2": "psycopg2", "pg8000": "pg8000"},
}


def _default_driver(backend: str) -> str:
    """The driver SQLAlchemy uses when the URL names none."""
    if backend == "sqlite":
        return "pysqlite"
    from importlib.metadata import version

    major, minor = (int(part) for part in version("sqlalchemy").split(".")[:2])
    return "psycopg" if (major, minor) >= (2, 1) else "psycopg2"  # 2.1 changed it


def url_problem(url: str) -> str | None:
    """What is wrong with a database URL before anything is opened, or None.

    The message never repeats the URL: it may carry a password.
    """
    scheme, separator, _ = url.partition("://")
    match = _SCHEME.fullmatch(scheme)
    if not separator or match is None:
        return f"is not a database URL; {URL_EXAMPLES}"
    backend, driver = match["backend"].lower(), match["driver"]
    if backend not in _DRIVERS:
        return f"{scheme}:// is not a database this program knows; {URL_EXAMPLES}"
    drivers = _DRIVERS[backend]
    driver = (driver or _default_driver(backend)).lower()
    if driver not in drivers:
        return f"{scheme}:// is not a database this program knows; {URL_EXAMPLES}"
    try:  # imported, not only found: psycopg without its C library fails only then
        importlib.import_module(drivers[driver])
    except ImportError:
        if backend == "postgresql":
            return (
                f"PostgreSQL needs its driver ({drivers[driver]}), which is not installed; "
                "pip install 'llm-model-monitor[postgres]'"
            )
        return f"the {scheme} driver is not installed ({drivers[driver]})"
    return None


def shown_url(url: str) -> str:
    """A URL fit to print: its password masked; an unparsable one not echoed at all."""
    if url_problem(url) is not None and "://" not in url:
        return "(a database URL that does not parse)"
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a database URL that does not parse)"
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return parts._replace(netloc=f"{name}:***@{host}").geturl()


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (`sqlite:////abs/path`, `sqlite:///relative`), else None."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower().split("+")[0] != "sqlite":
        return None
    path = rest[1:].split("?", 1)[0] if rest.startswith("/") else ""
    return path or None
