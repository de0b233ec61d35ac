"""`/changes.atom` from real checks: well-formed XML in the Atom namespace, RFC 4287's
required elements, stable entry ids, the same filters as /changes, hostile model ids
as text; short titles naming models and error kinds, read by feedparser as a feed reader
would; a feed id of the installation's own, kept in the database."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import feedparser
import pytest
from sqlalchemy import delete, select, text

from monitor.sim import make_model
from monitor.store.database import Database, open_database
from monitor.store.schema import Installation
from monitor.web.app import StatusPages
from monitor.web.feed import _text
from tests.support.canary import CANARY
from tests.support.web_world import AFTER, C_TOKEN, QUOTES, XSS, World, served_world

NS = "http://www.w3.org/2005/Atom"
A = f"{{{NS}}}"
# RFC 3339 date-time, as RFC 4287 section 3.3 requires (an upper-case T and Z here).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def world(db_url: str, gateway, receiver) -> Iterator[World]:
    with served_world(db_url, gateway, receiver) as served:
        yield served


def feed(world: World, query: str = "") -> tuple[bytes, ET.Element]:
    response = world.get(f"/changes.atom{query}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    body = response.content
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert CANARY.encode() not in body
    assert b"<img" not in body
    root = ET.fromstring(body)  # noqa: S314 - our own feed, under test
    assert_atom(root)
    return body, root


def assert_atom(root: ET.Element) -> None:
    """RFC 4287's rules for atom:feed and atom:entry (sections 4.1.1 and 4.1.2)."""
    assert root.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{name}")) == 1, name
    assert RFC3339.match(root.findtext(f"{A}updated") or "")
    feed_author = root.find(f"{A}author/{A}name")
    entries = root.findall(f"{A}entry")
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, name
        assert RFC3339.match(entry.findtext(f"{A}updated") or "")
        assert feed_author is not None or entry.find(f"{A}author/{A}name") is not None
        alternate = [
            link
            for link in entry.findall(f"{A}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert alternate or entry.find(f"{A}content") is not None
        content = entry.find(f"{A}content")
        if content is not None:
            assert content.get("type") in ("text", "html", "xhtml")
    assert feed_author is not None and (feed_author.text or "").strip()
    ids = [e.findtext(f"{A}id") for e in entries]
    assert len(set(ids)) == len(ids)


def installation(db: Database) -> uuid.UUID:
    with db.reader() as session:
        (value,) = session.scalars(select(Installation.id)).all()
    return uuid.UUID(value)


def test_feed_lists_every_event_newest_first_with_stable_ids(world: World) -> None:
    body, root = feed(world)
    feed_uuid = uuid.uuid5(installation(world.db), "urn:model-monitor:changes")
    assert root.findtext(f"{A}id") == f"urn:uuid:{feed_uuid}"
    self_link = next(link for link in root.findall(f"{A}link") if link.get("rel") == "self")
    assert self_link.get("href") == "/changes.atom"
    entries = root.findall(f"{A}entry")
    assert [e.find(f"{A}category").get("term") for e in entries] == [
        "models.changed",
        "token.failing",
    ]
    assert all(
        re.fullmatch(r"urn:model-monitor:event:evt_[A-Za-z0-9_-]+", e.findtext(f"{A}id") or "")
        for e in entries
    )
    assert root.findtext(f"{A}updated") == entries[0].findtext(f"{A}updated")
    changed = entries[0]
    # Short titles that name models; the counts open the content.
    assert (
        changed.findtext(f"{A}title")
        == f"gw: added {XSS} (+2 more); removed old-model; changed gpt-4o"
    )
    failing = entries[1]
    assert failing.findtext(f"{A}title") == "gw/team-c failing: auth (HTTP 401)"
    details = failing.findtext(f"{A}content") or ""
    assert "Invalid token" in details and "request id: " in details
    link = changed.find(f"{A}link").get("href")
    assert link == f"/changes#{changed.findtext(f'{A}id').rsplit(':', 1)[1]}"
    # The content is HTML (type="html"): the model id is HTML-escaped inside it, and the
    # XML layer escapes that again. Parsed once, it is text that shows the id as text.
    html = changed.findtext(f"{A}content") or ""
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert XSS not in html
    assert "a&#34;b&#39;&amp;c&lt;/td&gt;" in html
    assert QUOTES not in html
    assert b"&amp;lt;img src=x onerror=alert(1)&amp;gt;" in body
    _, again = feed(world)
    assert [e.findtext(f"{A}id") for e in again.findall(f"{A}entry")] == [
        e.findtext(f"{A}id") for e in entries
    ]


def test_feed_takes_the_filters_of_the_changes_page(world: World) -> None:
    _, root = feed(world, "?token=team-a&type=removed")
    name = "urn:model-monitor:changes:token=team-a:type=removed"
    assert root.findtext(f"{A}id") == f"urn:uuid:{uuid.uuid5(installation(world.db), name)}"
    (entry,) = root.findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "gw: removed old-model"
    assert "1 removed on gw" in (entry.findtext(f"{A}content") or "")
    assert entry.find(f"{A}link").get("href").startswith("/changes?token=team-a&type=removed#")
    _, root = feed(world, "?type=token.failing")
    (entry,) = root.findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "gw/team-c failing: auth (HTTP 401)"
    _, root = feed(world, "?type=endpoint_types_changed")
    (entry,) = root.findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "gw/team-a: changed gpt-4o"  # team-a's change only
    _, root = feed(world, "?source=elsewhere")
    assert root.findall(f"{A}entry") == []
    assert RFC3339.match(root.findtext(f"{A}updated") or "")  # an empty feed has one too
    assert world.get("/changes.atom?limit=0").status_code == 400


def test_characters_xml_cannot_carry_are_replaced() -> None:
    assert _text("bad\x00id\x1b") == "bad\ufffdid\ufffd"
    assert _text("tab\tand\nnewline") == "tab\tand\nnewline"


def test_a_feed_reader_reads_short_titles_and_full_details(world: World) -> None:
    """feedparser, the parser many feed readers are built on, finds no error and reads
    what a reader lists: titles naming models and error kinds, the details in the content."""
    world.gateway.renew_token(C_TOKEN)
    world.checker.check()  # team-c recovers
    parsed = feedparser.parse(world.get("/changes.atom").content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id.startswith("urn:uuid:")
    assert parsed.feed.generator_detail.name.endswith("model-monitor")
    titles = [e.title for e in parsed.entries]
    assert titles == [
        "gw/team-c recovered",
        f"gw: added {XSS} (+2 more); removed old-model; changed gpt-4o",
        "gw/team-c failing: auth (HTTP 401)",
    ]
    failing = parsed.entries[2]
    assert failing.content[0].type == "text/html"
    assert "HTTP 401: Invalid token (request id: " in failing.content[0].value
    assert all(len(t) <= 100 for t in titles)
    assert {t["term"] for e in parsed.entries for t in e.tags} == {
        "models.changed",
        "token.failing",
        "token.recovered",
    }


def test_a_title_names_a_few_models_and_counts_the_rest(world: World) -> None:
    many = [f"model-{i:02d}-{'x' * 50}" for i in range(6)]
    now = [make_model("gpt-4o", ("openai", "openai-response")), *AFTER[1:]]
    world.gateway.set_models(CANARY, [*now, *(make_model(m) for m in many)])
    world.checker.check()
    _, root = feed(world, "?limit=1")
    (entry,) = root.findall(f"{A}entry")
    title = entry.findtext(f"{A}title") or ""
    cut = [m[:39] + "\N{HORIZONTAL ELLIPSIS}" for m in many[:3]]  # long ids are cut
    assert title == f"gw/team-a: added {', '.join(cut)} (+3 more)"
    content = entry.findtext(f"{A}content") or ""
    assert all(m in content for m in many)  # the content names them all, whole


def test_the_feed_id_is_one_per_installation_and_permanent(db_url: str, sqlite_url: str) -> None:
    """Two databases, two ids; the same database, reopened or served by another daemon
    (another StatusPages), the same id; filtered feeds differ from the whole one."""

    def feed_id(db: Database, query: str = "") -> str:
        page = StatusPages(db).respond("/changes.atom", query)
        assert page.status == 200
        return ET.fromstring(page.body).findtext(f"{A}id") or ""  # noqa: S314

    first = open_database(db_url)
    other = open_database(sqlite_url.replace("monitor.db", "other.db"))
    try:
        ids = {feed_id(first), feed_id(first, "source=gw"), feed_id(other)}
        assert len(ids) == 3
        assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", i) for i in ids)
        assert feed_id(first) == feed_id(first)
    finally:
        first.close()
    again = open_database(db_url)
    try:
        assert feed_id(again) in ids
        with again.session() as session:  # the row emptied by hand: a fallback, no error
            session.execute(delete(Installation))
        assert feed_id(again) == "urn:model-monitor:changes"
    finally:
        again.close()
        other.close()


def test_an_existing_database_gets_its_installation_id_on_upgrade(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade("0005")  # a database of the version before, with history in it
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO channel_state (channel, disabled_at, reason) "
                    "VALUES ('hook', '2026-11-26 10:00:00', 'gone')"
                )
            )
        db.upgrade()
        made = installation(db)  # exactly one row, a UUID
        page = StatusPages(db).respond("/changes.atom", "")
        root = ET.fromstring(page.body)  # noqa: S314
        assert (
            root.findtext(f"{A}id") == f"urn:uuid:{uuid.uuid5(made, 'urn:model-monitor:changes')}"
        )
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT channel FROM channel_state")).scalars().all() == [
                "hook"
            ]
        db.downgrade("0005")
        db.upgrade()
        assert installation(db) != made  # made with the table, never rewritten otherwise
    finally:
        db.close()
