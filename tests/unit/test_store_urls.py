"""Database URLs are judged and shown as SQLAlchemy would, without importing it (a fresh
interpreter proves that: tests/integration/test_store_urls.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from monitor.store.urls import shown_url, sqlite_path, url_problem

GOOD = [
    "sqlite://",
    "sqlite:////var/lib/model-monitor/monitor.db",
    "sqlite:///relative.db",
    "postgresql+psycopg://mm:p%40ss@db.example:5432/monitor",
    "postgresql+psycopg://mm@127.0.0.1/test?sslmode=disable",
]


@pytest.mark.parametrize("url", GOOD)
def test_usable_urls_pass_and_show_as_sqlalchemy_shows_them(url: str) -> None:
    assert url_problem(url) is None
    assert shown_url(url) == make_url(url).render_as_string(hide_password=True)
    parsed = make_url(url)
    expected = parsed.database if parsed.get_backend_name() == "sqlite" else None
    assert sqlite_path(url) == (expected or None)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("notaurl", "is not a database URL"),
        ("mysql://db/x", "mysql:// is not a database this program knows"),
        ("postgresql+asyncpg://db/x", "is not a database this program knows"),
        ("sqlite+nope:///x.db", "is not a database this program knows"),
    ],
)
def test_unusable_urls_say_why_without_echoing_them(url: str, words: str) -> None:
    problem = url_problem(url)
    assert problem is not None and words in problem
    assert "/x" not in problem
