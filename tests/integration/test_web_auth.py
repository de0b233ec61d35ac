"""Who may read the listener: basic auth from `[monitor] listen_username` and
`listen_password`, /healthz open for probes, a warning for an open non-loopback bind,
and the daemon serving the pages it was configured with."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from monitor.config import ConfigError, Secret
from monitor.delivery.outbox import Dispatcher
from monitor.runtime.catalogue import load as load_config
from monitor.runtime.cycle import Checker
from monitor.runtime.daemon import Daemon
from monitor.runtime.listener import BasicAuth, HealthAnswer, Listener, is_loopback
from monitor.runtime.metrics import Metrics
from monitor.sim import GatewaySimulator, make_model
from monitor.store.database import open_database
from monitor.web.app import StatusPages
from tests.support.canary import CANARY
from tests.support.html_check import validate_html
from tests.support.ports import free_port

PASSWORD = "correct horse: battery staple"  # a colon inside is allowed
AUTH = BasicAuth("ops", Secret(PASSWORD))


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- config --------------------------------------------------------------------------------

HEAD = """
[[sources]]
name = "gw"
base_url = "http://127.0.0.1:9/v1"

[[tokens]]
name = "t"
source = "gw"
token_env = "T"
"""


def load(write_config, monitor: str, env: dict[str, str] | None = None):
    path = write_config(f"[monitor]\n{monitor}\n{HEAD}")
    return load_config(path, {"T": CANARY, **(env or {})})


def problems(write_config, monitor: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write_config, monitor, env)
    return caught.value.problems


def test_listen_auth_keys_load_with_the_password_from_the_environment(write_config) -> None:
    config = load(
        write_config,
        'listen = "0.0.0.0:9464"\nlisten_username = "ops"\nlisten_password_env = "LISTEN_PASSWORD"',
        {"LISTEN_PASSWORD": PASSWORD},
    )
    settings = config.monitor
    assert settings.listen_username == "ops"
    assert settings.listen_password == Secret(PASSWORD)
    assert PASSWORD not in repr(settings)
    assert BasicAuth.from_settings(settings) == AUTH
    assert BasicAuth.from_settings(load(write_config, 'listen = "127.0.0.1:1"').monitor) is None


def test_listen_auth_problems_name_file_table_and_key_never_the_password(
    write_config, tmp_path: Path
) -> None:
    file = str(tmp_path / "config.toml")
    found = problems(write_config, 'listen = "127.0.0.1:1"\nlisten_username = "ops"')
    assert found == [
        f"{file}: [monitor]: listen_username: needs a password; add listen_password_env = "
        '"VARIABLE_NAME" (or listen_password_file = "path")'
    ]
    found = problems(write_config, f'listen = "127.0.0.1:1"\nlisten_password = "{PASSWORD}"')
    assert found == [
        f'{file}: [monitor]: listen_password: needs a user name; add listen_username = "..." '
        "(basic auth sends both)"
    ]
    found = problems(write_config, f'listen_username = "ops"\nlisten_password = "{PASSWORD}"')
    assert found == [
        f"{file}: [monitor]: listen_username: has no effect without listen; add listen = "
        '"127.0.0.1:9464" or remove it'
    ]
    found = problems(
        write_config,
        f'listen = "127.0.0.1:1"\nlisten_username = "o:ps"\nlisten_password = "{PASSWORD}"',
    )
    assert len(found) == 1 and "[monitor]: listen_username: must be a non-empty name" in found[0]
    found = problems(
        write_config,
        'listen = "127.0.0.1:1"\nlisten_username = "ops"\nlisten_password_env = "NOPE"',
    )
    assert found == [
        f'{file}: [monitor]: listen_password_env: environment variable "NOPE" is not set; '
        "export it (or set it in the service's environment) or use listen_password_file"
    ]
    found = problems(write_config, 'listen = "127.0.0.1:1"\nlisten_pasword = "x"')
    assert 'did you mean "listen_password"?' in found[0]
    assert all(PASSWORD not in p for p in found)


# -- the listener --------------------------------------------------------------------------


@pytest.fixture
def guarded(sqlite_url: str) -> Iterator[Listener]:
    db = open_database(sqlite_url)
    pages = StatusPages(db)
    with Listener(
        "127.0.0.1:0",
        health=lambda: HealthAnswer(True, {"status": "ok"}),
        metrics=Metrics(db),
        pages=pages,
        auth=AUTH,
    ) as listener:
        yield listener
    db.close()


@pytest.mark.parametrize("path", ["/", "/matrix", "/changes", "/changes.atom", "/metrics", "/x"])
def test_everything_but_healthz_needs_the_password(guarded: Listener, path: str) -> None:
    url = f"{guarded.url}{path}"
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="model-monitor", charset="UTF-8"'
    assert PASSWORD not in refused.text
    for headers in (
        basic("ops", "wrong"),
        basic("root", PASSWORD),
        basic("ops", PASSWORD + "x"),
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Bearer " + PASSWORD},
        {"Authorization": "Basic " + base64.b64encode(b"ops").decode()},
    ):
        assert requests.get(url, headers=headers, timeout=5).status_code == 401, headers
    allowed = requests.get(url, headers=basic("ops", PASSWORD), timeout=5)
    assert allowed.status_code == (404 if path == "/x" else 200)
    assert requests.get(url, auth=("ops", PASSWORD), timeout=5).status_code == allowed.status_code


def test_healthz_stays_open_for_probes(guarded: Listener) -> None:
    response = requests.get(f"{guarded.url}/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_an_open_bind_beyond_loopback_is_warned_about(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")  # noqa: S104
    assert not is_loopback("monitor.example.com")
    caplog.set_level(logging.INFO, logger="monitor.listener")
    with Listener("0.0.0.0:0", health=lambda: HealthAnswer(True, {})):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "without authentication" in warnings[0]
    caplog.clear()
    with Listener("0.0.0.0:0", health=lambda: HealthAnswer(True, {}), auth=AUTH):
        pass
    with Listener("127.0.0.1:0", health=lambda: HealthAnswer(True, {})):
        pass
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


# -- the daemon ----------------------------------------------------------------------------


def test_the_daemon_serves_its_pages_behind_the_configured_password(
    write_config, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    with GatewaySimulator(seed=5) as gateway:
        gateway.add_token(CANARY, models=[make_model("gpt-4o"), make_model("claude-3-5-sonnet")])
        path = write_config(
            f"""
[monitor]
interval = "1h"
jitter = "0s"
listen = "127.0.0.1:{port}"
listen_username = "ops"
listen_password_env = "LISTEN_PASSWORD"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

[[tokens]]
name = "team-a"
source = "gw"
token_env = "T"
"""
        )
        config = load_config(path, {"T": CANARY, "LISTEN_PASSWORD": PASSWORD})
        db = open_database(sqlite_url)
        stop = threading.Event()
        checked = threading.Event()
        daemon = Daemon(
            config, Checker(config, db), Dispatcher(config, db, {}), stop=stop, on_cycle=checked.set
        )
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            assert checked.wait(10), "no check cycle ran"
            url = f"http://127.0.0.1:{port}"
            assert requests.get(f"{url}/", timeout=5).status_code == 401
            assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
            page = requests.get(f"{url}/matrix?source=gw", auth=("ops", PASSWORD), timeout=5)
            assert page.status_code == 200
            validate_html(page.text)
            assert "claude-3-5-sonnet" in page.text and "team-a" in page.text
            assert CANARY not in page.text
        finally:
            stop.set()
            thread.join(timeout=10)
            db.close()
    assert not thread.is_alive()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"status pages at http://127.0.0.1:{port}/" in logged and "basic auth required" in logged
    assert PASSWORD not in logged and CANARY not in logged
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
