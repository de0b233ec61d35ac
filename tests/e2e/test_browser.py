"""The matrix at full size in a real browser: 1,000 models x 20 tokens from real checks,
loaded in headless Chromium, filtered by typing into the filter box, screenshotted.

Needs Debian's `chromium` (`.ci/run` installs it): skipped without it, unless
MODEL_MONITOR_REQUIRE_BROWSER=1 (CI), when a missing browser fails the run.
MODEL_MONITOR_UPDATE_SCREENSHOT=1 also writes the screenshot to docs/status-matrix.png.
Run with `-s` to see the page size and render time (docs/status-page.md quotes them).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from monitor.runtime.cycle import Checker
from monitor.runtime.listener import HealthAnswer, Listener
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import open_database
from monitor.web.app import StatusPages
from tests.support.browser import Chromium, find_chromium
from tests.support.canary import CANARY
from tests.support.html_check import validate_html

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "status-matrix.png"
MODELS, TOKENS = 1000, 20
FILTER = "haiku"

FAMILIES = (
    ("gpt-4o", "openai", ("openai", "openai-response")),
    ("gpt-4.1", "openai", ("openai", "openai-response")),
    ("o3", "openai", ("openai-response",)),
    ("claude-sonnet-4", "anthropic", ("anthropic", "openai")),
    ("claude-3-5-haiku", "anthropic", ("anthropic", "openai")),
    ("gemini-2.5-pro", "google", ("gemini", "openai")),
    ("gemini-2.0-flash", "google", ("gemini", "openai")),
    ("deepseek-v3", "deepseek", ("openai",)),
    ("qwen3-235b-a22b", "alibaba", ("openai",)),
    ("llama-3.3-70b-instruct", "meta", ("openai",)),
    ("mistral-large", "mistral", ("openai",)),
    ("text-embedding-3-large", "openai", ("embeddings",)),
    ("gpt-image-1", "openai", ("image-generation",)),
)
VARIANTS = ("", "-latest", "-preview", "-mini", "-thinking", "-fast", "-search", "-batch")
ADDED = ("claude-3-5-haiku-20261022", "claude-haiku-4-5", "gemini-3-pro-preview")
REMOVED = ("claude-3-5-haiku-batch-r0", "claude-3-5-haiku-fast-r1")


def catalog() -> list[dict]:
    """1,000 model ids that read like a gateway's, with their endpoint types."""
    models = []
    for n in range(MODELS):
        family, owner, types = FAMILIES[n % len(FAMILIES)]
        variant = VARIANTS[(n // len(FAMILIES)) % len(VARIANTS)]
        models.append(make_model(f"{family}{variant}-r{n // 104}", types, owned_by=owner))
    assert len({m["id"] for m in models}) == MODELS
    assert set(REMOVED) <= {m["id"] for m in models}
    return models


def token_value(i: int) -> str:
    return CANARY if i == 0 else f"sk-browser-{i:02d}-{'0' * 24}"


def sees(i: int, n: int) -> bool:
    """Token i's allow-list: most models, a different few missing for each token."""
    return (n * 7 + i * 13) % 11 != 0 or i == 0


@dataclass
class Big:
    listener: Listener
    pages: StatusPages
    ids: list[str]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    """Two real check cycles of 20 tokens x 1,000 models: a baseline, then a few models
    added (for half the tokens) and removed (for a quarter)."""
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('big') / 'monitor.db'}")
    models = catalog()
    with GatewaySimulator(seed=11) as gateway:
        names = {f"team-{i:02d}": token_value(i) for i in range(TOKENS)}
        for i, value in enumerate(names.values()):
            gateway.add_token(value, models=[m for n, m in enumerate(models) if sees(i, n)])
        config = sim_config(gateway.base_url, names, confirm_checks=1, concurrency=20)
        checker = Checker(config, db)
        checker.check()
        new = [make_model(m, ("anthropic", "openai"), owned_by="anthropic") for m in ADDED]
        for i, value in enumerate(names.values()):
            listing = [m for n, m in enumerate(models) if sees(i, n)]
            if i < TOKENS // 4:
                listing = [m for m in listing if m["id"] not in REMOVED]
            if i % 2 == 0:
                listing += new
            gateway.set_models(value, listing)
        checker.check()
    pages = StatusPages(db, config)
    with Listener("127.0.0.1:0", health=lambda: HealthAnswer(True, {}), pages=pages) as listener:
        yield Big(listener, pages, [m["id"] for m in models] + list(ADDED))
    db.close()


def test_the_matrix_holds_1000_models_by_20_tokens_lean(big: Big) -> None:
    url = f"{big.listener.url}/matrix?source=gw"
    started = time.perf_counter()
    response = requests.get(url, timeout=30, headers={"Accept-Encoding": "identity"})
    fetched = time.perf_counter() - started
    assert response.status_code == 200
    text = response.text
    tree = validate_html(text)
    rows = tree.find(".//table[@id='m1']/tbody").findall("tr")
    assert len(rows) == len(big.ids)
    assert all(len(row.findall("td")) == 2 + TOKENS for row in rows)  # owner, types, tokens
    assert CANARY not in text
    compressed = requests.get(url, timeout=30, headers={"Accept-Encoding": "gzip"}, stream=True)
    gzipped = len(compressed.raw.read())
    cold = StatusPages(big.pages.db, big.pages.config)  # nothing cached yet
    started = time.perf_counter()
    cold.respond("/matrix", "source=gw")
    first = time.perf_counter() - started
    times = []
    for _ in range(5):
        started = time.perf_counter()
        cold.respond("/matrix", "source=gw")
        times.append(time.perf_counter() - started)
    size = len(response.content)
    print(
        f"\nmatrix {MODELS} models x {TOKENS} tokens: {size / 1024:.0f} KiB of HTML, "
        f"{gzipped / 1024:.0f} KiB gzipped; server render {first * 1000:.0f} ms cold "
        f"(20 snapshots read), {statistics.median(times) * 1000:.0f} ms warm (median of 5); "
        f"first GET over HTTP {fetched * 1000:.0f} ms"
    )
    # Lean: about 0.5 KiB a row, ~20 bytes a cell. Sizes are deterministic; time is not
    # asserted: speed is measured (docs/status-page.md quotes it), not tested.
    assert size < 700 * 1024
    assert gzipped < 80 * 1024


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("MODEL_MONITOR_REQUIRE_BROWSER") == "1":
            pytest.fail("MODEL_MONITOR_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("no chromium: `apt-get install chromium` (Debian) runs the browser test")
    with Chromium(binary, tmp_path_factory.mktemp("chromium")) as browser:
        yield browser


def test_typing_in_the_filter_box_hides_rows_in_a_real_browser(
    big: Big, chromium: Chromium, tmp_path: Path
) -> None:
    chromium.open(f"{big.listener.url}/matrix?source=gw")
    visible = "[...document.querySelectorAll('#m1 tbody tr')].filter(r => !r.hidden).length"
    shown = "document.getElementById('m1-shown').textContent"
    assert chromium.evaluate(visible) == len(big.ids)
    assert chromium.evaluate("document.querySelectorAll('#m1 tbody td').length") == (
        len(big.ids) * (TOKENS + 2)
    )
    chromium.evaluate("document.getElementById('m1-q').focus()")
    started = time.perf_counter()
    chromium.type(FILTER)
    expected = sum(1 for m in big.ids if FILTER in m)
    assert 0 < expected < len(big.ids)
    chromium.wait_for(f"{visible} === {expected}", timeout=5)
    took = time.perf_counter() - started
    print(f"\nfilter: {len(big.ids)} -> {expected} rows {took:.2f} s after typing began")
    assert chromium.evaluate(shown) == str(expected)
    assert chromium.evaluate("document.getElementById('m1-q').value") == FILTER
    # The sticky header stays on screen when the page scrolls.
    chromium.evaluate("window.scrollTo(0, 400)")
    top = chromium.evaluate("document.querySelector('#m1 thead th').getBoundingClientRect().top")
    assert 0 <= top < 5
    chromium.evaluate("window.scrollTo(0, 0)")
    marked = (
        "document.querySelectorAll("
        "'#m1 tbody tr:not([hidden]) td.a, #m1 tbody tr:not([hidden]) td.r').length"
    )
    assert chromium.evaluate(marked) > 0  # added and removed cells in view
    assert chromium.problems() == []  # no CSP violation, no script error
    png = chromium.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "status-matrix.png").write_bytes(png)
    if os.environ.get("MODEL_MONITOR_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(png)
    # Clearing the box brings every row back.
    chromium.evaluate("document.getElementById('m1-q').select()")
    chromium.call(
        "Input.dispatchKeyEvent",
        {"type": "keyDown", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8},
    )
    chromium.call(
        "Input.dispatchKeyEvent",
        {"type": "keyUp", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8},
    )
    chromium.wait_for(f"{visible} === {len(big.ids)}", timeout=5)


def test_the_pages_work_without_console_errors(big: Big, chromium: Chromium) -> None:
    for path in ("/", "/prices", "/changes", "/changes?type=added"):
        chromium.open(f"{big.listener.url}{path}")
    assert chromium.problems() == []
    assert chromium.evaluate("document.querySelectorAll('article').length") == 1
