"""`/changes.atom` from real checks: well-formed XML in the Atom namespace, RFC 4287's
required elements, stable entry ids, the same filters as /changes, hostile model ids
as text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from monitor.web.feed import _text
from tests.conftest import CANARY
from tests.web_world import QUOTES, XSS, World, served_world

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


def test_feed_lists_every_event_newest_first_with_stable_ids(world: World) -> None:
    body, root = feed(world)
    assert root.findtext(f"{A}id") == "urn:model-monitor:changes"
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
    assert changed.findtext(f"{A}title") == "3 added, 1 removed, 1 endpoint types changed on gw"
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
    assert root.findtext(f"{A}id") == "urn:model-monitor:changes:token=team-a:type=removed"
    (entry,) = root.findall(f"{A}entry")
    assert entry.findtext(f"{A}title") == "1 removed on gw"
    assert entry.find(f"{A}link").get("href").startswith("/changes?token=team-a&type=removed#")
    _, root = feed(world, "?type=token.failing")
    (entry,) = root.findall(f"{A}entry")
    assert "HTTP 401" in (entry.findtext(f"{A}title") or "")
    _, root = feed(world, "?source=elsewhere")
    assert root.findall(f"{A}entry") == []
    assert RFC3339.match(root.findtext(f"{A}updated") or "")  # an empty feed has one too
    assert world.get("/changes.atom?limit=0").status_code == 400


def test_characters_xml_cannot_carry_are_replaced() -> None:
    assert _text("bad\x00id\x1b") == "bad\ufffdid\ufffd"
    assert _text("tab\tand\nnewline") == "tab\tand\nnewline"
