"""The status pages from a database filled by real checks against the gateway simulator:
every page is fetched from a real listener, validated as HTML, and read for what it
must say. Upstream strings are hostile here: model ids and endpoint types that are
HTML, and a canary token value that must never appear."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from monitor.config import SourceConfig
from monitor.sim.config import sim_config
from monitor.store.database import open_database
from monitor.web.app import StatusPages
from monitor.web.render import CSP
from tests.support.canary import CANARY
from tests.support.html_check import text_of, validate_html
from tests.support.web_world import B_TOKEN, C_TOKEN, HOSTILE_TYPE, QUOTES, XSS, World, served_world

MINUS = "\N{MINUS SIGN}"  # what a removed cell shows


@pytest.fixture
def world(db_url: str, gateway, receiver) -> Iterator[World]:
    with served_world(db_url, gateway, receiver) as served:
        yield served


def page(world: World, path: str) -> tuple[str, object]:
    """GET a page, check the response and the HTML, return the text and the parsed tree."""
    response = world.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    text = response.text
    assert_safe(text)
    return text, validate_html(text)


def assert_safe(text: str) -> None:
    """Hostile upstream strings only ever as text; no token value, ever."""
    assert CANARY not in text
    assert B_TOKEN not in text
    assert "<img" not in text.lower()
    assert "<script>alert" not in text
    scripts = re.findall(r"<script\b", text)
    assert len(scripts) <= 1  # ours, the filter; nothing else


def token_headers(table) -> list:
    return [th for th in table.find("thead").iter("th") if "t" in (th.get("class") or "").split()]


def matrix_cells(tree) -> tuple[list[str], dict[str, dict[str, tuple[str, str]]]]:
    """Token columns, and per model per token: (cell class, cell text)."""
    table = tree.find(".//table[@id='m1']")
    assert table is not None
    tokens = [(th.text or "").strip() for th in token_headers(table)]
    rows: dict[str, dict[str, tuple[str, str]]] = {}
    for tr in table.find("tbody").iter("tr"):
        model = text_of(tr.find("th"))
        cells = [td for td in tr.findall("td") if td.get("class") != "l"]
        assert len(cells) == len(tokens)
        rows[model] = {
            token: (td.get("class") or "", text_of(td))
            for token, td in zip(tokens, cells, strict=True)
        }
    return tokens, rows


def test_status_page_shows_every_token_its_health_and_the_outbox(world: World) -> None:
    _, tree = page(world, "/")
    body = text_of(tree)
    assert "gw" in body and "new-api" in body
    rows = {text_of(tr.find("td")): tr for tr in tree.iter("tr") if tr.find("td") is not None}
    assert {"team-a", "team-b", "team-c"} <= rows.keys()
    team_a, team_c = text_of(rows["team-a"]), text_of(rows["team-c"])
    assert "ok" in team_a
    assert text_of(rows["team-a"].find("td[@class='num']")) == "5"  # models now
    assert text_of(rows["team-c"].find("td[@class='num']")) == "3"  # at its last success
    assert "failing since" in team_c and "auth" in team_c and "HTTP 401" in team_c
    assert rows["team-c"].find("td[@class='failing']") is not None
    # Two events (token.failing, models.changed) to two channels: 2 dead, 2 pending.
    assert "2 pending" in body and "2 dead" in body
    states = [text_of(td) for td in tree.iter("td") if td.get("class") in ("dead", "pending")]
    assert sorted(states) == ["dead", "dead", "pending", "pending"]
    assert "no thanks" in body  # the dead deliveries' last error


def test_matrix_marks_added_and_removed_cells_and_shows_types_once(world: World) -> None:
    text, tree = page(world, "/matrix?source=gw")
    tokens, rows = matrix_cells(tree)
    assert tokens == ["team-a", "team-b", "team-c"]
    assert set(rows) == {"claude-3-5-sonnet", "gpt-4o", "old-model", XSS, QUOTES, "bell\ufffdid"}
    # Added for a and b; team-c failed, so its last snapshot is the baseline: stale ("s").
    assert rows[XSS] == {"team-a": ("a", "+"), "team-b": ("a", "+"), "team-c": ("s", "")}
    assert rows[QUOTES]["team-a"] == ("a", "+")
    assert rows["old-model"] == {
        "team-a": ("r", MINUS),
        "team-b": ("r", MINUS),
        "team-c": ("s", "✓"),
    }
    assert rows["claude-3-5-sonnet"] == {
        "team-a": ("", "✓"),
        "team-b": ("", "✓"),
        "team-c": ("s", "✓"),
    }
    # gpt-4o's endpoint types differ between tokens: each cell says its own.
    assert rows["gpt-4o"]["team-a"] == ("", "✓openai openai-response".replace(" ", ""))
    assert rows["gpt-4o"]["team-b"] == ("", "✓openai")
    # Uniform types are badges once per row; the hostile one is text.
    xss_row = next(
        tr for tr in tree.iter("tr") if tr.find("th") is not None and text_of(tr.find("th")) == XSS
    )
    badges = [text_of(span) for span in xss_row.iter("span") if span.get("class") == "b"]
    assert badges == [HOSTILE_TYPE, "openai"]
    assert QUOTES in text_of(xss_row)  # the owner
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "a&#34;b&#39;&amp;c&lt;/td&gt;" in text
    assert "3 models added, 1 removed" in text_of(tree)
    assert "6 of 6 models shown" in text_of(tree)


def test_matrix_marks_a_failing_tokens_column_as_stale(world: World) -> None:
    _, tree = page(world, "/matrix?source=gw")
    table = tree.find(".//table[@id='m1']")
    headers = {(th.text or "").strip(): th for th in token_headers(table)}
    assert [th.get("class") for th in headers.values()] == ["t", "t", "t stale"]
    stale = headers["team-c"]
    assert text_of(stale) == "team-c \N{WARNING SIGN} stale"  # seen, not only hovered
    assert re.fullmatch(
        r"stale since \d{4}-\d\d-\d\d \d\d:\d\d UTC: auth \(HTTP 401\); 3 models at .+ UTC",
        stale.get("title") or "",
    )
    assert (headers["team-a"].get("title") or "").startswith("5 models at ")
    # Every cell of the column, whatever its state, carries the mark; no other cell does.
    for tr in table.find("tbody").iter("tr"):
        cells = [td for td in tr.findall("td") if td.get("class") != "l"]
        assert [("s" in (td.get("class") or "").split()) for td in cells] == [False, False, True]
    (note,) = [p for p in tree.iter("p") if p.get("class") == "note stale-note"]
    said = text_of(note)
    assert re.match(r"\N{WARNING SIGN} team-c: stale since \d{4}-\d\d-\d\d \d\d:\d\d UTC: ", said)
    assert "auth (HTTP 401)" in said and "Its column shows its last successful check" in said
    assert "Invalid" not in said  # the kind of error, not its message
    assert note.find(".//time") is not None
    # A token that recovers is current again.
    world.gateway.renew_token(C_TOKEN)
    world.checker.check()
    _, tree = page(world, "/matrix?source=gw")
    table = tree.find(".//table[@id='m1']")
    assert [th.get("class") for th in token_headers(table)] == ["t", "t", "t"]
    assert not [p for p in tree.iter("p") if "stale-note" in (p.get("class") or "")]
    assert not [td for td in table.iter("td") if "s" in (td.get("class") or "").split()]


def test_matrix_filter_works_without_javascript_and_escapes_the_query(world: World) -> None:
    _, tree = page(world, "/matrix?source=gw&q=%22%3E%3Cimg")
    _, rows = matrix_cells(tree)
    assert set(rows) == set()  # no model contains it
    box = tree.find(".//input[@name='q']")
    assert box is not None and box.get("value") == '"><img'
    _, tree = page(world, "/matrix?source=gw&q=CLAUDE")
    assert set(matrix_cells(tree)[1]) == {"claude-3-5-sonnet"}
    assert "1 of 6 models shown" in text_of(tree)


def test_matrix_without_a_source_picks_the_only_one_and_refuses_unknown_ones(world: World) -> None:
    _, tree = page(world, "/matrix")
    assert matrix_cells(tree)[0] == ["team-a", "team-b", "team-c"]
    missing = world.get(f"/matrix?source={XSS}")
    assert missing.status_code == 404
    validate_html(missing.text)
    assert_safe(missing.text)
    assert "No source is named &lt;img" in missing.text
    bad = world.get("/matrix?source=gw&days=0")
    assert bad.status_code == 400 and "days must be a whole number" in bad.text


def test_changes_timeline_and_its_filters(world: World) -> None:
    text, tree = page(world, "/changes")
    articles = list(tree.iter("article"))
    assert [a.get("class") for a in articles] == ["event models-changed", "event token-failing"]
    changed = text_of(articles[0])
    assert XSS in changed and QUOTES in changed and "old-model" in changed
    assert "openai-response" in changed  # gpt-4o's endpoint types
    assert "team-c" in text_of(articles[1]) and "HTTP 401" in text_of(articles[1])
    assert 'href="/changes.atom"' in text

    _, tree = page(world, "/changes?token=team-a&type=removed")
    (article,) = tree.iter("article")
    items = [text_of(li) for li in article.iter("li")]
    assert len(items) == 1 and "old-model" in items[0]
    assert text_of(article.find("h3")) == "1 removed on gw"  # recomputed for the filter

    _, tree = page(world, "/changes?type=endpoint_types_changed")
    (article,) = tree.iter("article")
    assert [text_of(li).split(":")[0] for li in article.iter("li")] == ["endpoint types of gpt-4o"]

    _, tree = page(world, "/changes?type=token.failing")
    assert len(list(tree.iter("article"))) == 1
    _, tree = page(world, "/changes?source=elsewhere")
    assert list(tree.iter("article")) == []
    text, tree = page(world, "/changes?limit=1")
    assert len(list(tree.iter("article"))) == 1
    assert "the latest 1 of more" in text_of(tree)
    assert world.get("/changes?type=nonsense").status_code == 400
    assert world.get("/changes?limit=abc").status_code == 400


def test_pages_are_compressed_and_head_has_no_body(world: World) -> None:
    raw = requests.get(
        f"{world.listener.url}/matrix?source=gw",
        headers={"Accept-Encoding": "gzip"},
        timeout=10,
        stream=True,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert raw.headers["Vary"] == "Accept-Encoding"
    body = gzip.decompress(raw.raw.read())
    assert body.startswith(b"<!DOCTYPE html>")
    plain = world.get("/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    head = requests.head(f"{world.listener.url}/changes", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_unknown_paths_are_404_beside_the_pages(world: World) -> None:
    assert world.get("/nope").status_code == 404
    assert world.get("/static/x.js").status_code == 404
    assert world.get("/healthz").status_code == 200


def test_pages_of_a_fresh_database_and_a_source_never_checked(sqlite_url: str) -> None:
    config = sim_config("http://127.0.0.1:9/v1", {"team-a": CANARY})
    config = replace(
        config,
        sources=(*config.sources, SourceConfig(name="second", base_url="http://127.0.0.1:9/v2")),
    )
    db = open_database(sqlite_url)
    try:
        pages = StatusPages(db, config)

        def html(path: str, query: str = "") -> str:
            answer = pages.respond(path, query)
            assert answer.status == 200
            text = answer.body.decode()
            validate_html(text)
            assert CANARY not in text
            return text

        status = html("/")
        assert "not checked yet" in status and "second" in status
        assert 'href="/matrix?source=second"' in html("/matrix")  # two sources: pick one
        assert "No models yet" in html("/matrix", "source=gw")
        assert "No events yet" in html("/changes")
        feed = pages.respond("/changes.atom", "")
        assert feed.status == 200 and b"<entry>" not in feed.body
        assert pages.respond("/matrix", "source=nope").status == 404
    finally:
        db.close()
