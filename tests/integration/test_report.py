"""`model-monitor report --html FILE`: one static HTML file from real checks, valid,
self-contained (no request leaves it), with hostile model ids as text."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli.commands import main
from monitor.store.database import open_database
from monitor.web.render import META_CSP
from tests.support.canary import CANARY
from tests.support.html_check import text_of, validate_html
from tests.support.web_world import B_TOKEN, C_TOKEN, QUOTES, XSS, World, served_world


@pytest.fixture
def world(db_url: str, gateway, receiver) -> Iterator[World]:
    with served_world(db_url, gateway, receiver) as served:
        yield served


@pytest.fixture
def sqlite_world(sqlite_url: str, gateway, receiver) -> Iterator[World]:
    """For tests about the command line rather than the database: one backend is enough."""
    with served_world(sqlite_url, gateway, receiver) as served:
        yield served


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No config from the machine running the tests: only what a test passes."""
    for name in ("MODEL_MONITOR_CONFIG", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    return tmp_path


@pytest.fixture(autouse=True)
def process_logging() -> Iterator[None]:
    """`main()` sets up logging for a whole process (a handler on this test's stderr,
    levels); put back what pytest had, or later tests would log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("monitor", "urllib3", "apscheduler")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command line in this process (a subprocess per call would double the time)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def write_config(world: World, path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPORT_TOKEN_A", CANARY)
    monkeypatch.setenv("REPORT_TOKEN_B", B_TOKEN)
    monkeypatch.setenv("REPORT_TOKEN_C", C_TOKEN)
    tokens = "".join(
        f'\n[[tokens]]\nname = "team-{n}"\nsource = "gw"\ntoken_env = "REPORT_TOKEN_{n.upper()}"\n'
        for n in "abc"
    )
    path.write_text(f'[[sources]]\nname = "gw"\nbase_url = "{world.gateway.base_url}"\n{tokens}')
    return path


def assert_self_contained(tree: ET.Element) -> None:
    """Nothing in the file asks for anything from anywhere: it works as an attachment."""
    for element in tree.iter():
        assert element.get("src") is None, element.tag
        assert element.get("action") is None, element.tag
        href = element.get("href")
        assert href is None or href.startswith(("#", "data:")), href
    csp = tree.find(".//meta[@http-equiv='Content-Security-Policy']")
    assert csp is not None and csp.get("content") == META_CSP


def test_report_has_the_matrix_and_timeline_of_each_source(
    world: World, isolated: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(world, isolated / "config.toml", monkeypatch)
    out_file = isolated / "report.html"
    database = world.db.url.render_as_string(hide_password=False)
    code, out, err = run(
        capsys, "--config", str(config), "--database", database, "report", "--html", str(out_file)
    )
    assert code == 0, err
    assert out == f"wrote {out_file}: 1 source(s), 2 event(s) in the last 7 days\n"
    text = out_file.read_text(encoding="utf-8")
    tree = validate_html(text)
    assert CANARY not in text and B_TOKEN not in text and CANARY not in out + err
    assert "<img" not in text.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "a&#34;b&#39;&amp;c&lt;/td&gt;" in text
    assert_self_contained(tree)
    (table,) = tree.iter("table")
    heads = [th for th in table.find("thead").iter("th") if th.get("scope") == "col"]
    assert [(th.text, th.get("class")) for th in heads] == [
        ("team-a", "t"),
        ("team-b", "t"),
        ("team-c ", "t stale"),  # failing: its column is its last success, marked as such
    ]
    assert "stale" in text_of(heads[2])
    (note,) = [p for p in tree.iter("p") if p.get("class") == "note stale-note"]
    assert "team-c: stale since " in text_of(note) and "auth (HTTP 401)" in text_of(note)
    rows = {text_of(tr.find("th")): tr for tr in table.find("tbody").iter("tr")}
    assert {XSS, QUOTES, "old-model"} <= rows.keys()
    assert [td.get("class") for td in rows[XSS].findall("td") if td.get("class") != "l"] == [
        "a",
        "a",
        "s",
    ]
    assert [td.get("class") for td in rows["old-model"].findall("td")][-3:] == ["r", "r", "s"]
    box = tree.find(".//input[@data-table='m1']")
    assert box is not None and box.get("name") is None  # no server to submit to
    assert len(list(tree.iter("script"))) == 1
    kinds = [a.get("class") for a in tree.iter("article")]
    assert kinds == ["event models-changed", "event token-failing"]


def test_report_to_stdout_without_a_config_and_for_one_source(
    sqlite_world: World, isolated: Path, capsys
) -> None:
    database = sqlite_world.db.url.render_as_string(hide_password=False)
    code, out, err = run(capsys, "--database", database, "report", "--html", "-", "--days", "1")
    assert code == 0, err
    tree = validate_html(out)
    assert "Changes in the last 1 days" in text_of(tree)
    assert CANARY not in out and "<img" not in out.lower()
    code, out, err = run(capsys, "--database", database, "report", "--html", "-", "--source", "gw")
    assert code == 0 and len(list(validate_html(out).iter("table"))) == 1


def test_report_usage_errors_exit_78(sqlite_url: str, isolated: Path, capsys) -> None:
    open_database(sqlite_url).close()
    base = ("--database", sqlite_url, "report")
    code, _, err = run(capsys, *base, "--html", "-", "--source", "nope")
    assert code == 78 and "no source 'nope'" in err
    code, _, err = run(capsys, *base, "--html", "-", "--days", "0")
    assert code == 78 and "--days" in err
    code, _, err = run(capsys, *base)
    assert code == 78 and "--html" in err
    code, _, err = run(capsys, *base, "--html", str(isolated))
    assert code == 78
