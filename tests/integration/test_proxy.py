"""Proxy settings from the environment are honoured, and read once per source, not per request.

A forwarding proxy on loopback (the standard library, absolute-form requests as HTTP
proxies receive them) stands between the CLI and the simulated gateway.
"""

from __future__ import annotations

import http.client
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor.runtime.cycle import Checker
from monitor.sim import GatewaySimulator, make_model
from monitor.sim.config import sim_config
from monitor.store.database import open_database
from monitor.transport.connections import POOLS

TOKEN = "sk-proxy-canary-0123456789abcdef"


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.seen: list[str] = []


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # absolute form: http://host:port/path
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request("GET", path, headers=headers)
        reply = upstream.getresponse()
        body = reply.read()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        upstream.close()

    def log_message(self, *args: object) -> None:
        pass


class _CountingEnviron(MutableMapping[str, str]):
    """os.environ, counting the walks over all of it (how proxy settings are read)."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self._real = real
        self.walks = 0

    def __getitem__(self, key: str) -> str:
        return self._real[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._real[key] = value

    def __delitem__(self, key: str) -> None:
        del self._real[key]

    def __iter__(self) -> Iterator[str]:
        self.walks += 1
        return iter(self._real)

    def __len__(self) -> int:
        return len(self._real)

    def items(self):  # type: ignore[override]
        self.walks += 1
        return self._real.items()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway_with_token(gateway: GatewaySimulator) -> GatewaySimulator:
    gateway.set_group("default", [make_model("gpt-4o"), make_model("gpt-4o-mini")])
    gateway.add_token(TOKEN, group="default")
    return gateway


def _check(tmp_path: Path, base_url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[monitor]
database = "sqlite:///{tmp_path / "monitor.db"}"

[[sources]]
name = "gw"
base_url = "{base_url}"

[[tokens]]
name = "t"
source = "gw"
token_env = "PROXY_TOKEN"
"""
    )
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "check"],
        env={**clean, "PROXY_TOKEN": TOKEN, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_checks_go_through_the_configured_proxy(
    tmp_path: Path, proxy: _Proxy, gateway_with_token: GatewaySimulator, variable: str
) -> None:
    done = _check(
        tmp_path, gateway_with_token.base_url, {variable: f"http://127.0.0.1:{proxy.server_port}"}
    )
    assert done.returncode == 0, done.stderr
    assert "ok, 2 models" in done.stdout
    root = gateway_with_token.base_url.removesuffix("/v1")
    # The models list, the token's budget and the prices (new-api): all proxied.
    assert proxy.seen == [
        f"{gateway_with_token.base_url}/models",
        f"{root}/api/usage/token/",
        f"{root}/api/pricing",
    ]


def test_no_proxy_bypasses_it(
    tmp_path: Path, proxy: _Proxy, gateway_with_token: GatewaySimulator
) -> None:
    env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.server_port}", "NO_PROXY": "127.0.0.1"}
    done = _check(tmp_path, gateway_with_token.base_url, env)
    assert done.returncode == 0, done.stderr
    assert proxy.seen == []


def test_a_dead_proxy_is_a_network_failure(
    tmp_path: Path, gateway_with_token: GatewaySimulator
) -> None:
    done = _check(tmp_path, gateway_with_token.base_url, {"HTTP_PROXY": "http://127.0.0.1:9"})
    assert done.returncode == 3
    assert "network" in done.stdout and "Traceback" not in done.stderr


def test_the_environment_is_read_once_per_source_not_per_request(
    gateway: GatewaySimulator, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = {f"t{i:03d}": f"sk-env-scan-{i:020d}" for i in range(100)}
    gateway.set_group("default", [make_model("gpt-4o")])
    for value in tokens.values():
        gateway.add_token(value, group="default")
    environ = _CountingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    POOLS.clear()
    db = open_database(sqlite_url)
    try:
        (report,) = Checker(sim_config(gateway.base_url, tokens), db).check()
        (again,) = Checker(sim_config(gateway.base_url, tokens), db).check()
    finally:
        db.close()
        POOLS.clear()
    assert all(t.outcome == "ok" for t in (*report.tokens, *again.tokens))
    assert gateway.polls() == 200
    # One origin: its proxy settings are resolved once for 200 requests (a resolution
    # walks the environment a few times; per request, that grew with the environment).
    assert 1 <= environ.walks <= 5
