"""The systemd units in systemd/, and the daemon as systemd runs it.

The units, as `model-monitor init --systemd DIR` writes them, are checked with
`systemd-analyze` (skipped where it is absent, unless MODEL_MONITOR_REQUIRE_SYSTEMD_ANALYZE=1,
as in CI). The daemon and
`check` run as subprocesses in the environment systemd gives them: no --config, but
$CONFIGURATION_DIRECTORY, $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY, a notify socket and
WATCHDOG_USEC/WATCHDOG_PID, and (on Linux 6.3+) the kernel's MemoryDenyWriteExecute.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from monitor.config.load import CREDENTIALS_ID
from monitor.sim import GatewaySimulator, make_model
from tests.support.canary import CANARY

UNITS_DIR = Path(__file__).resolve().parents[2] / "systemd"
SERVICES = ["model-monitor.service", "model-monitor-check.service"]
UNITS = [*SERVICES, "model-monitor-check.timer"]
INSTALLED_BINARY = "/usr/local/bin/model-monitor"
MAX_EXPOSURE = 2.0
MODELS = [make_model(f"m-{i}") for i in range(3)]
CREDENTIAL = "gw-team"  # the credential's name, used as token_file = "gw-team"
CREDENTIALS_SOURCE = "/etc/model-monitor/credentials"  # one root-only file per token
DECOY = "sk-decoy-next-to-the-config-000000"  # unknown to the gateway: HTTP 401

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# CI sets MODEL_MONITOR_REQUIRE_SYSTEMD_ANALYZE=1: a missing systemd-analyze fails the run.
REQUIRE_SYSTEMD_ANALYZE = os.environ.get("MODEL_MONITOR_REQUIRE_SYSTEMD_ANALYZE") == "1"
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None and not REQUIRE_SYSTEMD_ANALYZE,
    reason="systemd-analyze is not installed",
)
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the notify protocol is Linux's")

# What systemd does for the main process between fork and exec: MemoryDenyWriteExecute=
# (systemd 253+ implements it with this same prctl; older kernels refuse it, then the
# daemon runs without) and WATCHDOG_PID= naming the process the watchdog is for.
EXEC_LIKE_SYSTEMD = """
import ctypes, os, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0)
os.environ["WATCHDOG_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


# -- the unit files ------------------------------------------------------------------------


def directives(unit: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment in a unit file, in order."""
    found = []
    section = ""
    for line in (UNITS_DIR / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(unit: str, key: str) -> list[str]:
    return [v for _, k, v in directives(unit) if k == key]


def test_daemon_unit_is_a_notify_service_with_a_watchdog() -> None:
    unit = "model-monitor.service"
    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]
    assert values(unit, "WatchdogSec") and values(unit, "WatchdogSec")[0] not in ("0", "")
    assert values(unit, "Restart") == ["on-failure"]
    assert values(unit, "RestartPreventExitStatus") == ["78"]
    assert values(unit, "ExecStart") == [f"{INSTALLED_BINARY} run"]


@pytest.mark.parametrize("unit", SERVICES)
def test_services_get_tokens_as_credentials_never_from_the_environment(unit: str) -> None:
    assert values(unit, "DynamicUser") == ["yes"]
    assert values(unit, "User") == ["model-monitor"]  # one uid for both: one owner of the db
    assert values(unit, "StateDirectory") == ["model-monitor"]
    assert values(unit, "ConfigurationDirectory") == ["model-monitor"]
    # One line for the whole directory: adding a token never means editing the unit.
    assert values(unit, "LoadCredential") == [f"{CREDENTIALS_ID}:{CREDENTIALS_SOURCE}"]
    for value in values(unit, "Environment") + values(unit, "EnvironmentFile"):
        assert not re.search(r"TOKEN|KEY|SECRET|PASSWORD|sk-", value, re.I), value


def test_check_unit_fails_on_crashes_but_not_on_failed_checks() -> None:
    unit = "model-monitor-check.service"
    assert values(unit, "Type") == ["oneshot"]
    assert values(unit, "TimeoutStartSec")
    # 3: a gateway check failed (reported by the monitor itself). 1 is an uncaught exception.
    assert values(unit, "SuccessExitStatus") == ["3"]
    assert values(unit, "ExecStart") == [f"{INSTALLED_BINARY} -q check"]


def test_timer_catches_up_and_spreads_runs() -> None:
    unit = "model-monitor-check.timer"
    assert values(unit, "Persistent") == ["true"]
    assert values(unit, "AccuracySec") == ["1s"]
    assert values(unit, "RandomizedDelaySec")
    assert values(unit, "OnCalendar") or values(unit, "OnUnitActiveSec")


def test_both_services_share_one_sandbox() -> None:
    """The check service is the daemon's sandbox minus the daemon-only lines."""
    daemon_only = {
        "Type", "NotifyAccess", "WatchdogSec", "ExecStart", "TimeoutStartSec", "TimeoutStopSec",
        "Environment", "Restart", "RestartSec", "RestartPreventExitStatus", "SuccessExitStatus",
    }  # fmt: skip
    service = [(k, v) for s, k, v in directives(SERVICES[0]) if s == "Service"]
    check = [(k, v) for s, k, v in directives(SERVICES[1]) if s == "Service"]
    assert [d for d in service if d[0] not in daemon_only] == [
        d for d in check if d[0] not in daemon_only
    ]


# -- systemd-analyze -----------------------------------------------------------------------


@pytest.fixture
def local_units(tmp_path: Path) -> Path:
    """The units as `model-monitor init --systemd DIR` writes them, ExecStart= pointing at
    this venv's model-monitor (verify wants the binary to exist)."""
    binary = Path(sys.executable).parent / "model-monitor"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not installed (pip install -e .)")
    folder = tmp_path / "units"
    done = subprocess.run(
        [binary, "init", "--systemd", str(folder), "--executable", str(binary)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(UNITS)
    for unit in UNITS:
        shipped = (UNITS_DIR / unit).read_text()
        written = (folder / unit).read_text()
        if unit in SERVICES:
            assert values(unit, "ExecStart")[0].startswith(INSTALLED_BINARY)
            assert written == shipped.replace(
                f"ExecStart={INSTALLED_BINARY}", f"ExecStart={binary}"
            )
        else:
            assert written == shipped
    return folder


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None, "MODEL_MONITOR_REQUIRE_SYSTEMD_ANALYZE=1: install systemd"
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice", "SYSTEMD_COLORS": "0"},
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_systemd_analyze
def test_units_pass_systemd_analyze_verify(local_units: Path) -> None:
    done = analyze(
        "verify", "--man=no", "--recursive-errors=no", *(str(local_units / u) for u in UNITS)
    )
    output = done.stdout + done.stderr
    # Unknown keys and unparsable values are only logged: any line naming our units fails.
    ours = [
        line
        for line in output.splitlines()
        if str(local_units) in line or any(u in line for u in UNITS)
    ]
    assert done.returncode == 0, output
    assert not ours, output


@needs_systemd_analyze
@pytest.mark.parametrize("unit", SERVICES)
def test_services_are_hardened(local_units: Path, unit: str) -> None:
    if "--offline" not in analyze("security", "--help").stdout:
        pytest.skip("systemd-analyze security has no --offline (systemd < 250)")
    done = analyze("security", "--offline=yes", "--no-pager", str(local_units / unit))
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found[1]) <= MAX_EXPOSURE, done.stdout


# -- the daemon and check in systemd's environment -----------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[GatewaySimulator, dict[str, str]]]:
    """A gateway, and the environment systemd gives the units (config found, no --config).

    The token is a credential file, named in the config by its relative name; a decoy with
    a wrong token lies next to config.toml, where a relative token_file is looked up second.
    """
    with GatewaySimulator(seed=9) as gateway:
        gateway.set_group("default", MODELS)
        gateway.add_token(CANARY, group="default")
        config_dir, state_dir, credentials = (
            tmp_path / "etc",
            tmp_path / "var-lib",
            tmp_path / "run-credentials",
        )
        for folder in (config_dir, state_dir, credentials):
            folder.mkdir()
        (config_dir / "config.toml").write_text(
            f"""
[monitor]
interval = "1h"
jitter = "0s"

[[sources]]
name = "gw"
base_url = "{gateway.base_url}"

[[tokens]]
name = "team"
source = "gw"
token_file = "{CREDENTIAL}"
"""
        )
        (credentials / CREDENTIAL).write_text(CANARY + "\n")
        (config_dir / CREDENTIAL).write_text(DECOY + "\n")
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("MODEL_MONITOR_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        env.update(
            CONFIGURATION_DIRECTORY=str(config_dir),
            STATE_DIRECTORY=str(state_dir),
            CREDENTIALS_DIRECTORY=str(credentials),
            XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
            XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        )
        yield gateway, env


def monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_token_file_is_read_from_the_credentials_directory(
    world: tuple[GatewaySimulator, dict[str, str]],
) -> None:
    gateway, env = world
    state = Path(env["STATE_DIRECTORY"])

    shown = monitor(env, "config", "check")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"config: {env['CONFIGURATION_DIRECTORY']}/config.toml" in shown.stdout
    assert f"database: sqlite:///{state}/monitor.db" in shown.stdout
    assert hashlib.sha256(CANARY.encode()).hexdigest()[:12] in shown.stdout

    checked = monitor(env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "gw/team: ok, 3 models" in checked.stdout
    assert gateway.polls(CANARY) == 1
    assert gateway.polls(DECOY) == 0
    assert (state / "monitor.db").is_file()
    for output in (shown, checked):
        assert CANARY not in output.stdout + output.stderr

    # Without $CREDENTIALS_DIRECTORY the same name resolves next to the config: the decoy.
    env = {k: v for k, v in env.items() if k != "CREDENTIALS_DIRECTORY"}
    fallback = monitor(env, "check")
    assert fallback.returncode == 3, fallback.stdout + fallback.stderr
    assert "gw/team: FAILED auth" in fallback.stdout
    assert gateway.polls(DECOY) >= 1


def systemd_loads(unit: str, etc_credentials: Path, credentials_directory: Path) -> None:
    """Lay out $CREDENTIALS_DIRECTORY as systemd does at each start of `unit`.

    Per systemd.exec(5), LoadCredential=ID:PATH copies a file as ID, and every regular file
    of a directory (recursively, symlinks skipped) as ID_FILENAME, "/" in a subdirectory's
    path turned into "_". Paths under /etc/model-monitor/credentials are read from
    `etc_credentials`.
    """
    shutil.rmtree(credentials_directory, ignore_errors=True)
    credentials_directory.mkdir()
    for line in values(unit, "LoadCredential"):
        credential_id, _, path = line.partition(":")
        local = etc_credentials / Path(path).relative_to(CREDENTIALS_SOURCE)
        if not local.is_dir():
            shutil.copyfile(local, credentials_directory / credential_id)
            continue
        for file in sorted(local.rglob("*")):
            if file.is_file() and not file.is_symlink():
                name = "_".join((credential_id, *file.relative_to(local).parts))
                shutil.copyfile(file, credentials_directory / name)


@pytest.mark.slow
@pytest.mark.parametrize("unit", SERVICES)
def test_a_token_is_added_by_dropping_its_file_into_the_credentials_directory(
    world: tuple[GatewaySimulator, dict[str, str]], tmp_path: Path, unit: str
) -> None:
    gateway, env = world
    etc_credentials = tmp_path / "etc-model-monitor-credentials"
    etc_credentials.mkdir(mode=0o700)
    (etc_credentials / CREDENTIAL).write_text(CANARY + "\n")
    loaded = Path(env["CREDENTIALS_DIRECTORY"])
    systemd_loads(unit, etc_credentials, loaded)
    assert sorted(p.name for p in loaded.iterdir()) == [f"{CREDENTIALS_ID}_{CREDENTIAL}"]

    first = monitor(env, "check")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "gw/team: ok, 3 models" in first.stdout
    assert gateway.polls(DECOY) == 0  # not the file next to the config

    # Another token: its file, its [[tokens]] table and a restart; the unit is as shipped.
    second = f"sk-second-{secrets.token_hex(12)}"
    gateway.add_token(second, group="default")
    (etc_credentials / "gw-second").write_text(second + "\n")
    config = Path(env["CONFIGURATION_DIRECTORY"]) / "config.toml"
    config.write_text(
        config.read_text() + '\n[[tokens]]\nname = "second"\nsource = "gw"\n'
        'token_file = "gw-second"\n'
    )
    systemd_loads(unit, etc_credentials, loaded)
    again = monitor(env, "check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "gw/second: ok, 3 models" in again.stdout
    assert gateway.polls(second) == 1
    for output in (first, again):
        assert CANARY not in output.stdout + output.stderr
        assert second not in output.stdout + output.stderr


@contextmanager
def notify_socket(tmp_path: Path, abstract: bool) -> Iterator[tuple[socket.socket, str]]:
    """A socket like systemd's: a datagram per message; "@name" is an abstract address."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, ExitStack() as cleanup:
        if abstract:
            name = f"model-monitor-test/{os.getpid()}/{secrets.token_hex(4)}"
            sock.bind("\0" + name)
            yield sock, "@" + name
            return
        path = tmp_path / "notify"
        if len(os.fsencode(path)) > 100:  # sun_path holds 108 bytes
            path = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "notify"
        sock.bind(str(path))
        yield sock, str(path)


def receive(
    sock: socket.socket,
    daemon: subprocess.Popen[str],
    got: list[list[str]],
    done: Callable[[], bool],
    timeout: float,
    what: str,
) -> None:
    """Collect notify messages (the lines of each datagram) until `done()`."""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.1)
    while not done():
        try:
            got.append(sock.recv(4096).decode().splitlines())
            continue
        except TimeoutError:
            pass
        if daemon.poll() is not None:
            err = daemon.stderr.read() if daemon.stderr else ""
            pytest.fail(f"the daemon exited ({daemon.returncode}) before {what}: {got}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout}s; received {got}")


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_daemon_speaks_the_notify_protocol(
    world: tuple[GatewaySimulator, dict[str, str]], tmp_path: Path, abstract: bool
) -> None:
    gateway, env = world
    with notify_socket(tmp_path, abstract) as (sock, address):
        run_daemon(gateway, env, sock, address)


def run_daemon(
    gateway: GatewaySimulator, env: dict[str, str], sock: socket.socket, address: str
) -> None:
    env = {**env, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "500000"}  # pings every 0.25 s
    daemon = subprocess.Popen(
        [sys.executable, "-c", EXEC_LIKE_SYSTEMD, "-m", "monitor", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    got: list[list[str]] = []

    def seen(line: str, times: int = 1) -> Callable[[], bool]:
        return lambda: sum(line in message for message in got) >= times

    try:
        receive(sock, daemon, got, seen("READY=1"), 15, "READY=1")
        assert "READY=1" in got[0], got  # nothing before READY=1
        assert any(line.startswith("STATUS=") for line in got[0]), got
        receive(sock, daemon, got, seen("WATCHDOG=1", 2), 5, "two WATCHDOG=1")
        deadline = time.monotonic() + 5
        while gateway.polls(CANARY) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the first check runs at start
        assert gateway.polls(CANARY) == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        try:
            receive(sock, daemon, got, seen("STOPPING=1"), 5, "STOPPING=1")
        finally:
            out, err = daemon.communicate(timeout=10)
    assert daemon.returncode == 0, err
    assert time.monotonic() - stopped < 5
    assert "daemon stopped" in err
    assert CANARY not in out + err
    assert (Path(env["STATE_DIRECTORY"]) / "monitor.db").is_file()
