"""`model-monitor sim`: a gateway to try configs, the daemon and the pages against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.sim.serve import StateError, parse_state, starter_state_text

pytestmark = pytest.mark.slow


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env={**os.environ, "XDG_STATE_HOME": str(cwd / "state")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _save(path: Path, text: str) -> None:
    """Write and make sure the modification time moves, however fast the edits come."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_the_simulator_follows_its_state_file(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "sim", "--port", "0", "--write-config", "mm.toml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [sim.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
        assert lines[0].startswith("simulated new-api gateway: http://127.0.0.1:")
        assert lines[-1].strip() == "tokens: team-1, team-2"
        state = tmp_path / "sim.toml"

        baseline = _cli("--config", "mm.toml", "check", cwd=tmp_path)
        assert baseline.returncode == 0, baseline.stderr
        assert "sim/team-1: ok, 5 models (baseline recorded)" in baseline.stdout

        text = state.read_text()
        edited = text.replace("default = [\n", 'default = [\n  "gpt-5",\n') + (
            '\n[[faults]]\nkind = "html"\nstatus = 502\ntoken = "team-2"\n'
        )
        _save(state, edited)
        assert "state applied: 2 token(s), 1 fault(s)" in sim.stdout.readline()  # type: ignore[union-attr]
        changed = _cli("--config", "mm.toml", "check", cwd=tmp_path)
        assert changed.returncode == 3, changed.stderr  # team-2 failed
        assert "gpt-5" in changed.stdout + changed.stderr
        assert any(
            "sim/team-2" in line and "HTTP 502" in line for line in changed.stdout.splitlines()
        )

        # A broken edit is reported and changes nothing.
        _save(state, edited.replace('kind = "html"', 'kind = "meltdown"'))
        time.sleep(0.6)
        again = _cli("--config", "mm.toml", "check", cwd=tmp_path)
        assert again.returncode == 3
    finally:
        sim.send_signal(signal.SIGINT)
        _, err = sim.communicate(timeout=10)
    assert "faults[0]: kind: one of html" in err and "keeping the previous state" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavor = 'nope'", "flavor: one of new-api"),
        ("[groups]\ndefault = 3", "groups.default: must be a list"),
        ("[[tokens]]\nname = 'a'", "tokens[0]: needs name and value"),
        ("[[tokens]]\nname = 'a'\nvalue = 'sk-x'\ngroup = 'vip'", "group 'vip' is not in [groups]"),
        ("[[faults]]\nkind = 'html'\nstatuss = 1", "html takes status, not statuss"),
        ("[[faults]]\nkind = 'panic'\ntoken = 'ghost'", "token 'ghost' is not one of"),
        ("flavor = ", "not valid TOML"),
        (
            "[groups]\ndefault = []\n[[tokens]]\nname = 'a'\nvalue = 'sk-x'\nquota = 'lots'",
            "quota is a number",
        ),
        (
            "[groups]\ndefault = []\n[[tokens]]\nname = 'a'\nvalue = 'sk-x'\nexpires_in = 'soon'",
            "expires_in:",
        ),
        ("[model_ratios]\ngpt-4o = true", "[model_ratios] maps names to numbers"),
    ],
)
def test_state_mistakes_name_the_place(text: str, message: str) -> None:
    with pytest.raises(StateError, match=None) as caught:
        parse_state(text, "sim.toml")
    assert message in str(caught.value) and str(caught.value).startswith("sim.toml")


def test_the_starter_state_parses_with_every_flavor() -> None:
    for flavor in ("new-api", "openai", "anthropic", "gemini", "openrouter", "litellm", "ollama"):
        state = parse_state(starter_state_text(3, flavor))
        assert state.flavor == flavor and len(state.tokens) == 3
        assert len({t.value for t in state.tokens}) == 3


def test_a_bad_flavor_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli("sim", "--flavor", "nope", "--port", "0", cwd=tmp_path)
    assert done.returncode == 78
    assert "flavor: one of new-api" in done.stderr and "Traceback" not in done.stderr


def test_the_state_file_sets_accounts_and_prices(tmp_path: Path) -> None:
    import json
    from urllib.request import Request, urlopen

    from monitor.sim import GatewaySimulator
    from monitor.sim.serve import apply

    text = starter_state_text(1).replace(
        'group = "default"\n', 'group = "default"\nquota = 100\nused = 95\nexpires_in = "5d"\n', 1
    )
    text += '\n[model_ratios]\ngpt-4o = "2.5"\n[group_ratios]\ndefault = 1\nvip = 1.5\n'
    state = parse_state(text)
    with GatewaySimulator() as sim:
        apply(sim, state)
        root = sim.base_url.removesuffix("/v1")
        asked = Request(
            f"{root}/api/usage/token/", headers={"Authorization": f"Bearer {state.tokens[0].value}"}
        )
        usage = json.load(urlopen(asked, timeout=5))["data"]
        pricing = json.load(urlopen(f"{root}/api/pricing", timeout=5))
    assert (usage["total_granted"], usage["total_available"]) == (50_000_000, 2_500_000)
    assert 4 * 86400 < usage["expires_at"] - time.time() <= 5 * 86400
    assert [(m["model_name"], m["model_ratio"]) for m in pricing["data"]] == [("gpt-4o", 2.5)]
    assert pricing["group_ratio"] == {"default": 1, "vip": 1.5}
