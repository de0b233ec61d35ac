"""`init` and `config check` as a user meets them first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.canary import CANARY


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_init_writes_a_starter_that_passes_config_check_and_never_overwrites(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conf" / "config.toml"
    done = run("init", str(path))
    assert done.returncode == 0, done.stderr
    assert path.is_file()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = run("init", str(path))
    assert again.returncode == 78
    assert "exists" in again.stderr

    names = [
        line.split('"')[1] for line in path.read_text().splitlines() if line.startswith("token_env")
    ]
    assert names, "the starter config names its token variables"
    env = dict.fromkeys(names, CANARY)
    checked = run("--config", str(path), "config", "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.rstrip().endswith("ok")
    assert "sha256:" in checked.stdout  # tokens shown by fingerprint
    assert CANARY not in checked.stdout + checked.stderr


def test_config_check_lists_every_problem_and_exits_78(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[monitor]\ninterval = "often"\n\n[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\n\n'
        '[[tokens]]\nname = "a"\nsource = "nope"\ntoken_env = "MISSING_VAR_FOR_TEST"\n'
    )
    done = run("--config", str(path), "config", "check")
    assert done.returncode == 78
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) >= 3, done.stderr
    assert all(str(path) in p for p in problems)
    assert (
        "interval" in done.stderr
        and "nope" in done.stderr
        and "MISSING_VAR_FOR_TEST" in done.stderr
    )


def test_database_password_is_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[monitor]\ndatabase = "postgresql+psycopg://mm:hunter2-db-pass@127.0.0.1:1/x"\n\n'
        '[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\n'
    )
    done = run("--config", str(path), "config", "check")
    assert done.returncode == 0, done.stderr
    assert "hunter2-db-pass" not in done.stdout + done.stderr
    assert "127.0.0.1:1/x" in done.stdout


def test_a_broken_user_template_fails_config_check(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "event.txt.j2").write_text("{{ event.summary }} {{ event.no_such_key }}\n")
    path = tmp_path / "config.toml"
    path.write_text(
        '[monitor]\ntemplates = "templates"\n\n[[channels]]\nname = "console"\ntype = "stdout"\n'
    )
    done = run("--config", str(path), "config", "check")
    assert done.returncode == 78
    assert "channels 'console'" in done.stderr
    assert "no_such_key" in done.stderr

    (templates / "event.txt.j2").write_text("{{ event.summary }}\n")
    assert run("--config", str(path), "config", "check").returncode == 0


def test_auto_flavor_shows_what_it_detected(tmp_path: Path, gateway) -> None:
    from monitor.sim import make_model

    gateway.set_group("default", [make_model("gpt-4o")])
    gateway.add_token(CANARY, group="default")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[monitor]\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n\n'
        f'[[sources]]\nname = "gw"\nbase_url = "{gateway.base_url}"\nflavor = "auto"\n\n'
        '[[tokens]]\nname = "t"\nsource = "gw"\ntoken_env = "AUTO_TOKEN"\n'
    )
    env = {"AUTO_TOKEN": CANARY}
    before = run("--config", str(path), "config", "check", env=env)
    assert "gw: auto (not checked yet)" in before.stdout
    assert not (tmp_path / "m.db").exists()  # looking never creates a database
    assert run("--config", str(path), "check", env=env).returncode == 0
    after = run("--config", str(path), "config", "check", env=env)
    assert "gw: auto (detected: new-api)" in after.stdout
    status = run("--config", str(path), "status", "--format", "csv", env=env).stdout
    assert "gw,new-api,t," in status


def test_the_example_config_passes_config_check(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    env = {
        "AIBERM_TEAM_A": CANARY,
        "AIBERM_TEAM_B": "sk-example-b",
        "OPENAI_API_KEY": "sk-example-o",
        "AUDIT_HOOK_URL": "https://hooks.example.com/model-monitor",
        "AUDIT_HOOK_SECRET": "whsec_c2VjcmV0LWZvci10ZXN0cw==",
    }
    done = run(
        "--config",
        str(example),
        "--database",
        f"sqlite:///{tmp_path / 'x.db'}",
        "config",
        "check",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("ok")
    assert CANARY not in done.stdout + done.stderr


def test_read_only_commands_do_not_hide_a_broken_config(tmp_path: Path) -> None:
    """Found by lookup (no --config), a config that fails must stop `status`, not send it
    to an empty default database."""
    xdg = tmp_path / "xdg"
    (xdg / "model-monitor").mkdir(parents=True)
    (xdg / "model-monitor" / "config.toml").write_text(
        '[monitor]\ndatabase = "sqlite:////nonexistent/x.db"\n\n'
        '[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\n\n'
        '[[tokens]]\nname = "t"\nsource = "gw"\ntoken_file = "missing-credential"\n'
    )
    env = {"XDG_CONFIG_HOME": str(xdg), "XDG_STATE_HOME": str(tmp_path / "state")}
    done = run("status", env=env)
    assert done.returncode == 78
    assert "missing-credential" in done.stderr
    assert not (tmp_path / "state").exists()  # no stray default database was created

    empty = tmp_path / "nothing"
    empty.mkdir()
    bare_env = {"XDG_CONFIG_HOME": str(empty), "XDG_STATE_HOME": str(tmp_path / "s2")}
    missing = run("status", env=bare_env)
    assert missing.returncode == 2  # the default database does not exist yet: not made
    assert str(tmp_path / "s2" / "model-monitor" / "monitor.db") in missing.stderr
    assert not (tmp_path / "s2").exists()
    assert run("db", "upgrade", env=bare_env).returncode == 0
    bare = run("status", env=bare_env)
    assert bare.returncode == 0, bare.stderr  # no config at all: a bare database is fine


def test_config_check_says_where_the_listener_is_and_who_may_read_it(tmp_path: Path) -> None:
    source = '[[sources]]\nname = "gw"\nbase_url = "https://gw.example/v1"\n'
    open_bind = tmp_path / "open.toml"
    open_bind.write_text(f'[monitor]\nlisten = "0.0.0.0:9464"\n\n{source}')
    done = run("--config", str(open_bind), "config", "check")
    assert done.returncode == 0, done.stderr
    assert "listen: http://0.0.0.0:9464/ (status pages, /metrics; no auth, reachable" in done.stdout

    guarded = tmp_path / "guarded.toml"
    guarded.write_text(
        '[monitor]\nlisten = "0.0.0.0:9464"\nlisten_username = "ops"\n'
        f'listen_password_env = "LISTEN_PASSWORD"\n\n{source}'
    )
    done = run("--config", str(guarded), "config", "check", env={"LISTEN_PASSWORD": CANARY})
    assert done.returncode == 0, done.stderr
    assert "(status pages, /metrics; basic auth as ops)" in done.stdout
    assert CANARY not in done.stdout + done.stderr
